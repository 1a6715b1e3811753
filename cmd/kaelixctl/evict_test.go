package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// TestCLISubEvicted: a `kaelixctl sub` SIGSTOPped while `kaelixctl pub`
// fills a block topic is evicted by kaelixd (daemon.evict_stalled_after),
// not killed: pub finishes while sub is still stopped; once continued,
// sub says it was evicted and exits 7. daemon status, topics info and
// topics stats show the eviction.
func TestCLISubEvicted(t *testing.T) {
	d := startDaemon(t, "--set", "daemon.evict_stalled_after=300ms", "--set", "daemon.sweep_interval=50ms")
	const topic = "demo.evict"
	d.mustCtl(t, nil, "topics", "create", topic, "--capacity", "16KiB", "--max-message", "1KiB")
	sub := d.start(t, nil, "sub", topic, "--raw")
	// Once sub prints a record it has joined its ring slot (stopped while
	// joining, the slot could not be taken from it: it would be killed).
	d.waitSubscribers(t, topic, 1)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(sub.out.String(), "hello\n") {
		if time.Now().After(deadline) {
			t.Fatalf("sub printed nothing\nstderr: %s", sub.errb)
		}
		d.mustCtl(t, nil, "pub", topic, "hello")
		time.Sleep(50 * time.Millisecond)
	}
	sub.cmd.Process.Signal(syscall.SIGSTOP)
	for deadline := time.Now().Add(time.Minute); procState(sub.cmd.Process.Pid) != 'T'; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sub did not stop")
		}
	}

	// 2000 lines of 200 bytes: 25 rings' worth.
	input := strings.Repeat(strings.Repeat("x", 200)+"\n", 2000)
	t0 := time.Now()
	if _, errOut, code := d.ctl(t, strings.NewReader(input), "pub", topic); code != 0 {
		t.Fatalf("pub: exit %d (not released by an eviction?): %s\ntopics info: %+v", code, errOut, topicInfo(t, d, topic).Partitions[0].Counters)
	}
	t.Logf("pub finished %v after starting, past the stopped sub", time.Since(t0).Round(time.Millisecond))
	select {
	case err := <-sub.done:
		t.Fatalf("the evicted sub ended while stopped: %v", err)
	default:
	}
	if st := procState(sub.cmd.Process.Pid); st != 'T' {
		t.Fatalf("evicted sub: state %q, want still stopped", st)
	}

	out := d.mustCtl(t, nil, "daemon", "status")
	if !strings.Contains(out, "evictions:    1 subscriber(s) that held publishers back, 0 of them killed") {
		t.Errorf("daemon status does not show the eviction:\n%s", out)
	}
	var st client.DaemonStatus
	if err := json.Unmarshal([]byte(d.mustCtl(t, nil, "daemon", "status", "--format", "json")), &st); err != nil || st.SubscriberEvictions != 1 || st.SubscriberKills != 0 {
		t.Errorf("daemon status --format json: %v %+v", err, st)
	}
	if info := topicInfo(t, d, topic); info.Partitions[0].Counters.Evicted != 1 {
		t.Errorf("topics info --format json: partition counters %+v, want evicted 1", info.Partitions[0].Counters)
	}
	for _, verb := range [][]string{{"topics", "info", topic}, {"topics", "stats", topic}} {
		out := d.mustCtl(t, nil, verb...)
		if v, ok := column(out, "EVICTED", 0); !ok || v != "1" {
			t.Errorf("kaelixctl %s: EVICTED column %q (found %v), want 1:\n%s", strings.Join(verb, " "), v, ok, out)
		}
	}

	sub.cmd.Process.Signal(syscall.SIGCONT)
	if code := sub.wait(t); code != exitEvicted {
		t.Fatalf("sub after its eviction: exit %d, want %d\nstderr: %s", code, exitEvicted, sub.errb)
	}
	errOut := sub.errb.String()
	if !strings.Contains(errOut, `kaelixctl: subscriber on "demo.evict" partition 0 evicted by kaelixd`) || !strings.Contains(errOut, "daemon.evict_stalled_after") {
		t.Errorf("sub's message on eviction:\n%s", errOut)
	}
	t.Logf("sub said:\n%s", errOut)
}

func topicInfo(t *testing.T, d *testDaemon, topic string) client.TopicInfo {
	t.Helper()
	var info client.TopicInfo
	out := d.mustCtl(t, nil, "topics", "info", topic, "--format", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Partitions) == 0 {
		t.Fatalf("topics info --format json: %v\n%s", err, out)
	}
	return info
}

// column returns the cell under header name in the table's row-th data
// row. Cells are separated by two spaces or more (newTable).
func column(table, name string, row int) (string, bool) {
	sep := regexp.MustCompile(`\s{2,}`)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	for i, l := range lines {
		head := sep.Split(strings.TrimSpace(l), -1)
		for j, h := range head {
			if h != name || i+1+row >= len(lines) {
				continue
			}
			cells := sep.Split(strings.TrimSpace(lines[i+1+row]), -1)
			if j < len(cells) {
				return cells[j], true
			}
		}
	}
	return "", false
}

// procState returns pid's state letter from /proc (0 if it is gone).
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
