package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Cgroup v2 limits. The supervisor creates one child cgroup per child
// process under its own cgroup (from /proc/self/cgroup, "0::/path"), sets
// memory.max (and memory.swap.max 0 when present) and cpu.max there and
// moves the child in before its start gate opens. That needs: a unified
// (v2) hierarchy at the root (cgroup.controllers present), write access to
// the supervisor's cgroup, and the memory / cpu controllers enabled for
// its children (listed in its cgroup.subtree_control; the supervisor tries
// to enable them, which the kernel refuses while its own cgroup holds
// processes, unless it is the root cgroup). Without that, memory falls
// back to RLIMIT_DATA and the CPU limit is not enforced; LimitStatus says
// which and why.

// DefaultCgroupRoot is where the cgroup hierarchy is mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup"

// cgroupPlan is where a child's cgroup goes and which controllers it has.
type cgroupPlan struct {
	parent      string // the supervisor's cgroup directory
	memory, cpu bool   // controller available to children
	why         string // why a controller is not (for LimitStatus)
}

// planCgroup finds the supervisor's cgroup under root (selfCgroup is the
// /proc/self/cgroup text) and what its children may be limited by.
// want* say which controllers are needed; it tries to enable them.
func planCgroup(root, selfCgroup string, wantMemory, wantCPU bool) cgroupPlan {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return cgroupPlan{why: fmt.Sprintf("no cgroup v2 hierarchy at %s (cgroup v1 or none)", root)}
	}
	rel := ""
	sc := bufio.NewScanner(strings.NewReader(selfCgroup))
	found := false
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return cgroupPlan{why: "this process is in no cgroup v2 group (/proc/self/cgroup has no 0:: line)"}
	}
	plan := cgroupPlan{parent: filepath.Join(root, filepath.Clean("/"+rel))}
	enabled := func() map[string]bool {
		b, _ := os.ReadFile(filepath.Join(plan.parent, "cgroup.subtree_control"))
		m := map[string]bool{}
		for _, f := range strings.Fields(string(b)) {
			m[f] = true
		}
		return m
	}
	on := enabled()
	var add []string
	if wantMemory && !on["memory"] {
		add = append(add, "+memory")
	}
	if wantCPU && !on["cpu"] {
		add = append(add, "+cpu")
	}
	var enableErr error
	if len(add) > 0 {
		enableErr = os.WriteFile(filepath.Join(plan.parent, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0o644)
		on = enabled()
	}
	plan.memory, plan.cpu = on["memory"], on["cpu"]
	if (wantMemory && !plan.memory) || (wantCPU && !plan.cpu) {
		plan.why = fmt.Sprintf("cannot enable %s for the children of %s", strings.Join(add, " "), plan.parent)
		if enableErr != nil {
			plan.why += ": " + enableErr.Error()
			if errors.Is(enableErr, syscall.EBUSY) {
				plan.why += " (the cgroup holds processes: run kaelixd in a delegated cgroup of its own, e.g. systemd Delegate=yes with the daemon in a leaf)"
			}
		}
	}
	return plan
}

// cgroup is one child's cgroup directory ("" when none is used).
type cgroup string

// create makes a child's cgroup and writes its limits (none when no
// limit needs one). The directory is named after name, the supervisor's
// pid and seq (its start count), so restarts never collide.
func (p cgroupPlan) create(name string, seq int, l Limits) (cgroup, error) {
	if p.parent == "" || (!p.memory || l.MaxMemoryMB <= 0) && (!p.cpu || l.MaxCPUPercent <= 0) {
		return "", nil
	}
	dir := filepath.Join(p.parent, fmt.Sprintf("kaelix-%s-%d-%d", sanitize(name), os.Getpid(), seq))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("cgroup %s: %w", dir, err)
	}
	cg := cgroup(dir)
	if p.memory && l.MaxMemoryMB > 0 {
		if err := cg.write("memory.max", strconv.FormatInt(int64(l.MaxMemoryMB)<<20, 10)); err != nil {
			cg.remove()
			return "", err
		}
		if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
			cg.write("memory.swap.max", "0")
		}
	}
	if p.cpu && l.MaxCPUPercent > 0 {
		const period = 100000 // µs
		if err := cg.write("cpu.max", fmt.Sprintf("%d %d", l.MaxCPUPercent*period/100, period)); err != nil {
			cg.remove()
			return "", err
		}
	}
	return cg, nil
}

func (c cgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(string(c), file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("cgroup %s: %w", file, err)
	}
	return nil
}

// enter moves pid into the cgroup.
func (c cgroup) enter(pid int) error {
	if c == "" {
		return nil
	}
	return c.write("cgroup.procs", strconv.Itoa(pid))
}

// oomKills is memory.events' oom_kill count (0 when unreadable).
func (c cgroup) oomKills() int {
	if c == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(string(c), "memory.events"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// remove deletes the (empty) cgroup; a real cgroupfs refuses while a
// process is in it. Fixture trees (plain directories) are emptied first.
func (c cgroup) remove() {
	if c == "" {
		return
	}
	if os.Remove(string(c)) != nil {
		if _, err := os.Stat(filepath.Join(string(c), "cgroup.controllers")); err != nil { // not a real cgroup
			os.RemoveAll(string(c))
		}
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
