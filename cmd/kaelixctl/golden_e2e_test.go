package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
	"github.com/kaelix-io/kaelix/stat"
)

// TestCLIGoldenText: the text output of every kaelixctl verb that prints
// a table or a report, run as real processes against a real kaelixd
// (huge pages off, so the output does not depend on the host's pools), a
// live subscriber process and records published by kaelixctl pub, each
// against testdata/golden/e2e-VERB.txt (go test -update rewrites them).
//
// What varies from run to run is masked by value, not by wiping whole
// fields: the temp paths, the pids this test started or asked for
// ($DAEMON_PID, $SUB_PID, and $CTL_PID for a kaelixctl that lists itself),
// the daemon's client ids, wall-clock times, uptimes and heartbeat ages,
// the build's version line, and measured durations and rates (hz,
// latency). Tables are compared cell by cell: runs of two or more spaces
// (tabwriter's padding, which follows the widths of masked values) become
// " | ". Everything else (counts, positions, lags, states, kinds, sizes,
// column sets and order, labels) must match exactly. Each verb's -o json
// output is checked against its schema (jsonSchema) in
// testdata/golden/e2e-VERB.schema.txt.
func TestCLIGoldenText(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "kaelixd.toml")
	// Two declared bridges that never write a status (/bin/true exits at
	// once; kaelixd restarts it with backoff): this test writes their
	// status files itself, one fresh and one stale, so their figures are
	// fixed; bridge_test runs a real kaelix-bridge.
	os.WriteFile(conf, []byte("[[bridges]]\nname = \"ny\"\nconfig = \"/etc/kaelix/ny.toml\"\nbinary = \"/bin/true\"\n"+
		"[[bridges]]\nname = \"ldn\"\nconfig = \"/etc/kaelix/ldn.toml\"\nbinary = \"/bin/true\"\n"), 0o600)
	d := startDaemon(t, "--set", "shm.hugepages=off", "--config", conf, "--no-watch")
	stateDir := filepath.Dir(d.socket)

	d.mustCtl(t, nil, "topics", "create", "orders", "--partitions", "2", "--capacity", "64KiB")
	d.mustCtl(t, nil, "topics", "create", "md", "--kind", "spsc", "--capacity", "64KiB", "--policy", "drop-oldest")
	sub := d.start(t, nil, "sub", "orders", "-n", "1000", "-o", "json")
	d.waitSubscribers(t, "orders", 1)
	d.mustCtl(t, nil, "pub", "orders", "--partition", "0", "alpha", "beta", "gamma")
	d.mustCtl(t, nil, "pub", "md", "m1", "m2", "m3", "m4", "m5")
	// Wait until the subscriber has read the three records, so the
	// consumed counts and lags are settled.
	waitFor(t, "the subscriber to read 3 records", func() (bool, string) {
		out, _, code := d.ctl(t, nil, "stat", "orders", "-o", "json")
		var s StatSample
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil {
			return false, out
		}
		for _, sl := range s.Slots {
			if sl.Topic == "orders" && sl.Partition == 0 && sl.Role == stat.RoleSubscriber && sl.Consumed == 3 && sl.LagBytes == 0 {
				return true, out
			}
		}
		return false, out
	})

	var status struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(d.mustCtl(t, nil, "daemon", "status", "-o", "json")), &status); err != nil || status.PID == 0 {
		t.Fatalf("daemon status -o json: %v %+v", err, status)
	}
	// The bridges' status files: "ny" rewritten just before each bridge
	// verb (fresh), "ldn" an hour old (stale).
	writeBridges := func() {
		now := time.Now()
		if err := bridgestat.WriteFile(bridgestat.StatusPath(stateDir, "ny"), bridgeFixture("ny-1", true), now); err != nil {
			t.Fatal(err)
		}
		if err := bridgestat.WriteFile(bridgestat.StatusPath(stateDir, "ldn"), bridgeFixture("ldn-1", false), now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	m := newMasker(map[string]string{
		stateDir: "$STATE", d.shmName: "$SHM",
	}, map[int]string{status.PID: "$DAEMON_PID", sub.cmd.Process.Pid: "$SUB_PID", os.Getpid(): "$TEST_PID"})

	for _, c := range []struct {
		name string
		args []string
	}{
		{"topics-list", []string{"topics", "list", "--interval", "0"}},
		{"topics-info", []string{"topics", "info", "orders"}},
		{"topics-stats", []string{"topics", "stats"}},
		{"stat", []string{"stat", "--no-slots"}},
		{"stat-slots", []string{"stat"}},
		{"daemon-status", []string{"daemon", "status"}},
		{"daemon-status-clients", []string{"daemon", "status", "--clients"}},
		{"health", []string{"health"}},
		{"hz", []string{"hz", "md", "--from", "oldest", "-n", "5", "--interval", "1h"}},
		{"latency", []string{"latency", "md", "--from", "oldest", "-n", "5", "--interval", "1h"}},
		{"bridge-list", []string{"bridge", "list"}},
		{"bridge-info", []string{"bridge", "info", "ny"}},
		{"bridge-info-stale", []string{"bridge", "info", "ldn"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.args[0] == "bridge" {
				writeBridges()
			}
			out := d.mustCtl(t, nil, c.args...)
			golden(t, "e2e-"+c.name+".txt", []byte(m.mask(out)))
			// The same verb's JSON: its schema (every key path with its
			// JSON type) against testdata/golden/e2e-NAME.schema.txt.
			if c.args[0] == "bridge" {
				writeBridges()
			}
			js := d.mustCtl(t, nil, append(c.args, "-o", "json")...)
			schema, err := jsonSchema(js)
			if err != nil {
				t.Fatalf("%v -o json: %v\n%s", c.args, err, js)
			}
			golden(t, "e2e-"+c.name+".schema.txt", []byte(schema))
		})
	}
	sub.cmd.Process.Kill()
}

// bridgeFixture is a bridge status with fixed figures: one outbound
// jetstream rule and one inbound core rule that lost records.
func bridgeFixture(host string, healthy bool) bridgestat.Status {
	var st bridgestat.Status
	st.Host, st.Healthy = host, healthy
	st.NATS.Connected, st.NATS.URL, st.NATS.Reconnects = healthy, "nats://127.0.0.1:4222", 2
	if !healthy {
		st.NATS.LastError = "nats: no servers available for connection"
	}
	st.Rules = []bridgestat.RuleStatus{
		{Name: "out-md", Direction: "out", Topic: "md", Subject: "kaelix.{host}.{topic}.{partition}", Mode: "jetstream", State: "running", Forwarded: 120, Acked: 118, LagRecords: 2, Lost: map[string]uint64{}},
		{Name: "in-md", Direction: "in", Topic: "md", Subject: "kaelix.*.{topic}.*", Mode: "core", State: "failed", Error: `topic "md" does not exist`, Lost: map[string]uint64{"gap": 3, "malformed": 1}, LostTotal: 4},
	}
	return st
}

// waitFor polls cond every 50 ms for up to 60 s; cond returns whether it
// holds and what it saw, which a timeout reports.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last saw:\n%s", what, saw)
		}
	}
}

