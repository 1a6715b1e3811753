package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// These tests build kaelixd, kaelixctl, kaelix-proc and kaelix-bridge once (TestMain) and run them as
// real processes against a real daemon on a private socket, state dir and
// region dir.

var binDir string // kaelixd, kaelixctl, kaelix-proc and kaelix-bridge, built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kaelixctl-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/kaelix-io/kaelix/cmd/kaelixd", "github.com/kaelix-io/kaelix/cmd/kaelixctl",
		"github.com/kaelix-io/kaelix/cmd/kaelix-proc", "github.com/kaelix-io/kaelix/cmd/kaelix-bridge")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var daemonSeq atomic.Int64

// testDaemon is a kaelixd process on a private socket and region dir.
type testDaemon struct {
	socket  string
	shmName string
	proc    *testdaemon.Proc
}

// startDaemon starts kaelixd --ephemeral (plus extra flags), waits until
// `daemon status` answers, and stops it (SIGTERM) at cleanup, then checks
// that its region directory is gone.
func startDaemon(t *testing.T, extra ...string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	d := &testDaemon{
		socket:  filepath.Join(dir, "kaelixd.sock"),
		shmName: fmt.Sprintf("kaelix-ctltest-%d-%d", os.Getpid(), daemonSeq.Add(1)),
	}
	args := []string{"--socket", d.socket, "--state-dir", dir, "--shm-dir", d.shmName, "--ephemeral"}
	if help, _ := exec.Command(filepath.Join(binDir, "kaelixd"), "--help").CombinedOutput(); bytes.Contains(help, []byte("--http-port")) {
		args = append(args, "--http-port", "0") // never the default 9090
	}
	d.proc = testdaemon.StartProc(t, exec.Command(filepath.Join(binDir, "kaelixd"), append(args, extra...)...))
	t.Cleanup(func() {
		if err := d.proc.Stop(30 * time.Second); err != nil {
			t.Errorf("kaelixd: %v\n%s", err, d.proc.Stderr)
		}
		for _, root := range shmRoots() {
			if _, err := os.Stat(filepath.Join(root, d.shmName)); err == nil {
				entries, _ := os.ReadDir(filepath.Join(root, d.shmName))
				if root == "/dev/shm" || len(entries) > 0 {
					t.Errorf("%s/%s left behind (%d entries)", root, d.shmName, len(entries))
				}
				os.Remove(filepath.Join(root, d.shmName)) // an empty hugetlbfs dir: see the report
			}
		}
	})
	d.proc.WaitReady(t, 30*time.Second, func() bool {
		_, _, code := d.ctl(t, nil, "daemon", "status")
		return code == 0
	})
	return d
}

// shmRoots are /dev/shm and every hugetlbfs mount.
func shmRoots() []string {
	roots := []string{"/dev/shm"}
	b, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "hugetlbfs" {
			roots = append(roots, f[1])
		}
	}
	return roots
}

// ctl runs kaelixctl --socket d.socket args... with stdin and returns its
// stdout, stderr and exit code.
func (d *testDaemon) ctl(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	return runCtl(t, stdin, append([]string{"--socket", d.socket}, args...)...)
}

func runCtl(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kaelixctl"), args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("kaelixctl %v: %v", args, err)
	return "", "", -1
}

// mustCtl is ctl that fails the test unless the exit code is 0.
func (d *testDaemon) mustCtl(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	out, errOut, code := d.ctl(t, stdin, args...)
	if code != 0 {
		t.Fatalf("kaelixctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// bg is a kaelixctl process running in the background.
type bg struct {
	cmd  *exec.Cmd
	out  *testdaemon.Buffer
	errb *testdaemon.Buffer
	done chan error
}

func (d *testDaemon) start(t *testing.T, stdin io.Reader, args ...string) *bg {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kaelixctl"), append([]string{"--socket", d.socket}, args...)...)
	b := &bg{cmd: cmd, out: new(testdaemon.Buffer), errb: new(testdaemon.Buffer), done: make(chan error, 1)}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, b.out, b.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
	})
	return b
}

// wait waits for the process to exit (60 s at most) and returns its code.
func (b *bg) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-b.done:
		b.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not exit\nstdout: %s\nstderr: %s", b.cmd.Args, b.out, b.errb)
		return -1
	}
}

