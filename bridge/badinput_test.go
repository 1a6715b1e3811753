package bridge_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/bridge"
)

// TestBadInput: a rule naming a topic kaelixd does not have, and a rule
// with an invalid subject, get clear errors in Status while the good rule
// forwards; a NATS server unreachable at start leaves the bridge up and
// degraded until the server appears, then traffic flows.
func TestBadInput(t *testing.T) {
	ns := newNATS(t) // not started: unreachable at start
	a, b := hostsWithTopic(t, "good.topic")
	ctx := context.Background()
	col, stop := collect(ctx, t, b, "good.topic", "hosta")
	defer stop()
	outCfg := bridgeConfig(a, ns.url(), t.TempDir(),
		bridge.Rule{Direction: bridge.Out, Topic: "no.such.topic"},
		bridge.Rule{Name: "badsubj", Direction: bridge.Out, Topic: "good.topic", Subject: "kaelix..{topic}"},
		bridge.Rule{Name: "wild", Direction: bridge.Out, Topic: "good.topic", Subject: "kaelix.*.{topic}"},
		bridge.Rule{Name: "badwait", Direction: bridge.Out, Topic: "good.topic", Wait: "sometimes"},
		bridge.Rule{Direction: bridge.Out, Topic: "good.topic"},
	)
	outCfg.HTTP = "127.0.0.1:0"
	out := runBridge(t, outCfg)
	in := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "good.topic"}))

	// NATS unreachable: both bridges are up, degraded, waiting.
	time.Sleep(300 * time.Millisecond)
	for _, br := range []*bridge.Bridge{out, in} {
		st := br.Status()
		if st.Healthy || st.NATS.Connected {
			t.Errorf("%s with NATS unreachable: healthy %v connected %v", st.Host, st.Healthy, st.NATS.Connected)
		}
		if !strings.Contains(st.NATS.LastError, "not reachable") {
			t.Errorf("%s: NATS error %q does not say it is unreachable", st.Host, st.NATS.LastError)
		}
	}
	if st := ruleStatus(out, "out-good.topic").State; st != bridge.StateWaiting {
		t.Errorf("good rule with NATS unreachable: state %s, want %s", st, bridge.StateWaiting)
	}
	ns.start()
	waitRunning(t, out, "out-good.topic")
	waitRunning(t, in, "in-good.topic")
	time.Sleep(200 * time.Millisecond)

	checks := []struct{ rule, state, says string }{
		{"out-no.such.topic", bridge.StateFailed, `topic "no.such.topic" does not exist`},
		{"badsubj", bridge.StateInvalid, "empty token"},
		{"wild", bridge.StateInvalid, "wildcards"},
		{"badwait", bridge.StateInvalid, `wait "sometimes": want blocking, backoff, yield or busy-spin`},
	}
	st := out.Status()
	for _, c := range checks {
		found := false
		for _, r := range st.Rules {
			if r.Name != c.rule {
				continue
			}
			found = true
			if r.State != c.state || !strings.Contains(r.Error, c.says) {
				t.Errorf("rule %s: state %s error %q; want %s and an error saying %q", r.Name, r.State, r.Error, c.state, c.says)
			}
		}
		if !found {
			t.Errorf("rule %q not in status", c.rule)
		}
	}
	if st.Healthy {
		t.Error("bridge with failed rules reports healthy")
	}
	const n = 500
	publishN(ctx, t, a, "good.topic", 0, n, 0, 0)
	waitFor(t, 30*time.Second, "the good rule's records on host B", func() bool { d, _, _ := col.summary(); return d >= n })
	d, dups := col.result(t)
	if d != n || dups != 0 {
		t.Errorf("host B: %d distinct of %d, %d duplicates", d, n, dups)
	}

	// The HTTP views: degraded (failed and invalid rules), and counters.
	resp, err := http.Get("http://" + out.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz: %d, want 503", resp.StatusCode)
	}
	resp, err = http.Get("http://" + out.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `kaelix_bridge_forwarded_total{direction="out",mode="core",rule="out-good.topic"} 500`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, body)
	}
}
