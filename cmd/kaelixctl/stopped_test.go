package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// TestCLIDaemonStopped: kaelixd (a real process) is SIGSTOPped. `daemon
// status` must say it is not answering, name the pid and that it is
// stopped, and exit 8 within about --timeout (not "protocol error", not
// 1); `health` says hung (exit 2). After SIGCONT both work again, and
// /metrics shows the stop in kaelix_daemon_loop_lag_seconds: a pass that
// started at least the stop's length late.
func TestCLIDaemonStopped(t *testing.T) {
	dirs := testdaemon.NewDirs(t)
	dir, sock, shmName := dirs.StateDir, dirs.SocketPath, dirs.ShmDirName
	cmd := exec.Command(filepath.Join(binDir, "kaelixd"), "--socket", sock, "--state-dir", dir, "--shm-dir", shmName, "--ephemeral", "--http-port", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGCONT)
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kaelixd: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Error("kaelixd did not stop on SIGTERM")
		}
	})
	httpRe := regexp.MustCompile(`http=(\S+)`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := httpRe.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "listening") {
				addr <- strings.Trim(m[1], `"`)
			}
		}
	}()
	var metrics string
	select {
	case metrics = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("kaelixd did not log its listening line")
	}
	ctl := func(args ...string) (string, string, int) {
		return runCtl(t, nil, append([]string{"--socket", sock}, args...)...)
	}
	if out, errOut, code := ctl("daemon", "status"); code != 0 {
		t.Fatalf("daemon status before the stop: exit %d\n%s%s", code, out, errOut)
	}
	// A lag is measured from the previous pass: let a few run first.
	passes := regexp.MustCompile(`(?m)^kaelix_daemon_loop_seconds_count (\d+)$`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := passes.FindSubmatch(body); m != nil {
			if n, _ := strconv.Atoi(string(m[1])); n >= 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kaelix_daemon_loop_seconds_count did not reach 3 in 30s:\n%s", body)
		}
	}

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	waitState(t, pid, 'T')
	t0 := time.Now()
	out, errOut, code := ctl("--timeout", "1s", "daemon", "status")
	took := time.Since(t0)
	t.Logf("daemon status of a stopped kaelixd, exit %d after %v:\n%s%s", code, took.Round(time.Millisecond), out, errOut)
	if code != exitNotAnswering {
		t.Errorf("exit %d, want %d (not answering)", code, exitNotAnswering)
	}
	for _, want := range []string{"not answering", "pid " + strconv.Itoa(pid), "stopped (SIGSTOP", "heartbeat"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	if strings.Contains(errOut, "protocol error") {
		t.Error("a stopped daemon is reported as a protocol error")
	}
	if took > 20*time.Second {
		t.Errorf("daemon status took %v with --timeout 1s", took)
	}
	if out, errOut, code := ctl("--timeout", "1s", "health"); code != exitUnhealthy || !strings.Contains(out, "hung") {
		t.Errorf("health of a stopped daemon: exit %d, want %d saying hung\n%s%s", code, exitUnhealthy, out, errOut)
	}
	time.Sleep(time.Until(stoppedAt.Add(2 * time.Second)))

	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stop := time.Since(stoppedAt)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := ctl("daemon", "status")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon status after SIGCONT: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The lag histogram's buckets (seconds, cumulative): a pass after the
	// SIGCONT started late by about the stop's length. The daemon may
	// answer before that pass has run: read /metrics until it shows.
	bucket := regexp.MustCompile(`(?m)^kaelix_daemon_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$`)
	count := regexp.MustCompile(`(?m)^kaelix_daemon_loop_lag_seconds_count (\d+)$`)
	late, total := 0, 0
	var body []byte
	for deadline := time.Now().Add(10 * time.Second); late == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		cm := count.FindSubmatch(body)
		if cm == nil || !strings.Contains(string(body), "kaelix_daemon_loop_seconds_count") {
			t.Fatalf("no kaelix_daemon_loop_seconds / kaelix_daemon_loop_lag_seconds in /metrics:\n%s", body)
		}
		total, _ = strconv.Atoi(string(cm[1]))
		for _, m := range bucket.FindAllSubmatch(body, -1) { // passes at least half the stop late
			le, _ := strconv.ParseFloat(string(m[1]), 64)
			n, _ := strconv.Atoi(string(m[2]))
			if le < (stop / 2).Seconds() {
				late = total - n
			}
		}
	}
	t.Logf("stopped for %v; %d of %d loop passes started more than %v late", stop.Round(time.Millisecond), late, total, (stop / 2).Round(time.Millisecond))
	if late != 1 {
		t.Errorf("kaelix_daemon_loop_lag_seconds shows %d passes late by the stop (%v), want 1:\n%s", late, stop, bucket.FindAll(body, -1))
	}
}

// waitState waits until /proc/PID/stat shows state want.
func waitState(t *testing.T, pid int, want byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && i+2 < len(b) && b[i+2] == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never reached state %c", pid, want)
}