// jsonSchema describes JSON output (one value, or one per line): a sorted
// line per key path with its JSON types, arrays as "path[]" over all
// their elements ("topics[].name: string"). Values do not enter it, so it
// is as stable as the output's shape: a renamed, removed or retyped field
// changes it.
func jsonSchema(out string) (string, error) {
	types := map[string]map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		kind := "null"
		switch v := v.(type) {
		case map[string]any:
			kind = "object"
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			kind = "array"
			for _, e := range v {
				walk(path+"[]", e)
			}
		case string:
			kind = "string"
		case float64:
			kind = "number"
		case bool:
			kind = "bool"
		}
		if types[path] == nil {
			types[path] = map[string]bool{}
		}
		types[path][kind] = true
	}
	dec := json.NewDecoder(strings.NewReader(out))
	values := 0
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
		walk("", v)
		values++
	}
	if values == 0 {
		return "", fmt.Errorf("no JSON value")
	}
	var lines []string
	for path, kinds := range types {
		if path == "" {
			path = "."
		}
		lines = append(lines, path+": "+strings.Join(slices.Sorted(maps.Keys(kinds)), "|"))
	}
	slices.Sort(lines)
	return fmt.Sprintf("%d JSON value(s)\n", values) + strings.Join(lines, "\n") + "\n", nil
}

