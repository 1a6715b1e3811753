package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/stat"
)

// TestCLIStatWithoutDaemon: `kaelixctl stat` reads counters and slots
// from shared memory while kaelixd (a real process) answers, while it is
// SIGSTOPped, and after it is SIGKILLed. A subscriber that is itself
// stopped shows as "stopped" with its backlog in records and bytes; the
// live one as "live" with no lag. --watch piped prints one JSON object per
// line and no terminal codes.
func TestCLIStatWithoutDaemon(t *testing.T) {
	dirs := testdaemon.NewDirs(t) // kaelixd is killed: its Cleanup removes the regions
	dir := dirs.StateDir
	d := &testDaemon{socket: dirs.SocketPath, shmName: dirs.ShmDirName}
	cmd := exec.Command(filepath.Join(binDir, "kaelixd"), "--socket", d.socket, "--state-dir", dir, "--shm-dir", d.shmName, "--ephemeral", "--http-port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, code := d.ctl(t, nil, "daemon", "status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kaelixd did not come up")
		}
	}
	const topic = "demo.stat"
	d.mustCtl(t, nil, "topics", "create", topic, "--capacity", "64KiB")
	live := d.start(t, nil, "sub", topic, "--for", "120s")
	stopped := d.start(t, nil, "sub", topic, "--for", "120s")
	d.waitSubscribers(t, topic, 2)
	syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGCONT) })
	d.mustCtl(t, nil, "pub", topic, "one", "two", "three", "four", "five")

	sample := func(wantSource, wantState string, extra ...string) StatSample {
		t.Helper()
		args := append([]string{"stat", topic, "-o", "json", "--shm-dir", d.shmName, "--state-dir", dir}, extra...)
		var s StatSample
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, errOut, code := d.ctl(t, nil, args...)
			if code != 0 {
				t.Fatalf("kaelixctl %v: exit %d\n%s%s", args, code, out, errOut)
			}
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("stat -o json: %v\n%s", err, out)
			}
			// The live subscriber reads on its own time: wait for it.
			ok := len(s.Partitions) == 1 && s.Partitions[0].Counters.Consumed == 5
			if ok || time.Now().After(deadline) {
				break
			}
		}
		if s.Source != wantSource || s.Daemon.State != wantState || s.Daemon.PID != pid {
			t.Errorf("source %q daemon %+v, want source %q state %q pid %d", s.Source, s.Daemon, wantSource, wantState, pid)
		}
		if len(s.Partitions) != 1 || s.Partitions[0].Counters.Published != 5 || s.Partitions[0].Counters.Subscribers != 2 {
			t.Fatalf("partitions %+v, want one with 5 published and 2 subscribers", s.Partitions)
		}
		bySub := map[int]stat.SlotStat{}
		for _, r := range s.Slots {
			bySub[r.PID] = r
		}
		l, st := bySub[live.cmd.Process.Pid], bySub[stopped.cmd.Process.Pid]
		if l.State != stat.StateLive || l.Role != stat.RoleSubscriber || l.Process != "kaelixctl" || l.LagRecords != 0 || l.LagBytes != 0 || l.Consumed != 5 {
			t.Errorf("live subscriber's slot %+v", l)
		}
		if st.State != stat.StateStopped || st.LagRecords != 5 || st.LagBytes == 0 || st.Consumed != 0 {
			t.Errorf("stopped subscriber's slot %+v, want stopped, 5 records behind", st)
		}
		return s
	}

	sample("daemon", "answering")
	out := d.mustCtl(t, nil, "stat", topic)
	for _, want := range []string{"kaelixd answering", "PUBLISHED", "STATE", "stopped", "live"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat text lacks %q:\n%s", want, out)
		}
	}

	// daemon status --clients: the same slots, each with its client.
	var cs struct {
		Clients []struct {
			ID  uint64 `json:"id"`
			PID int    `json:"pid"`
		} `json:"clients"`
		Slots []ClientSlot `json:"slots"`
	}
	if err := json.Unmarshal([]byte(d.mustCtl(t, nil, "daemon", "status", "--clients", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	ids := map[int]uint64{}
	for _, c := range cs.Clients {
		ids[c.PID] = c.ID
	}
	found := 0
	for _, sl := range cs.Slots {
		switch sl.PID {
		case live.cmd.Process.Pid:
			found++
			if sl.State != stat.StateLive || sl.ClientID == 0 || sl.ClientID != ids[sl.PID] || sl.LagRecords != 0 {
				t.Errorf("daemon status --clients, live sub: %+v", sl)
			}
		case stopped.cmd.Process.Pid:
			found++
			if sl.State != stat.StateStopped || sl.ClientID == 0 || sl.ClientID != ids[sl.PID] || sl.LagRecords != 5 || sl.Topic != topic {
				t.Errorf("daemon status --clients, stopped sub: %+v", sl)
			}
		}
	}
	if found != 2 {
		t.Errorf("daemon status --clients lists %d of the 2 subscribers' slots: %+v", found, cs.Slots)
	}
	if out := d.mustCtl(t, nil, "daemon", "status", "--clients"); !strings.Contains(out, "LAG-BYTES") || !strings.Contains(out, "stopped") {
		t.Errorf("daemon status --clients text:\n%s", out)
	}

	// health --socket with a typo, next to a live daemon's heartbeat:
	// unknown, not that daemon's state.
	typo := filepath.Join(dir, "kaelixd.sokc")
	if out, _, code := runCtl(t, nil, "--socket", typo, "health"); code != exitUnknown || !strings.Contains(out, "no daemon at "+typo) {
		t.Errorf("health --socket TYPO: exit %d\n%s", code, out)
	}

	syscall.Kill(pid, syscall.SIGSTOP)
	began := time.Now()
	s := sample("registry", "stopped")
	if el := time.Since(began); el > 20*time.Second {
		t.Errorf("stat with kaelixd stopped took %v", el)
	}
	if !strings.Contains(s.Daemon.Message, "stopped") || !strings.Contains(s.Daemon.Message, fmt.Sprint(pid)) {
		t.Errorf("message %q does not say kaelixd is stopped", s.Daemon.Message)
	}
	_, errOut, code := d.ctl(t, nil, "stat", topic, "--shm-dir", d.shmName, "--state-dir", dir)
	if code != 0 || !strings.Contains(errOut, "not answering") {
		t.Errorf("stat text with kaelixd stopped: exit %d, stderr %q", code, errOut)
	}
	// Without --shm-dir: the registry says where the regions are (this
	// daemon's region directory is not the default one).
	if out, errOut, code := d.ctl(t, nil, "stat", topic, "-o", "json", "--state-dir", dir); code != 0 || !strings.Contains(out, `"consumed":5`) {
		t.Errorf("stat without --shm-dir, kaelixd stopped: exit %d\n%s%s", code, out, errOut)
	}
	// Nowhere to find the regions: an error naming the way out, not
	// exit 0 with no partition.
	if _, errOut, code := d.ctl(t, nil, "stat", topic, "--state-dir", dir, "--region-dir", t.TempDir()); code == 0 || !strings.Contains(errOut, "no partition could be read") {
		t.Errorf("stat with no region found: exit %d, stderr %q", code, errOut)
	}
	out, errOut, code = d.ctl(t, nil, "topics", "stats", topic, "--shm-dir", d.shmName, "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "PUBLISHED") || !strings.Contains(errOut, "not answering") {
		t.Errorf("topics stats with kaelixd stopped: exit %d\n%s%s", code, out, errOut)
	}

	syscall.Kill(pid, syscall.SIGKILL)
	<-done
	s = sample("registry", "dead")
	if out, _, code := d.ctl(t, nil, "health"); code != exitUnhealthy || !strings.Contains(out, "kaelixd is dead") {
		t.Errorf("health with kaelixd dead: exit %d, want %d\n%s", code, exitUnhealthy, out)
	}
	if !strings.Contains(s.Daemon.Message, "gone") {
		t.Errorf("message %q does not say kaelixd is gone", s.Daemon.Message)
	}

	// --watch into a pipe: JSON lines, no screen codes.
	w := d.start(t, nil, "stat", topic, "--watch", "--interval", "50ms", "-o", "json", "--shm-dir", d.shmName, "--state-dir", dir)
	for deadline := time.Now().Add(30 * time.Second); strings.Count(w.out.String(), "\n") < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Errorf("stat --watch exit %d: %s", code, w.errb)
	}
	lines := strings.Split(strings.TrimSpace(w.out.String()), "\n")
	if len(lines) < 3 || strings.Contains(w.out.String(), "\x1b") {
		t.Fatalf("stat --watch -o json printed %d lines (want >= 3, no escape codes):\n%q", len(lines), w.out.String())
	}
	var prev int64
	for _, line := range lines {
		var s StatSample
		if err := json.Unmarshal([]byte(line), &s); err != nil || len(s.Partitions) != 1 || s.TimeNS <= prev {
			t.Errorf("watch line %q: %v", line, err)
		}
		prev = s.TimeNS
	}
	syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGCONT)
}
