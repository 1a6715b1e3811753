package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/bytesize"
	"github.com/kaelix-io/kaelix/numa"
	"github.com/kaelix-io/kaelix/stat"
)

// DoctorCmd is `kaelixctl doctor`: the host checks an operator runs before
// going live, each with its fix. Exit codes as monitoring plugins (Nagios,
// Icinga): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, the worst check's.
//
// --root points every file it reads (sys/, proc/, etc/) at a fixture tree;
// the statfs of /dev/shm, RLIMIT_MEMLOCK and membarrier are then taken from
// the tree too (proc/self/limits, the dev/shm directory's file system) or
// skipped, never from this machine.
type DoctorCmd struct {
	Root      string `help:"Read sysfs, procfs and /etc under this directory (a fixture tree); default the live host." default:"/" placeholder:"DIR"`
	Config    string `help:"kaelixd's configuration file: its declared topics are checked against /dev/shm's size, its socket directory's permissions." type:"path" placeholder:"FILE"`
	Memlock   string `name:"min-memlock" help:"RLIMIT_MEMLOCK below this is a WARNING (mlock of the regions fails past it)." default:"64MiB" placeholder:"SIZE"`
	DaemonPID int    `name:"daemon-pid" help:"kaelixd's pid, to check the user it runs as (default: its heartbeat's, else this process's user)." placeholder:"PID"`
}

// Doctor statuses and their exit codes. The report takes the worst check,
// CRITICAL over WARNING over UNKNOWN over OK (a check that could not be
// made hides no real finding).
const (
	docOK       = "OK"
	docWarning  = "WARNING"
	docCritical = "CRITICAL"
	docUnknown  = "UNKNOWN"
)

var (
	docCode = map[string]int{docOK: 0, docWarning: 1, docCritical: 2, docUnknown: 3}
	docRank = map[string]int{docOK: 0, docUnknown: 1, docWarning: 2, docCritical: 3}
)

// DoctorCheck is one check's verdict.
type DoctorCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// DoctorReport is `doctor -o json`.
type DoctorReport struct {
	Status string        `json:"status"`
	Checks []DoctorCheck `json:"checks"`
}

// doctor holds the host's inputs; tests replace the syscalls.
type doctor struct {
	root       string
	cfg        config.Config
	cfgGiven   bool
	minMemlock uint64
	daemonPID  int
	statfs     func(path string) (total, free uint64, err error)
	membarrier func() (mask int, err error)
	uid        int
}

// Run runs the checks and exits with the worst status.
func (cmd *DoctorCmd) Run(g *Globals) error {
	var ml byteSize
	if err := ml.UnmarshalText([]byte(cmd.Memlock)); err != nil {
		return invalidf("--min-memlock: %v", err)
	}
	d := &doctor{root: cmd.Root, minMemlock: uint64(ml), daemonPID: cmd.DaemonPID, uid: os.Geteuid(), cfg: config.Default()}
	if cmd.Config != "" {
		ld, err := (&config.Loader{Path: cmd.Config, Environ: []string{}}).Load()
		if err != nil {
			return invalidf("%v", err)
		}
		d.cfg, d.cfgGiven = ld.Config, true
	}
	if g.Socket != "" {
		d.cfg.Daemon.SocketPath = g.Socket
	} else if d.cfg.Daemon.SocketPath == "" {
		d.cfg.Daemon.SocketPath = client.DefaultSocketPath()
	}
	if d.root == "/" || d.root == "" {
		d.root = "/"
		d.statfs = statfsBytes
		d.membarrier = membarrierQuery
	} else {
		d.statfs = statfsBytes // of the fixture's dev/shm directory
	}
	rep := d.run()
	if g.json() {
		if err := writeJSON(g.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.printText(g.stdout)
	}
	if code := docCode[rep.Status]; code != 0 {
		panic(exitRequest(code))
	}
	return nil
}

// printText writes one line per check (status, name, message), its fix
// lines under it, then the overall status.
func (rep DoctorReport) printText(w io.Writer) {
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "%-8s  %-14s  %s\n", c.Status, c.Name, c.Message)
		if c.Fix != "" {
			for _, line := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(w, "%-8s  %-14s  fix: %s\n", "", "", line)
			}
		}
	}
	fmt.Fprintf(w, "\nkaelixctl doctor: %s\n", rep.Status)
}

func (d *doctor) path(p string) string { return filepath.Join(d.root, p) }

func (d *doctor) read(p string) (string, error) {
	b, err := os.ReadFile(d.path(p))
	return strings.TrimSpace(string(b)), err
}

