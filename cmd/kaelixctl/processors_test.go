package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/wire"
)

// procTOML is a kaelixd configuration: the topics, then each processor
// (name, input, output, the stamp value it sets, extra lines).
func procTOML(procs ...string) string {
	var b strings.Builder
	for _, t := range []string{"a.in", "a.out", "b.in", "b.out", "c.in", "c.out", "d.in", "d.out", "e.in"} {
		fmt.Fprintf(&b, "[[topics]]\nname = %q\n", t)
	}
	for _, p := range procs {
		b.WriteString(p)
	}
	return b.String()
}

// stamper is a [[processors]] entry running stamp in kaelix-proc; extra
// lines are its keys, those starting with max_ in [processors.limits].
func stamper(name, in, out, value string, extra ...string) string {
	var top, limits []string
	for _, e := range extra {
		if strings.HasPrefix(e, "max_") {
			limits = append(limits, e)
		} else {
			top = append(top, e)
		}
	}
	return fmt.Sprintf(`
[[processors]]
name = %q
input = %q
outputs = [%q]
binary = %q
min_backoff = "50ms"
%s
  [processors.limits]
  max_file_descriptors = 256
  %s
  [[processors.stages]]
  plugin = "stamp"
  permissions = { can_read_config = true }
  config = { header = "by", value = %q }
`, name, in, out, filepath.Join(binDir, "kaelix-proc"), strings.Join(top, "\n"), strings.Join(limits, "\n  "), value)
}

func procList(t *testing.T, d *testDaemon) map[string]wire.ProcessorInfo {
	t.Helper()
	out := d.mustCtl(t, nil, "processors", "list", "-o", "json")
	var ps []wire.ProcessorInfo
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("processors list -o json: %v\n%s", err, out)
	}
	m := map[string]wire.ProcessorInfo{}
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}

// waitProcs waits (60 s at most) until cond holds for the processors.
func waitProcs(t *testing.T, d *testDaemon, what string, cond func(map[string]wire.ProcessorInfo) bool) map[string]wire.ProcessorInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps := procList(t, d)
		if cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v\nkaelixd log:\n%s", what, ps, d.proc.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func running(ps map[string]wire.ProcessorInfo, names ...string) bool {
	for _, n := range names {
		if p, ok := ps[n]; !ok || p.State != wire.ProcessorRunning || p.PID == 0 {
			return false
		}
	}
	return true
}

// flow publishes n records to in and checks each comes out of out with
// the header by=value.
func flow(t *testing.T, d *testDaemon, in, out, value string, n int) {
	t.Helper()
	sub := d.start(t, nil, "sub", out, "--count", fmt.Sprint(n), "--format", "json")
	d.waitSubscribers(t, out, 1)
	d.waitSubscribers(t, in, 1) // the processor's own subscriber
	args := []string{"pub", in}
	for i := range n {
		args = append(args, fmt.Sprintf("r%d", i))
	}
	d.mustCtl(t, nil, args...)
	if code := sub.wait(t); code != 0 {
		t.Fatalf("sub %s: exit %d\n%s\n%s", out, code, sub.out, sub.errb)
	}
	recs := parseRecords(t, sub.out.String())
	if len(recs) != n {
		t.Fatalf("%d records from %s, want %d", len(recs), out, n)
	}
	for i, r := range recs {
		if deref(r.Payload) != fmt.Sprintf("r%d", i) || r.Headers["by"] != value {
			t.Fatalf("record %d from %s: payload %q headers %v, want r%d by=%s", i, out, deref(r.Payload), r.Headers, i, value)
		}
	}
}

