package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/wire"
)

// The test binary re-executes itself as kaelixd when this is set.
const childEnv = "KAELIXD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if len(os.Args) > 1 && os.Args[1] == "run" { // started as a [[bridges]] binary
			os.Exit(fakeBridge(os.Args[2:]))
		}
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// The real binary TestStartup* built goes with the run.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
		os.Exit(code)
	}))
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[network]\nport = 9191\n[daemon]\nsocket_path = \""+filepath.Join(dir, "s.sock")+"\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", good}, &out, &errb); code != 0 {
		t.Fatalf("valid file: exit %d: %s", code, errb.String())
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[network]\nport = 70000\nbogus = 1\n[runtime]\nwait_strategy = \"nap\"\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := run([]string{"--check-config", bad}, &out, &errb); code != 2 {
		t.Fatalf("invalid file: exit %d", code)
	}
	for _, w := range []string{bad + ":2: network.port", bad + ":3: network.bogus: unknown key", bad + ":5: runtime.wait_strategy"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	// A flag that fixes the file's value wins over it.
	errb.Reset()
	if code := run([]string{"--check-config", bad, "--http-port", "1"}, &out, &errb); code != 2 || strings.Contains(errb.String(), "network.port") {
		t.Errorf("flag precedence in --check-config: %d %s", code, errb.String())
	}
	if code := run([]string{"--set", "nokey"}, &out, &errb); code != 2 {
		t.Errorf("--set without =: exit %d", code)
	}
}

// configShow asks a running kaelixd for its configuration.
func configShow(t *testing.T, sock string) (wire.ConfigView, error) {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return wire.ConfigView{}, err
	}
	c := wire.NewConn(uc)
	defer c.Close()
	var v wire.ConfigView
	for i, req := range []struct {
		typ  wire.Type
		body any
		out  any
	}{{wire.TypeHello, wire.Hello{Version: wire.Version, Name: "test"}, nil}, {wire.TypeConfigShow, nil, &v}} {
		f, _ := wire.NewFrame(req.typ, uint32(i+1), req.body)
		if err := c.WriteFrame(f); err != nil {
			return v, err
		}
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		rf, _, err := c.ReadFrame()
		if err != nil {
			return v, err
		}
		if we := wire.ReplyError(rf); we != nil {
			return v, we
		}
		if req.out != nil {
			if err := wire.DecodeBody(rf, req.out); err != nil {
				return v, err
			}
		}
	}
	return v, nil
}

func entry(v wire.ConfigView, key string) wire.ConfigEntry {
	for _, e := range v.Entries {
		if e.Key == key {
			return e
		}
	}
	return wire.ConfigEntry{}
}

// TestSIGHUPChild runs kaelixd as a child process, reloads it with SIGHUP
// and stops it with SIGTERM.
func TestSIGHUPChild(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "kaelixd.toml")
	os.WriteFile(conf, []byte("[telemetry.logging]\nlevel = \"info\"\n"), 0o600)
	sock := filepath.Join(dir, "kaelixd.sock")
	shmDir := testdaemon.NewDirs(t).ShmDirName // its Cleanup removes the regions
	cmd := exec.Command(os.Args[0], "--config", conf, "--no-watch", "--socket", sock, "--shm-dir", shmDir, "--http-port", "0", "--ephemeral")
	cmd.Env = append(os.Environ(), childEnv+"=1", "KAELIX_RUNTIME_WAIT_STRATEGY=yield")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var v wire.ConfigView
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if v, err = configShow(t, sock); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("kaelixd did not come up: %v\n%s", err, stderr.String())
	}
	if e := entry(v, "runtime.wait_strategy"); e.Value != `yield` && e.Value != `"yield"` || e.Source != "env KAELIX_RUNTIME_WAIT_STRATEGY" {
		t.Errorf("env key: %+v", e)
	}
	if e := entry(v, "shm.dir_name"); e.Source != "flag --shm-dir="+shmDir {
		t.Errorf("flag key: %+v", e)
	}
	os.WriteFile(conf, []byte("[telemetry.logging]\nlevel = \"debug\"\n[runtime]\nwait_strategy = \"busy-spin\"\n"), 0o600)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for entry(v, "telemetry.logging.level").Value != `"debug"` {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload: %+v\n%s", entry(v, "telemetry.logging.level"), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		v, _ = configShow(t, sock)
	}
	if e := entry(v, "runtime.wait_strategy"); e.Source != "env KAELIX_RUNTIME_WAIT_STRATEGY" {
		t.Errorf("env lost its precedence after reload: %+v", e)
	}
	if !v.LastReload.OK || v.LastReload.Trigger != "signal" {
		t.Errorf("last reload %+v", v.LastReload)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kaelixd exit: %v\n%s", err, stderr.String())
	}
}