// run runs every check; the report's status is the worst.
func (d *doctor) run() DoctorReport {
	checks := []DoctorCheck{
		d.hugePages(), d.memlock(), d.shmSize(), d.membarrierCheck(), d.thp(),
		d.governor(), d.isolated(), d.removeIPC(), d.socketDir(),
	}
	worst := docOK
	for _, c := range checks {
		if docRank[c.Status] > docRank[worst] {
			worst = c.Status
		}
	}
	return DoctorReport{Status: worst, Checks: checks}
}

func (d *doctor) hugePages() DoctorCheck {
	c := DoctorCheck{Name: "hugepages"}
	topo, err := numa.Load(d.root)
	if err != nil {
		c.Status, c.Message = docUnknown, fmt.Sprintf("cannot read the NUMA topology: %v", err)
		return c
	}
	var parts []string
	reserved := false
	for _, n := range topo.Nodes {
		for _, p := range n.HugePages {
			parts = append(parts, fmt.Sprintf("node%d %s: %d reserved, %d free", n.ID, bytesize.Human(p.PageSizeBytes), p.Total, p.Free))
			reserved = reserved || p.Total > 0
		}
	}
	mounts, _ := d.read("proc/mounts")
	mounted := strings.Contains(mounts, " hugetlbfs ")
	switch {
	case !reserved:
		c.Status = docWarning
		c.Message = "no huge pages reserved on any node: every region goes to tmpfs (4 KiB pages, more TLB misses)"
		c.Fix = "scripts/hugepages.sh reserve N --size 2M --node K (or: echo N > /sys/devices/system/node/nodeK/hugepages/hugepages-2048kB/nr_hugepages; vm.nr_hugepages in /etc/sysctl.d to keep it)"
	case !mounted:
		c.Status = docWarning
		c.Message = "huge pages reserved but no hugetlbfs mounted: kaelixd cannot use them (" + strings.Join(parts, "; ") + ")"
		c.Fix = "mount -t hugetlbfs -o pagesize=2M none /dev/hugepages (or enable dev-hugepages.mount)"
	default:
		c.Status, c.Message = docOK, strings.Join(parts, "; ")
	}
	return c
}

// limits reads "Max locked memory" from proc/self/limits (soft limit).
func (d *doctor) memlock() DoctorCheck {
	c := DoctorCheck{Name: "memlock", Fix: "LimitMEMLOCK=infinity in kaelixd's unit (packaging/kaelixd.service), or `ulimit -l unlimited` / memlock in /etc/security/limits.conf for a shell"}
	f, err := os.Open(d.path("proc/self/limits"))
	if err != nil {
		c.Status, c.Message, c.Fix = docUnknown, fmt.Sprintf("cannot read RLIMIT_MEMLOCK: %v", err), ""
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Max locked memory") {
			continue
		}
		fields := strings.Fields(strings.TrimPrefix(line, "Max locked memory"))
		if len(fields) < 1 {
			break
		}
		if fields[0] == "unlimited" {
			c.Status, c.Message, c.Fix = docOK, "RLIMIT_MEMLOCK unlimited", ""
			return c
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			break
		}
		if v < d.minMemlock {
			c.Status = docWarning
			c.Message = fmt.Sprintf("RLIMIT_MEMLOCK is %s, below %s: shm.mlock = auto locks nothing past it, required refuses topics (CAP_IPC_LOCK lifts the limit)", bytesize.Human(v), bytesize.Human(d.minMemlock))
			return c
		}
		c.Status, c.Message, c.Fix = docOK, "RLIMIT_MEMLOCK "+bytesize.Human(v), ""
		return c
	}
	c.Status, c.Message, c.Fix = docUnknown, "no \"Max locked memory\" line in proc/self/limits", ""
	return c
}

func (d *doctor) shmSize() DoctorCheck {
	c := DoctorCheck{Name: "shm-size"}
	dir := d.path("dev/shm")
	total, free, err := d.statfs(dir)
	if err != nil {
		c.Status, c.Message = docUnknown, fmt.Sprintf("statfs %s: %v", dir, err)
		return c
	}
	var need uint64
	for _, t := range d.cfg.Topics {
		need += d.cfg.TopicBytes(t)
	}
	what := fmt.Sprintf("%s: %s, %s free", dir, bytesize.Human(total), bytesize.Human(free))
	fix := "mount -o remount,size=NG /dev/shm (and size= in /etc/fstab), or smaller or fewer topics"
	switch {
	case !d.cfgGiven:
		c.Status, c.Message = docOK, what+" (pass --config to check the declared topics against it)"
	case need > total:
		c.Status, c.Message, c.Fix = docCritical, fmt.Sprintf("the declared topics need %s, more than all of %s", bytesize.Human(need), what), fix
	case need > free:
		c.Status, c.Message, c.Fix = docWarning, fmt.Sprintf("the declared topics need %s, more than is free (%s)", bytesize.Human(need), what), fix
	default:
		c.Status, c.Message = docOK, fmt.Sprintf("the declared topics need %s of %s", bytesize.Human(need), what)
	}
	return c
}

