package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/daemon/config"
)

// fixtureHost copies a numa/testdata tree (sysfs: nodes and their huge
// page pools) and adds the other files doctor reads.
func fixtureHost(t *testing.T, numaTree string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("..", "..", "numa", "testdata", numaTree)
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(root, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "dev", "shm"), 0o755)
	return root
}

const limitsFmt = "Limit                     Soft Limit           Hard Limit           Units     \nMax locked memory         %s                %s                bytes     \n"

// TestDoctorFixtures: each check against a fixture tree that should pass
// it and one that should fail it, with the fix named, and the exit code of
// the worst.
func TestDoctorFixtures(t *testing.T) {
	good := fixtureHost(t, "two-socket-four-node", map[string]string{
		"proc/mounts":      "none /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n",
		"proc/self/limits": strings.ReplaceAll(limitsFmt, "%s", "unlimited"),
		"sys/kernel/mm/transparent_hugepage/enabled":           "always [madvise] never\n",
		"sys/kernel/mm/transparent_hugepage/shmem_enabled":     "always within_size advise [never] deny force\n",
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance\n",
		"sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance\n",
		"sys/devices/system/cpu/isolated":                      "2-7\n",
		"etc/systemd/logind.conf":                              "[Login]\nRemoveIPC=no\n",
		"run/kaelix/.keep":                                     "",
	})
	bad := fixtureHost(t, "hugepages-node0-only", map[string]string{
		"proc/mounts":      "tmpfs /dev/shm tmpfs rw 0 0\n",
		"proc/self/limits": strings.ReplaceAll(limitsFmt, "%s", "8388608"),
		"sys/kernel/mm/transparent_hugepage/enabled":           "[always] madvise never\n",
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave\n",
		"sys/devices/system/cpu/isolated":                      "\n",
		"etc/systemd/logind.conf":                              "[Login]\n#RemoveIPC=yes\n",
		"etc/login.defs":                                       "SYS_UID_MAX 999\n",
	})
	os.Chmod(filepath.Join(good, "run", "kaelix"), 0o755) // whatever the umask
	os.Chmod(filepath.Join(bad), 0o755)
	os.MkdirAll(filepath.Join(bad, "tmp", "open"), 0o777)
	os.Chmod(filepath.Join(bad, "tmp", "open"), 0o777) // world-writable, no sticky bit

	cfg := config.Default()
	cfg.Daemon.SocketPath = "/run/kaelix/kaelixd.sock"
	dg := &doctor{root: good, cfg: cfg, minMemlock: 64 << 20, uid: 1000, statfs: func(string) (uint64, uint64, error) { return 8 << 30, 8 << 30, nil },
		membarrier: func() (int, error) { return membarrierCmdGlobalExpedited | membarrierCmdRegisterGlobalExpedite, nil }}
	cfgBad := config.Default()
	cfgBad.Daemon.SocketPath = "/tmp/open/kaelixd.sock"
	cfgBad.Topics = []config.Topic{{Name: "big", Partitions: 4, Capacity: 1 << 30}}
	db := &doctor{root: bad, cfg: cfgBad, cfgGiven: true, minMemlock: 64 << 20, uid: 1000, statfs: func(string) (uint64, uint64, error) { return 1 << 30, 1 << 29, nil },
		membarrier: func() (int, error) { return 0, nil }}
	gr, br := dg.run(), db.run()
	byName := func(r DoctorReport) map[string]DoctorCheck {
		m := map[string]DoctorCheck{}
		for _, c := range r.Checks {
			m[c.Name] = c
		}
		return m
	}
	g, b := byName(gr), byName(br)
	want := map[string][2]string{ // check: status on the good tree, on the bad one
		"hugepages":        {docOK, docWarning},
		"memlock":          {docOK, docWarning},
		"shm-size":         {docOK, docCritical},
		"membarrier":       {docOK, docWarning},
		"thp":              {docOK, docWarning},
		"cpu-governor":     {docOK, docWarning},
		"isolated-cpus":    {docOK, docWarning},
		"logind-removeipc": {docOK, docCritical},
		"socket-dir":       {docOK, docCritical},
	}
	for name, w := range want {
		if g[name].Status != w[0] {
			t.Errorf("good host, %s: %+v, want %s", name, g[name], w[0])
		}
		if b[name].Status != w[1] || b[name].Fix == "" {
			t.Errorf("bad host, %s: %+v, want %s with a fix", name, b[name], w[1])
		}
	}
	if len(gr.Checks) != len(want) {
		t.Errorf("%d checks, want %d", len(gr.Checks), len(want))
	}
	if gr.Status != docOK || br.Status != docCritical {
		t.Errorf("report status %s and %s, want OK and CRITICAL", gr.Status, br.Status)
	}
	for name, r := range map[string]DoctorReport{"doctor-good.txt": gr, "doctor-bad.txt": br} {
		var text bytes.Buffer
		r.printText(&text)
		// The fixture trees are temp dirs owned by whoever runs the test.
		mask := strings.NewReplacer(good, "$ROOT", bad, "$ROOT", fmt.Sprintf("owner uid %d", os.Geteuid()), "owner uid $EUID")
		golden(t, name, []byte(mask.Replace(text.String())))
	}
	if !strings.Contains(g["hugepages"].Message, "node1 2MiB: 256 reserved, 256 free") {
		t.Errorf("hugepages per node: %q", g["hugepages"].Message)
	}

	// Through the CLI: exit codes as monitoring plugins. Against a fixture
	// tree membarrier cannot be asked (UNKNOWN), which a CRITICAL outranks.
	var out, errb bytes.Buffer
	if code := run([]string{"--socket", "/tmp/open/kaelixd.sock", "doctor", "--root", bad, "-o", "json"}, nil, &out, &errb); code != 2 {
		t.Errorf("doctor on the bad tree: exit %d, want 2\n%s%s", code, out.String(), errb.String())
	}
	var rep DoctorReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Status != docCritical {
		t.Errorf("doctor -o json: %v %+v", err, rep)
	}
	out.Reset()
	if code := run([]string{"--socket", "/run/kaelix/kaelixd.sock", "doctor", "--root", good}, nil, &out, &errb); code != 3 ||
		!strings.Contains(out.String(), "UNKNOWN   membarrier") || !strings.Contains(out.String(), "kaelixctl doctor: UNKNOWN") {
		t.Errorf("doctor on the good tree: exit %d, want 3 (membarrier not checkable)\n%s", code, out.String())
	}
}
