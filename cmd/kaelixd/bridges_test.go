package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// fakeBridge stands in for kaelix-bridge: `run --config FILE --socket S`
// writes "PID S" to FILE.pid, then waits for SIGTERM.
func fakeBridge(args []string) int {
	var conf, sock string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--config":
			conf = args[i+1]
		case "--socket":
			sock = args[i+1]
		}
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	tmp := conf + ".pid.tmp"
	os.WriteFile(tmp, []byte(fmt.Sprintf("%d %s", os.Getpid(), sock)), 0o600)
	os.Rename(tmp, conf+".pid")
	<-c
	return 0
}

// bridgePID waits for a fake bridge's pid file naming a pid other than
// not, and returns the pid and the socket it was given.
func bridgePID(t *testing.T, conf string, not int) (int, string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(conf + ".pid"); err == nil {
			f := strings.Fields(string(b))
			if pid, _ := strconv.Atoi(f[0]); len(f) == 2 && pid != not && syscall.Kill(pid, 0) == nil {
				return pid, f[1]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no bridge process for %s (other than pid %d)", conf, not)
	return 0, ""
}

func gone(pid int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
	}
	return false
}

// TestBridgesSupervised: kaelixd starts the declared [[bridges]] with its
// socket, restarts one that is killed, applies a reload (adds one, keeps
// the unchanged one, stops a removed one) and stops them when it stops.
func TestBridgesSupervised(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "kaelixd.toml")
	b1, b2 := filepath.Join(dir, "b1.toml"), filepath.Join(dir, "b2.toml")
	decl := func(names ...string) {
		var s string
		for _, n := range names {
			s += fmt.Sprintf("[[bridges]]\nname = %q\nconfig = %q\nbinary = %q\n", n, filepath.Join(dir, n+".toml"), os.Args[0])
		}
		os.WriteFile(conf, []byte(s), 0o600)
	}
	decl("b1")
	sock := filepath.Join(dir, "kaelixd.sock")
	shmDir := testdaemon.NewDirs(t).ShmDirName // its Cleanup removes the regions
	cmd := exec.Command(os.Args[0], "--config", conf, "--no-watch", "--socket", sock, "--shm-dir", shmDir, "--http-port", "0", "--ephemeral")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid1, gotSock := bridgePID(t, b1, 0)
	if gotSock != sock {
		t.Errorf("bridge given socket %q, want %q", gotSock, sock)
	}
	syscall.Kill(pid1, syscall.SIGKILL)
	pid1b, _ := bridgePID(t, b1, pid1) // restarted after its backoff
	decl("b1", "b2")
	cmd.Process.Signal(syscall.SIGHUP)
	pid2, _ := bridgePID(t, b2, 0)
	if syscall.Kill(pid1b, 0) != nil {
		t.Errorf("unchanged bridge b1 (pid %d) did not survive the reload", pid1b)
	}
	decl("b2")
	cmd.Process.Signal(syscall.SIGHUP)
	if !gone(pid1b) {
		t.Errorf("removed bridge b1 (pid %d) still running", pid1b)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kaelixd exit: %v\n%s", err, stderr.String())
	}
	if !gone(pid2) {
		t.Errorf("bridge b2 (pid %d) outlived kaelixd", pid2)
	}
}