// membarrier commands (linux/membarrier.h).
const (
	membarrierCmdQuery                  = 0
	membarrierCmdGlobalExpedited        = 1 << 1
	membarrierCmdRegisterGlobalExpedite = 1 << 2
)

func membarrierQuery() (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdQuery, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func (d *doctor) membarrierCheck() DoctorCheck {
	c := DoctorCheck{Name: "membarrier"}
	if d.membarrier == nil {
		c.Status, c.Message = docUnknown, "not checked against a fixture tree (a syscall of this machine)"
		return c
	}
	mask, err := d.membarrier()
	want := membarrierCmdGlobalExpedited | membarrierCmdRegisterGlobalExpedite
	switch {
	case err != nil:
		c.Status, c.Message = docWarning, fmt.Sprintf("membarrier(2) unavailable (%v): every commit uses a locked store instead of a plain one", err)
		c.Fix = "a kernel with CONFIG_MEMBARRIER (Linux 4.16+ for the expedited global command); a seccomp profile that allows membarrier"
	case mask&want != want:
		c.Status, c.Message = docWarning, fmt.Sprintf("membarrier(2) lacks MEMBARRIER_CMD_GLOBAL_EXPEDITED (mask %#x): commits use a locked store", mask)
		c.Fix = "Linux 4.16 or later"
	default:
		c.Status, c.Message = docOK, "MEMBARRIER_CMD_GLOBAL_EXPEDITED available: commits are plain stores, sleepers fence"
	}
	return c
}

func (d *doctor) thp() DoctorCheck {
	c := DoctorCheck{Name: "thp"}
	enabled, err := d.read("sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		c.Status, c.Message = docOK, "no transparent huge pages in this kernel"
		return c
	}
	shmem, _ := d.read("sys/kernel/mm/transparent_hugepage/shmem_enabled")
	mode := bracketed(enabled)
	c.Message = fmt.Sprintf("enabled [%s], shmem_enabled [%s]", mode, bracketed(shmem))
	if mode == "always" {
		c.Status = docWarning
		c.Message += ": khugepaged compacts and collapses pages in every process, a source of latency spikes"
		c.Fix = "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (transparent_hugepage=madvise on the kernel command line); kaelixd madvises only its own tmpfs regions (shm.transparent_hugepages)"
		return c
	}
	c.Status = docOK
	return c
}

// bracketed returns the [selected] word of a sysfs choice file.
func bracketed(s string) string {
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return s
	}
	return s[i+1 : j]
}