// waitSubscribers waits until topic has at least n subscriber slots live.
func (d *testDaemon) waitSubscribers(t *testing.T, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, _, code := d.ctl(t, nil, "topics", "info", topic, "--format", "json")
		if code == 0 {
			var info client.TopicInfo
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatalf("topics info --format json: %v\n%s", err, out)
			}
			if info.Subscribers >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("topic %s never had %d subscribers", topic, n)
}

func TestCLIEndToEnd(t *testing.T) {
	d := startDaemon(t)

	out := d.mustCtl(t, nil, "topics", "create", "demo.cli")
	if !strings.Contains(out, "created topic demo.cli") {
		t.Errorf("topics create: %q", out)
	}
	d.mustCtl(t, nil, "topics", "create", "demo.logs", "--partitions", "2", "--capacity", "64KiB", "--policy", "drop-oldest", "--max-message", "1KiB")

	// topics list, text.
	out = d.mustCtl(t, nil, "topics", "list", "--interval", "10ms")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TOPIC") || !strings.Contains(lines[0], "RATE/S") {
		t.Fatalf("topics list:\n%s", out)
	}
	for i, want := range [][]string{{"demo.cli", "1", "mpmc", "block", "1MiB"}, {"demo.logs", "2", "mpmc", "drop-oldest", "64KiB"}} {
		if f := strings.Fields(lines[i+1]); len(f) < 5 || !equal(f[:5], want) {
			t.Errorf("topics list row %d = %q, want it to start with %q", i, lines[i+1], want)
		}
	}

	// topics list, JSON.
	out = d.mustCtl(t, nil, "topics", "list", "--format", "json")
	var list TopicList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("topics list --format json: %v\n%s", err, out)
	}
	if len(list.Topics) != 2 || list.IntervalNS <= 0 {
		t.Fatalf("topics list --format json: %+v", list)
	}
	r := list.Topics[0]
	if r.Name != "demo.cli" || r.Partitions != 1 || r.Kind != "mpmc" || r.Policy != "block" ||
		r.CapacityBytes != 1<<20 || r.MaxMessageBytes != 4096 || r.PageSizeBytes == 0 || r.Published != 0 || r.RatePerSec != 0 {
		t.Errorf("topics list --format json row 0: %+v", r)
	}
	if r := list.Topics[1]; r.Name != "demo.logs" || r.Partitions != 2 || r.Policy != "drop-oldest" || r.CapacityBytes != 64<<10 || r.MaxMessageBytes != 1024 {
		t.Errorf("topics list --format json row 1: %+v", r)
	}

	// pub from arguments and from stdin; sub --count --format json.
	sub := d.start(t, nil, "sub", "demo.cli", "--count", "4", "--format", "json", "--for", "60s")
	d.waitSubscribers(t, "demo.cli", 1)
	d.mustCtl(t, nil, "pub", "demo.cli", "one", "two", "-H", "k=v", "--header", "eq=a=b")
	d.mustCtl(t, strings.NewReader("three\r\nfour\n"), "pub", "demo.cli", "-H", "src=stdin")
	if code := sub.wait(t); code != 0 {
		t.Fatalf("sub: exit %d\n%s", code, sub.errb)
	}
	recs := parseRecords(t, sub.out.String())
	want := []struct {
		payload string
		headers map[string]string
	}{
		{"one", map[string]string{"k": "v", "eq": "a=b"}},
		{"two", map[string]string{"k": "v", "eq": "a=b"}},
		{"three", map[string]string{"src": "stdin"}},
		{"four", map[string]string{"src": "stdin"}},
	}
	if len(recs) != len(want) {
		t.Fatalf("sub printed %d records, want %d:\n%s", len(recs), len(want), sub.out)
	}
	for i, w := range want {
		rec := recs[i]
		if rec.ID != fmt.Sprintf("0:%d", i) || rec.Sequence != uint64(i) || rec.Partition != 0 || rec.Topic != "demo.cli" ||
			rec.Payload == nil || *rec.Payload != w.payload || !equalMap(rec.Headers, w.headers) || rec.TimestampNS == 0 || rec.Time == "" {
			t.Errorf("record %d = %+v (payload %v), want payload %q headers %v", i, rec, deref(rec.Payload), w.payload, w.headers)
		}
	}

	// topics info, JSON and text.
	out = d.mustCtl(t, nil, "topics", "info", "demo.cli", "--format", "json")
	var info client.TopicInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Spec.Name != "demo.cli" || len(info.Partitions) != 1 || info.Partitions[0].Counters.Published != 4 {
		t.Errorf("topics info --format json: %+v", info)
	}
	out = d.mustCtl(t, nil, "topics", "info", "demo.cli")
	if !strings.Contains(out, "topic:        demo.cli") || !strings.Contains(out, "PUBLISHED") {
		t.Errorf("topics info:\n%s", out)
	}
	out = d.mustCtl(t, nil, "topics", "list", "--format", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || list.Topics[0].Published != 4 {
		t.Errorf("topics list after publishing: %v %+v", err, list.Topics)
	}

	// sub --from oldest on a drop-oldest topic sees what was published
	// before it; --raw prints bare payloads; --key routes.
	d.mustCtl(t, nil, "pub", "demo.logs", "a", "b", "c", "--key", "host-1")
	out = d.mustCtl(t, nil, "sub", "demo.logs", "--from", "oldest", "--count", "3", "--raw", "--for", "60s")
	if out != "a\nb\nc\n" {
		t.Errorf("sub --raw --from oldest = %q", out)
	}
	out = d.mustCtl(t, nil, "sub", "demo.logs", "--from", "oldest", "--count", "1", "--format", "json", "--for", "60s")
	var keyed struct {
		Key     *string `json:"key"`
		Payload *string `json:"payload"`
	}
	if err := json.Unmarshal([]byte(out), &keyed); err != nil || keyed.Key == nil || *keyed.Key != "host-1" || keyed.Payload == nil || *keyed.Payload != "a" {
		t.Errorf("sub --format json of a keyed message = %q (%v), want key host-1, payload a", out, err)
	}

	// daemon status.
	out = d.mustCtl(t, nil, "daemon", "status")
	if !strings.Contains(out, "running, pid") || !strings.Contains(out, "topics:       2") {
		t.Errorf("daemon status:\n%s", out)
	}
	out = d.mustCtl(t, nil, "daemon", "status", "--format", "json")
	var st client.DaemonStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.PID == 0 || st.SocketPath != d.socket || st.Topics != 2 {
		t.Errorf("daemon status --format json: %v %+v", err, st)
	}

	// delete: refused while attached, then forced; unknown afterwards.
	holder := d.start(t, nil, "sub", "demo.logs")
	d.waitSubscribers(t, "demo.logs", 1)
	if _, errOut, code := d.ctl(t, nil, "topics", "delete", "demo.logs"); code != exitInvalid || !strings.Contains(errOut, "--force") {
		t.Errorf("delete while attached: exit %d, %q", code, errOut)
	}
	d.mustCtl(t, nil, "topics", "delete", "demo.logs", "--force")
	// The subscriber learns of it from the ring and exits by itself.
	if code := holder.wait(t); code != exitNotFound || !strings.Contains(holder.errb.String(), "deleted") {
		t.Errorf("sub on a topic deleted by force: exit %d, want %d, stderr:\n%s", code, exitNotFound, holder.errb)
	}
	out = d.mustCtl(t, nil, "topics", "delete", "demo.cli")
	if !strings.Contains(out, "deleted topic demo.cli") {
		t.Errorf("topics delete: %q", out)
	}
	if _, _, code := d.ctl(t, nil, "topics", "delete", "demo.cli"); code != exitNotFound {
		t.Errorf("second delete: exit %d, want %d", code, exitNotFound)
	}
	if out := d.mustCtl(t, nil, "topics", "list"); !strings.Contains(out, "no topics") {
		t.Errorf("topics list with no topics: %q", out)
	}
}

