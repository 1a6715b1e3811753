package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// TestSocketPermissionDenied: a user the control socket's mode (0600,
// owned by another user) does not let in is told so, with exit 6 and the
// socket-group hint, not that the broker is not running; the client
// library's error is ErrPermission and os.ErrPermission, not
// ErrBrokerNotRunning. As root the case runs kaelixctl as nobody; as
// another user it takes the socket's permission away for the test.
func TestSocketPermissionDenied(t *testing.T) {
	d := startDaemon(t)
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		const nobody = 65534
		cred = &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
		// Let nobody reach the socket and run the binary: only the
		// socket's own mode stands in the way.
		for _, p := range []string{binDir, filepath.Dir(d.socket), filepath.Dir(filepath.Dir(d.socket))} {
			os.Chmod(p, 0o755)
		}
	} else {
		os.Chmod(d.socket, 0)
		defer os.Chmod(d.socket, 0o600)
	}
	if fi, err := os.Stat(d.socket); err != nil || fi.Mode().Perm() != 0o600 && cred != nil {
		t.Fatalf("socket %v, %v: want mode 0600", fi, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kaelixctl"), "--socket", d.socket, "topics", "list")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("kaelixctl: %v (want exit 6)\n%s", err, errb.String())
	}
	t.Logf("exit %d: %s", ee.ExitCode(), strings.TrimSpace(errb.String()))
	if ee.ExitCode() != exitPermission {
		t.Errorf("exit %d, want %d (permission)", ee.ExitCode(), exitPermission)
	}
	for _, want := range []string{"permission denied on the control socket " + d.socket, "security.socket_group"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	for _, bad := range []string{"not running", "start kaelixd"} {
		if strings.Contains(errb.String(), bad) {
			t.Errorf("stderr says %q:\n%s", bad, errb.String())
		}
	}

	// The library's error, as the code maps it.
	lib := &client.SocketPermissionError{SocketPath: d.socket, Err: syscall.EACCES}
	if !errors.Is(lib, client.ErrPermission) || !errors.Is(lib, os.ErrPermission) || errors.Is(lib, client.ErrBrokerNotRunning) {
		t.Errorf("SocketPermissionError: Is(ErrPermission)=%v Is(os.ErrPermission)=%v Is(ErrBrokerNotRunning)=%v",
			errors.Is(lib, client.ErrPermission), errors.Is(lib, os.ErrPermission), errors.Is(lib, client.ErrBrokerNotRunning))
	}
	if exitCode(lib) != exitPermission {
		t.Errorf("exitCode(SocketPermissionError) = %d", exitCode(lib))
	}
}