// masker replaces what varies between runs in kaelixctl's text output.
type masker struct {
	strs *strings.Replacer
	pids map[string]string
}

func newMasker(strs map[string]string, pids map[int]string) *masker {
	var pairs []string
	for k, v := range strs {
		pairs = append(pairs, k, v)
	}
	m := &masker{strs: strings.NewReplacer(pairs...), pids: map[string]string{}}
	for pid, name := range pids {
		m.pids[strconv.Itoa(pid)] = name
	}
	return m
}

var (
	maskTime     = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC`)
	maskDuration = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)(\d+(\.\d+)?(ms|s|m))*\b`)
	maskVersion  = regexp.MustCompile(`(?m)^version: +.*$`)
	maskRate     = regexp.MustCompile(`\brate [0-9.]+[kMG]?/s`)
	maskHealth   = regexp.MustCompile(`errors over \S+: [0-9.]+/min`)
	maskPIDWord  = regexp.MustCompile(`\bpid (\d+)`)
	maskUptime   = regexp.MustCompile(`(?m)^(uptime|heartbeat): .*$`)
	maskGroup    = regexp.MustCompile(`group \S+ \(\d+, the daemon's\)`)
	tableHeader  = regexp.MustCompile(`^[A-Z][A-Z/.-]*( {2,}[A-Z][A-Z/.-]*)+$`)
	tableSpace   = regexp.MustCompile(` {2,}`)
)

func (m *masker) pid(s string) string {
	if name, ok := m.pids[s]; ok {
		return name
	}
	return "$CTL_PID" // a kaelixctl listing itself
}

func (m *masker) mask(out string) string {
	out = m.strs.Replace(out)
	out = maskVersion.ReplaceAllString(out, "version: $$VERSION")
	out = maskUptime.ReplaceAllStringFunc(out, func(l string) string {
		name, rest, _ := strings.Cut(l, ":")
		if name == "heartbeat" {
			n, _, _ := strings.Cut(strings.TrimSpace(rest), ",")
			if n != "" && n[0] == '#' {
				return "heartbeat: #$N, $AGE ago"
			}
		}
		return name + ": $UPTIME (since $TIME)"
	})
	out = maskTime.ReplaceAllString(out, "$$TIME")
	out = maskRate.ReplaceAllString(out, "rate $$RATE/s")
	out = maskHealth.ReplaceAllString(out, "errors over $$WINDOW: $$RATE/min")
	out = maskGroup.ReplaceAllString(out, "group $$GROUP ($$GID, the daemon's)")
	out = maskPIDWord.ReplaceAllStringFunc(out, func(s string) string { return "pid " + m.pid(strings.TrimPrefix(s, "pid ")) })
	out = maskDuration.ReplaceAllString(out, "$$DUR")
	lines := strings.Split(out, "\n")
	var cols []string
	for i, l := range lines {
		if l == "" {
			cols = nil
			continue
		}
		if tableHeader.MatchString(l) {
			cols = tableSpace.Split(l, -1)
			lines[i] = strings.Join(cols, " | ")
			continue
		}
		if cols == nil {
			continue
		}
		cells := tableSpace.Split(strings.TrimRight(l, " "), -1)
		for j, c := range cells {
			if j >= len(cols) {
				break
			}
			switch cols[j] {
			case "PID":
				if c != "-" {
					cells[j] = m.pid(c)
				}
			case "ID", "CLIENT":
				if c != "-" {
					cells[j] = "$ID"
				}
			case "UID", "GID":
				if c == strconv.Itoa(os.Getuid()) || c == strconv.Itoa(os.Getgid()) {
					cells[j] = "$" + cols[j]
				}
			}
		}
		lines[i] = strings.Join(cells, " | ")
	}
	return strings.Join(lines, "\n")
}