// TestCLIProcessors: kaelixd runs [[processors]] as supervised processes:
// records flow input -> stamp -> output; the counts reach the daemon
// (processors info); SIGKILL of a host is followed by a restart; kaelixctl
// processors restart restarts one; a reload adds, changes and removes
// processors and leaves the unchanged one alone (same pid); bad
// configurations (unknown plugin, undeclared input topic, a cycle, a
// plugin whose Init fails) are refused naming the processor while all keep
// running; a crash-looping processor is given up on and makes health
// degraded.
// limitsD are D's limits: memory, CPU share and CPU set, each enforced
// or said not to be.
var limitsD = []string{`cpus = "0"`, "max_memory_mb = 512", "max_cpu_percent = 50"}

func TestCLIProcessors(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "kaelixd.toml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(procTOML(stamper("A", "a.in", "a.out", "A1"), stamper("B", "b.in", "b.out", "B1"), stamper("D", "d.in", "d.out", "D1", limitsD...)))
	d := startDaemon(t, "--config", cfgPath, "--no-watch")
	ps := waitProcs(t, d, "A, B and D running", func(ps map[string]wire.ProcessorInfo) bool { return running(ps, "A", "B", "D") })

	// Records flow, and the host's counts reach the daemon.
	flow(t, d, "a.in", "a.out", "A1", 5)
	waitProcs(t, d, "A's counts", func(ps map[string]wire.ProcessorInfo) bool { return ps["A"].In == 5 && ps["A"].Out == 5 })
	info := d.mustCtl(t, nil, "processors", "info", "A")
	for _, want := range []string{"processor A: stages stamp", "records:   in 5, out 5, dropped 0, failed 0", "files:     RLIMIT_NOFILE 256",
		"network:   isolated: own network namespace"} {
		if !strings.Contains(info, want) {
			t.Errorf("processors info A lacks %q:\n%s", want, info)
		}
	}

	infoD := d.mustCtl(t, nil, "processors", "info", "D")
	v2 := false
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		v2 = true
	}
	for _, want := range []string{"cpu set:   sched_setaffinity [0]", "memory:    ", "cpu:       "} {
		if !strings.Contains(infoD, want) {
			t.Errorf("processors info D lacks %q:\n%s", want, infoD)
		}
	}
	if !v2 && (!strings.Contains(infoD, "cpu:       cpu limit not enforced: ") || !strings.Contains(infoD, "memory:    RLIMIT_DATA 512 MiB")) {
		t.Errorf("cgroup v1 host: info D should say the CPU limit is not enforced and memory is RLIMIT_DATA:\n%s", infoD)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ps["D"].PID)); err != nil || !strings.Contains(string(b), "Cpus_allowed_list:\t0\n") {
		t.Errorf("D's affinity: %v\n%s", err, b)
	}

	// SIGKILL the host of A: the daemon starts it again; B and D are untouched.
	if err := syscall.Kill(ps["A"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ps2 := waitProcs(t, d, "A restarted", func(m map[string]wire.ProcessorInfo) bool {
		return running(m, "A") && m["A"].PID != ps["A"].PID && m["A"].Restarts >= 1
	})
	if !strings.Contains(ps2["A"].LastExit, "killed by signal 9") || ps2["B"].PID != ps["B"].PID || ps2["D"].PID != ps["D"].PID {
		t.Fatalf("after SIGKILL of A: %+v (before %+v)", ps2, ps)
	}
	flow(t, d, "a.in", "a.out", "A1", 3)
	waitProcs(t, d, "A's counts across the restart", func(ps map[string]wire.ProcessorInfo) bool { return ps["A"].In == 8 })

	// kaelixctl processors restart B.
	if out := d.mustCtl(t, nil, "processors", "restart", "B"); !strings.Contains(out, "processor B: restarting") {
		t.Errorf("restart B: %q", out)
	}
	ps3 := waitProcs(t, d, "B restarted", func(m map[string]wire.ProcessorInfo) bool { return running(m, "B") && m["B"].PID != ps["B"].PID })
	if ps3["D"].PID != ps["D"].PID {
		t.Fatalf("D restarted with B: %+v", ps3)
	}
	if _, errOut, code := d.ctl(t, nil, "processors", "restart", "nope"); code == 0 || !strings.Contains(errOut, `no processor "nope"`) {
		t.Errorf("restart nope: exit %d, %s", code, errOut)
	}

	// Bad configurations: refused whole, naming the processor; nothing restarts.
	good := procTOML(stamper("A", "a.in", "a.out", "A1"), stamper("B", "b.in", "b.out", "B1"), stamper("D", "d.in", "d.out", "D1", limitsD...))
	for _, bad := range []struct {
		name, body, want string
	}{
		{"unknown plugin", strings.Replace(stamper("X", "c.in", "c.out", "X"), `plugin = "stamp"`, `plugin = "frobnicate"`, 1), `processor "X": stage "frobnicate": unknown plugin "frobnicate"`},
		{"missing input topic", stamper("X", "nowhere", "c.out", "X"), `processor "X": input topic "nowhere" is not declared in [[topics]]`},
		{"cycle", stamper("X", "c.in", "c.out", "X") + stamper("Y", "c.out", "c.in", "Y"), "cycle between processors: c.in -[X]-> c.out -[Y]-> c.in"},
		{"init fails", stamper("X", "c.in", "c.out", "X") + "  [[processors.stages]]\n  plugin = \"sample\"\n", `processor "X": processor: stage "sample": init`},
	} {
		write(good + bad.body)
		_, errOut, code := d.ctl(t, nil, "config", "reload")
		if code == 0 || !strings.Contains(errOut, bad.want) {
			t.Errorf("%s: reload exit %d, want an error containing %q:\n%s", bad.name, code, bad.want, errOut)
		}
	}
	ps4 := procList(t, d)
	for _, n := range []string{"A", "B", "D"} {
		if ps4[n].PID != ps3[n].PID || ps4[n].State != wire.ProcessorRunning {
			t.Errorf("%s after the refused reloads: %+v, before %+v", n, ps4[n], ps3[n])
		}
	}
	if _, ok := ps4["X"]; ok {
		t.Errorf("X runs after refused reloads")
	}

	// Reload: A changed, B removed, C added, D unchanged, E crash-loops.
	write(procTOML(stamper("A", "a.in", "a.out", "A2"), stamper("C", "c.in", "c.out", "C1"), stamper("D", "d.in", "d.out", "D1", limitsD...),
		fmt.Sprintf(`
[[processors]]
name = "E"
input = "e.in"
command = [%q, "-c", "exit 3"]
max_crashes = 3
min_backoff = "20ms"
max_backoff = "100ms"
`, "/bin/sh")))
	d.mustCtl(t, nil, "config", "reload")
	ps5 := waitProcs(t, d, "the reloaded set", func(m map[string]wire.ProcessorInfo) bool {
		_, hasB := m["B"]
		return running(m, "A", "C", "D") && !hasB && m["A"].PID != ps4["A"].PID && m["E"].State == wire.ProcessorFailed
	})
	if ps5["D"].PID != ps["D"].PID {
		t.Errorf("D restarted by a reload that did not change it: pid %d, was %d", ps5["D"].PID, ps["D"].PID)
	}
	if !strings.Contains(ps5["E"].Reason, "gave up after 3 exits") {
		t.Errorf("E: %+v", ps5["E"])
	}
	flow(t, d, "a.in", "a.out", "A2", 2)
	flow(t, d, "c.in", "c.out", "C1", 2)
	out, _, code := d.ctl(t, nil, "health")
	if code != 1 || !strings.Contains(out, `processor "E" failed: gave up after 3 exits`) {
		t.Errorf("health: exit %d\n%s", code, out)
	}
	list := d.mustCtl(t, nil, "processors", "list")
	for _, want := range []string{"PROCESSOR", "A ", "C ", "D ", "E ", "failed"} {
		if !strings.Contains(list, want) {
			t.Errorf("processors list lacks %q:\n%s", want, list)
		}
	}
	// E is given up on; restart starts it again (and it fails again).
	d.mustCtl(t, nil, "processors", "restart", "E")
	waitProcs(t, d, "E restarted", func(m map[string]wire.ProcessorInfo) bool { return m["E"].Restarts > ps5["E"].Restarts })
}

// TestCLIProcessorACL: a processor running as another user (nobody) is
// held to the topic ACL like any client of that user: one the rules let
// subscribe to its input and publish to its output moves records; one
// they refuse its output runs with its pipeline not running, which
// processors info and health say. Needs root (to run as nobody).
func TestCLIProcessorACL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs a processor as nobody: needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	// nobody must reach the kaelix-proc binary, the socket and its own files.
	binCopy := filepath.Join(t.TempDir(), "kaelix-proc")
	b, err := os.ReadFile(filepath.Join(binDir, "kaelix-proc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binCopy, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "kaelixd.toml")
	base := fmt.Sprintf(`[security]
socket_mode = 0o666
[[security.access]]
topics = "acl.ok.out"
publish = { uids = [%[1]s] }
[[security.access]]
topics = "acl.*"
subscribe = { uids = [%[1]s] }
[[topics]]
name = "acl.in"
[[topics]]
name = "acl.ok.out"
[[topics]]
name = "acl.no.out"
`, nobody.Uid)
	if err := os.WriteFile(cfgPath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", cfgPath, "--no-watch")
	for dir := filepath.Dir(d.socket); dir != "/tmp" && dir != "/" && strings.HasPrefix(dir, os.TempDir()); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Dir(binCopy), 0o755)
	proc := func(name, out string) string {
		return fmt.Sprintf(`
[[processors]]
name = %q
user = "nobody"
input = "acl.in"
outputs = [%q]
binary = %q
  [[processors.stages]]
  plugin = "stamp"
  permissions = { can_read_config = true }
  config = { header = "by", value = %q }
`, name, out, binCopy, name)
	}
	if err := os.WriteFile(cfgPath, []byte(base+proc("ok", "acl.ok.out")+proc("no", "acl.no.out")), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mustCtl(t, nil, "config", "reload")
	ps := waitProcs(t, d, "ok's pipeline running and no's refused", func(m map[string]wire.ProcessorInfo) bool {
		return running(m, "ok", "no") && m["ok"].PipelinesRunning == 1 && m["no"].Pipelines == 1 && m["no"].PipelinesRunning == 0 &&
			strings.Contains(m["no"].Stderr, "acl.no.out")
	})
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ps["ok"].PID)); err != nil || !strings.Contains(string(b), "Uid:\t"+nobody.Uid+"\t") {
		t.Fatalf("ok does not run as nobody: %v\n%s", err, b)
	}
	sub := d.start(t, nil, "sub", "acl.ok.out", "--count", "3", "--format", "json")
	d.waitSubscribers(t, "acl.ok.out", 1)
	d.waitSubscribers(t, "acl.in", 1) // ok's (no's pipeline attaches nothing while its output is refused)
	d.mustCtl(t, nil, "pub", "acl.in", "x0", "x1", "x2")
	if code := sub.wait(t); code != 0 {
		t.Fatalf("sub: exit %d\n%s", code, sub.errb)
	}
	for i, r := range parseRecords(t, sub.out.String()) {
		if deref(r.Payload) != fmt.Sprintf("x%d", i) || r.Headers["by"] != "ok" {
			t.Errorf("record %d: %q %v", i, deref(r.Payload), r.Headers)
		}
	}
	info := d.mustCtl(t, nil, "processors", "info", "no")
	if !strings.Contains(info, "pipelines: 0 of 1 running") || !strings.Contains(info, "acl.no.out") {
		t.Errorf("processors info no:\n%s", info)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, code := d.ctl(t, nil, "health")
		if code == 1 && strings.Contains(out, `processor "no" runs`) && strings.Contains(out, "1 of its 1 pipelines do not") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never named processor no: exit %d\n%s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