func (d *doctor) governor() DoctorCheck {
	c := DoctorCheck{Name: "cpu-governor"}
	files, _ := filepath.Glob(d.path("sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
	if len(files) == 0 {
		c.Status, c.Message = docOK, "no cpufreq scaling (a VM, or the firmware owns frequency)"
		return c
	}
	byGov := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cpu := filepath.Base(filepath.Dir(filepath.Dir(f)))
		gov := strings.TrimSpace(string(b))
		byGov[gov] = append(byGov[gov], cpu)
	}
	var slow []string
	for gov, cpus := range byGov {
		if gov != "performance" {
			slow = append(slow, fmt.Sprintf("%s on %s", gov, strings.Join(cpus, ",")))
		}
	}
	if len(slow) > 0 {
		c.Status = docWarning
		c.Message = "CPU frequency governor not performance: " + strings.Join(slow, "; ") + " (a waking subscriber runs slow until the clock ramps up)"
		c.Fix = "cpupower frequency-set -g performance (or tuned-adm profile latency-performance)"
		return c
	}
	c.Status, c.Message = docOK, fmt.Sprintf("performance on all %d CPUs", len(files))
	return c
}

func (d *doctor) isolated() DoctorCheck {
	c := DoctorCheck{Name: "isolated-cpus"}
	iso, err := d.read("sys/devices/system/cpu/isolated")
	if err != nil {
		c.Status, c.Message = docUnknown, fmt.Sprintf("cannot read the isolated CPU list: %v", err)
		return c
	}
	if iso == "" {
		c.Status = docWarning
		c.Message = "no isolated CPUs: busy-spin subscribers and pinned workers share their cores with the kernel and other tasks"
		c.Fix = "isolcpus=N-M nohz_full=N-M rcu_nocbs=N-M on the kernel command line, then pin (kaelix runtime.cpus, kaelix-bench --cpus) to those CPUs"
		return c
	}
	c.Status, c.Message = docOK, "isolated CPUs "+iso
	return c
}

// removeIPC: systemd-logind removes a user's System V IPC and POSIX shared
// memory (/dev/shm files it owns) when its last session ends, unless
// RemoveIPC=no, for users that are not system users (uid above
// SYS_UID_MAX, 999 by default).
func (d *doctor) removeIPC() DoctorCheck {
	c := DoctorCheck{Name: "logind-removeipc"}
	uid, who := d.uid, "this user"
	pid := d.daemonPID
	if pid == 0 {
		dir := d.cfg.Daemon.StateDir
		if dir == "" {
			dir = filepath.Dir(d.cfg.Daemon.SocketPath)
		}
		if hb, err := stat.ReadHeartbeat(dir); err == nil && d.root == "/" {
			pid = hb.PID
		}
	}
	if pid > 0 {
		if s, err := d.read(fmt.Sprintf("proc/%d/status", pid)); err == nil {
			for _, line := range strings.Split(s, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
					if v, err := strconv.Atoi(f[1]); err == nil {
						uid, who = v, fmt.Sprintf("kaelixd (pid %d)", pid)
					}
				}
			}
		}
	}
	remove := "yes" // logind's default
	confs := []string{"etc/systemd/logind.conf"}
	more, _ := filepath.Glob(d.path("etc/systemd/logind.conf.d/*.conf"))
	for _, m := range more {
		rel, _ := filepath.Rel(d.root, m)
		confs = append(confs, rel)
	}
	for _, p := range confs {
		s, err := d.read(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "RemoveIPC" {
				remove = strings.ToLower(strings.TrimSpace(v))
			}
		}
	}
	sysMax := 999
	if s, err := d.read("etc/login.defs"); err == nil {
		for _, line := range strings.Split(s, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "SYS_UID_MAX" {
				if v, err := strconv.Atoi(f[1]); err == nil {
					sysMax = v
				}
			}
		}
	}
	login := uid > sysMax && uint64(uid) != math.MaxUint32 && uid != 65534
	switch {
	case remove == "no" || remove == "false" || remove == "0":
		c.Status, c.Message = docOK, "logind RemoveIPC=no"
	case !login:
		c.Status, c.Message = docOK, fmt.Sprintf("%s runs as uid %d, a system user: logind's RemoveIPC=%s does not touch its regions", who, uid, remove)
	default:
		c.Status = docCritical
		c.Message = fmt.Sprintf("%s runs as uid %d, a login user, and logind's RemoveIPC=%s: its /dev/shm regions are removed when that user's last session ends", who, uid, remove)
		c.Fix = "run kaelixd as a system user (packaging/kaelixd.service: User=kaelix), or set RemoveIPC=no in /etc/systemd/logind.conf and restart systemd-logind"
	}
	return c
}

func (d *doctor) socketDir() DoctorCheck {
	c := DoctorCheck{Name: "socket-dir"}
	dir := filepath.Dir(d.cfg.Daemon.SocketPath)
	if d.root != "/" {
		dir = d.path(dir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		c.Status, c.Message = docWarning, fmt.Sprintf("%s: %v (kaelixd makes it at start if it can)", dir, err)
		c.Fix = "systemd's RuntimeDirectory=kaelix (packaging/kaelixd.service) makes /run/kaelix for the daemon's user"
		return c
	}
	mode := st.Mode()
	var owner uint32
	if sys, ok := st.Sys().(*unix.Stat_t); ok {
		owner = sys.Uid
	} else if sys, ok := st.Sys().(interface{ Uid() uint32 }); ok {
		owner = sys.Uid()
	}
	c.Message = fmt.Sprintf("%s: mode %04o, owner uid %d", dir, mode.Perm(), owner)
	switch {
	case !mode.IsDir():
		c.Status, c.Fix = docCritical, "the socket's directory must be a directory"
	case mode.Perm()&0o002 != 0 && mode&os.ModeSticky == 0:
		c.Status = docCritical
		c.Message += ": world-writable without the sticky bit, anyone can replace the socket"
		c.Fix = fmt.Sprintf("chmod 0755 %s (0750 with a group for clients)", dir)
	case mode.Perm()&0o002 != 0:
		c.Status = docWarning
		c.Message += ": world-writable (sticky): others can squat the socket's name before kaelixd starts"
		c.Fix = "a directory of the daemon's own: /run/kaelix (RuntimeDirectory=kaelix) or $XDG_RUNTIME_DIR/kaelix"
	default:
		c.Status = docOK
	}
	return c
}

func statfsBytes(path string) (total, free uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}