// TestCLIPubStreamsLines checks that pub publishes each stdin line as it
// arrives (`tail -f log | kaelixctl pub`), not at end of input.
func TestCLIPubStreamsLines(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "logs.app")
	sub := d.start(t, nil, "sub", "logs.app", "--count", "1", "--raw", "--for", "60s")
	d.waitSubscribers(t, "logs.app", 1)
	pr, pw := io.Pipe()
	pub := d.start(t, pr, "pub", "logs.app")
	if _, err := pw.Write([]byte("first line\n")); err != nil {
		t.Fatal(err)
	}
	if code := sub.wait(t); code != 0 || sub.out.String() != "first line\n" {
		t.Fatalf("sub: exit %d, %q\n%s", code, sub.out, sub.errb)
	}
	pw.Close() // EOF: pub exits
	if code := pub.wait(t); code != 0 || !strings.Contains(pub.errb.String(), "published 1 message to logs.app") {
		t.Errorf("pub: exit %d, stderr %q", code, pub.errb)
	}
}

// TestCLIErrors checks each bad input's exit code and message.
func TestCLIErrors(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "demo.err", "--max-message", "1KiB")
	noDaemon := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		code    int
		message string
	}{
		{"name with slash", []string{"topics", "create", "a/b"}, "", exitInvalid, "Topic name contains invalid characters"},
		{"name with dotdot", []string{"pub", "a..b", "x"}, "", exitInvalid, "Topic name contains invalid characters"},
		{"name traversal", []string{"sub", "../x"}, "", exitInvalid, "Topic name contains invalid characters"},
		{"name too long", []string{"topics", "create", strings.Repeat("a", 250)}, "", exitInvalid, "Topic name must be 1 to 249 bytes long"},
		{"unknown topic info", []string{"topics", "info", "no.such"}, "", exitNotFound, "not found"},
		{"unknown topic pub", []string{"pub", "no.such", "x"}, "", exitNotFound, "not found"},
		{"unknown topic sub", []string{"sub", "no.such"}, "", exitNotFound, "not found"},
		{"duplicate with other parameters", []string{"topics", "create", "demo.err", "--partitions", "3"}, "", exitInvalid, "demo.err"},
		{"bad spec", []string{"topics", "create", "demo.bad", "--capacity", "1000"}, "", exitInvalid, "capacity"},
		{"message too large", []string{"pub", "demo.err", strings.Repeat("x", 2000)}, "", exitInvalid, "message too large"},
		{"line too long", []string{"pub", "demo.err"}, strings.Repeat("y", 3000) + "\n", exitInvalid, "line 1"},
		{"bad mode", []string{"topics", "create", "demo.m", "--mode", "999"}, "", exitInvalid, "--mode"},
		{"missing argument", []string{"topics", "create"}, "", exitUsage, "expected \"<name>\""},
		{"unknown verb", []string{"frobnicate"}, "", exitUsage, "unexpected argument"},
		{"bad enum", []string{"sub", "demo.err", "--from", "sideways"}, "", exitUsage, "--from"},
		{"bad size", []string{"topics", "create", "demo.s", "--capacity", "lots"}, "", exitUsage, "not a size"},
		{"no daemon", []string{"--socket", noDaemon, "topics", "list"}, "", exitBrokerNotRunning, "Broker is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] != "--socket" {
				args = append([]string{"--socket", d.socket}, args...)
			}
			out, errOut, code := runCtl(t, strings.NewReader(tc.stdin), args...)
			if code != tc.code || !strings.Contains(errOut, tc.message) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q (stdout %q)", code, errOut, tc.code, tc.message, out)
			}
		})
	}
	// Nothing above disturbed the topic.
	if out := d.mustCtl(t, nil, "topics", "list"); !strings.Contains(out, "demo.err") || strings.Contains(out, "demo.bad") {
		t.Errorf("topics list after the errors:\n%s", out)
	}
}

