package supervise

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCgroupFixture: against a fixture cgroup v2 tree (plain files), the
// plan finds the supervisor's cgroup from /proc/self/cgroup, and create
// writes memory.max, memory.swap.max and cpu.max in a child cgroup and
// enter writes the pid to its cgroup.procs.
func TestCgroupFixture(t *testing.T) {
	root := t.TempDir()
	self := filepath.Join(root, "system.slice", "kaelixd.service")
	if err := os.MkdirAll(self, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{
		filepath.Join(root, "cgroup.controllers"):     "cpuset cpu io memory pids",
		filepath.Join(self, "cgroup.subtree_control"): "cpu memory",
	} {
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan := planCgroup(root, "0::/system.slice/kaelixd.service\n", true, true)
	if plan.parent != self || !plan.memory || !plan.cpu || plan.why != "" {
		t.Fatalf("plan %+v", plan)
	}
	ls := describeLimits(Limits{MaxMemoryMB: 64, MaxCPUPercent: 50}, plan)
	if !strings.HasPrefix(ls.Memory, "cgroup v2 memory.max 64 MiB") || !strings.HasPrefix(ls.CPU, "cgroup v2 cpu.max 50%") || !ls.Enforced() {
		t.Fatalf("%+v", ls)
	}
	os.WriteFile(filepath.Join(self, "probe"), nil, 0o644)
	cg, err := plan.create("p/1", 3, Limits{MaxMemoryMB: 64, MaxCPUPercent: 50})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(self, "kaelix-p_1-"+strconv.Itoa(os.Getpid())+"-3"); string(cg) != want {
		t.Fatalf("cgroup %s, want %s", cg, want)
	}
	if err := cg.enter(4242); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"memory.max": "67108864", "cpu.max": "50000 100000", "cgroup.procs": "4242"} {
		b, err := os.ReadFile(filepath.Join(string(cg), f))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", f, b, err, want)
		}
	}
	os.WriteFile(filepath.Join(string(cg), "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644)
	if n := cg.oomKills(); n != 1 {
		t.Errorf("oom kills %d, want 1", n)
	}
	cg.remove()
	if _, err := os.Stat(string(cg)); !os.IsNotExist(err) {
		t.Errorf("cgroup not removed: %v", err)
	}
}

// TestCgroupUnavailable: without a v2 hierarchy (this CI host is cgroup
// v1), memory falls back to RLIMIT_DATA and the CPU limit is reported as
// not enforced, in words; a v2 tree whose controllers cannot be enabled
// says why.
func TestCgroupUnavailable(t *testing.T) {
	root := t.TempDir()
	plan := planCgroup(root, "0::/\n", true, true)
	ls := describeLimits(Limits{MaxMemoryMB: 64, MaxCPUPercent: 50}, plan)
	if !strings.HasPrefix(ls.Memory, "RLIMIT_DATA 64 MiB") || !strings.Contains(ls.Memory, "no cgroup v2 hierarchy") {
		t.Errorf("memory: %s", ls.Memory)
	}
	if !strings.HasPrefix(ls.CPU, "cpu limit not enforced: ") || ls.Enforced() {
		t.Errorf("cpu: %s", ls.CPU)
	}
	if cg, err := plan.create("x", 0, Limits{MaxMemoryMB: 64}); cg != "" || err != nil {
		t.Errorf("create without a plan: %q %v", cg, err)
	}
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("memory cpu"), 0o644)
	os.Mkdir(filepath.Join(root, "ro"), 0o555)
	os.WriteFile(filepath.Join(root, "ro", "cgroup.subtree_control"), nil, 0o444)
	plan = planCgroup(root, "0::/ro\n", false, true)
	if plan.cpu || !strings.Contains(plan.why, "cannot enable +cpu") {
		t.Errorf("plan %+v", plan)
	}
	if cpu := describeLimits(Limits{MaxCPUPercent: 50}, plan).CPU; !strings.HasPrefix(cpu, "cpu limit not enforced: ") {
		t.Errorf("cpu: %s", cpu)
	}
}