func parseRecords(t *testing.T, s string) []Record {
	t.Helper()
	var recs []Record
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("sub --format json line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func equalMap(a, b map[string]string) bool { return maps.Equal(a, b) }

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// TestCLILongNames: topic names of 194 and 249 bytes (file names digested)
// work through the CLI: create, pub, sub, list, info, delete, exit 0.
func TestCLILongNames(t *testing.T) {
	d := startDaemon(t)
	for _, n := range []int{194, 249} {
		name := strings.Repeat("l", n-1) + "z"
		d.mustCtl(t, nil, "topics", "create", name, "--partitions", "2")
		sub := d.start(t, nil, "sub", name, "--count", "2", "--for", "60s")
		d.waitSubscribers(t, name, 1)
		d.mustCtl(t, nil, "pub", name, "one", "two")
		if code := sub.wait(t); code != 0 || !strings.Contains(sub.out.String(), "one") || !strings.Contains(sub.out.String(), "two") {
			t.Fatalf("%d-byte name: sub exit %d\nstdout %s\nstderr %s", n, code, sub.out, sub.errb)
		}
		if out := d.mustCtl(t, nil, "topics", "list", "--format", "json"); !strings.Contains(out, name) {
			t.Fatalf("%d-byte name not listed:\n%s", n, out)
		}
		d.mustCtl(t, nil, "topics", "info", name)
		d.mustCtl(t, nil, "topics", "delete", name)
	}
}

// TestCLIThousandTopics lists 1,000 topics with long names: far more
// than one control frame (1 MiB) holds, so list and stats replies come
// in pages (wire.Page) that kaelixctl follows. SPSC topics with 4 KiB
// rings keep the daemon at three regions (descriptors, mappings) each.
func TestCLIThousandTopics(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,000 topics")
	}
	d := startDaemon(t, "--hugepages", "off")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: d.socket, Name: "thousand"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 1000
	long := "desk.equities.marketdata.level2.orderbook.venue." + strings.Repeat("x", 150)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s.%04d", long, i)
		if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: names[i], Kind: "spsc", CapacityBytes: 4096, MaxMessageBytes: 1024}); err != nil {
			t.Fatalf("topic %d: %v", i, err)
		}
	}
	if ts, err := c.Topics(ctx); err != nil || len(ts) != n {
		t.Fatalf("client Topics: %d topics, %v", len(ts), err)
	}
	var list TopicList
	if err := json.Unmarshal([]byte(d.mustCtl(t, nil, "topics", "list", "--interval", "0", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Topics) != n {
		t.Fatalf("topics list -o json: %d topics, want %d", len(list.Topics), n)
	}
	for i, r := range list.Topics {
		if r.Name != names[i] {
			t.Fatalf("topics list: topic %d is %q, want %q", i, r.Name, names[i])
		}
	}
	text := d.mustCtl(t, nil, "topics", "list", "--interval", "0")
	if got := strings.Count(text, long); got != n {
		t.Errorf("topics list: %d of %d topics in the table", got, n)
	}
	stats := d.mustCtl(t, nil, "topics", "stats")
	for _, i := range []int{0, n / 2, n - 1} {
		if !strings.Contains(stats, names[i]) {
			t.Errorf("topics stats: %s missing", names[i])
		}
	}
	status := d.mustCtl(t, nil, "daemon", "status", "--clients")
	if !strings.Contains(status, "thousand") {
		t.Errorf("daemon status --clients does not list our client:\n%.2000s", status)
	}
	// The library's pager sees them all too, and Stats as many.
	st, err := c.Stats(ctx)
	if err != nil || len(st.Topics) != n || st.Next != "" || len(st.Clients) == 0 {
		t.Fatalf("Stats: %d topics (next %q), %d clients, %v", len(st.Topics), st.Next, len(st.Clients), err)
	}
}

// TestCLITinyTopicSkipsHugePages: under the default hugepages = auto, 4
// KiB rings are far smaller than a huge page and go to tmpfs, and the
// create summary says so (it named partition 0's pages only, "2M huge",
// while later partitions had fallen back).
func TestCLITinyTopicSkipsHugePages(t *testing.T) {
	d := startDaemon(t)
	out := d.mustCtl(t, nil, "topics", "create", "tiny", "--partitions", "8", "--capacity", "4KiB", "--max-message", "1KiB")
	if !strings.Contains(out, "pages 4K tmpfs\n") {
		t.Errorf("create summary: %q, want pages 4K tmpfs", out)
	}
	var info client.TopicInfo
	if err := json.Unmarshal([]byte(d.mustCtl(t, nil, "topics", "info", "tiny", "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 8 {
		t.Fatalf("topics info -o json: %d partitions", len(info.Partitions))
	}
	for _, p := range info.Partitions {
		if p.HugePages || p.FallbackTmpfs {
			t.Errorf("partition %d: huge %v, fallback %v (want tmpfs by choice)", p.Index, p.HugePages, p.FallbackTmpfs)
		}
	}
	if list := d.mustCtl(t, nil, "topics", "list", "--interval", "0"); !strings.Contains(list, "4K tmpfs") {
		t.Errorf("topics list PAGES:\n%s", list)
	}
}
