package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/ringbuf"
	"golang.org/x/sys/unix"
)

// Machine is the facts every report records about where it ran.
type Machine struct {
	Host        string `json:"host"`
	Date        string `json:"date"` // RFC 3339, UTC
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"` // logical CPUs online
	Kernel      string `json:"kernel"`
	NUMANodes   string `json:"numa_nodes"` // /sys/devices/system/node/online, e.g. "0" or "0-1"
	HugePages   string `json:"hugepages"`  // reserved/free 2 MiB pages, hugetlbfs mount, whether regions used them
	THP         string `json:"thp,omitempty"`
	Clocksource string `json:"clocksource,omitempty"`
	// StealPercent is the share of CPU time the hypervisor took from this
	// guest while the harness ran (/proc/stat steal), when known.
	StealPercent *float64 `json:"steal_percent,omitempty"`
	// LoadAvg is /proc/loadavg when the run started and when it ended:
	// other work on the host shows here.
	LoadAvg string `json:"loadavg,omitempty"`
	// TimerResolutionNS is the smallest nonzero step between two
	// consecutive CLOCK_MONOTONIC reads (ringbuf.MonotonicNS): below it,
	// two latencies cannot be told apart.
	TimerResolutionNS int64 `json:"timer_resolution_ns,omitempty"`
	// MemcpyBytesPerS is single-thread copy bandwidth, 4 KiB copies over
	// a 4 MiB buffer (the 4 KiB throughput claim's yardstick).
	MemcpyBytesPerS float64 `json:"memcpy_bytes_per_s,omitempty"`
	// Conditions is what the person running the suite says about the
	// machine's state (kaelix-bench suite --note), e.g. other jobs on it.
	Conditions string `json:"conditions,omitempty"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Command    string `json:"command"`
}

// ReadMachine gathers the facts from /proc and /sys (root "" means "/").
func ReadMachine(root, command string) Machine {
	if root == "" {
		root = "/"
	}
	read := func(p string) string {
		b, err := os.ReadFile(root + p)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	m := Machine{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Cores:      runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Command:    command,
	}
	m.Host, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.CPUModel = cpuModel(read("proc/cpuinfo"))
	m.NUMANodes = read("sys/devices/system/node/online")
	if m.NUMANodes == "" {
		m.NUMANodes = "unknown (no /sys/devices/system/node)"
	}
	m.HugePages = hugePages(read("proc/meminfo"), read("proc/mounts"))
	m.THP = read("sys/kernel/mm/transparent_hugepage/enabled")
	m.Clocksource = read("sys/devices/system/clocksource/clocksource0/current_clocksource")
	if la := read("proc/loadavg"); la != "" {
		m.LoadAvg = "start: " + la
	}
	return m
}

func cpuModel(cpuinfo string) string {
	for line := range strings.SplitSeq(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func hugePages(meminfo, mounts string) string {
	var total, free, size string
	for line := range strings.SplitSeq(meminfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "HugePages_Total":
			total = v
		case "HugePages_Free":
			free = v
		case "Hugepagesize":
			size = v
		}
	}
	mount := "no hugetlbfs mount"
	for line := range strings.SplitSeq(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "hugetlbfs" {
			mount = "hugetlbfs at " + f[1]
			break
		}
	}
	if total == "" {
		return "unknown"
	}
	return "total " + total + ", free " + free + " (" + size + " pages), " + mount
}

// cpuTimes returns total and steal jiffies from /proc/stat's cpu line.
func cpuTimes() (total, steal uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i < 8 { // user..steal; guest time is already in user
			total += n
		}
		if i == 7 {
			steal = n
		}
	}
	return total, steal, true
}

// timerResolution is the smallest nonzero difference between consecutive
// ringbuf.MonotonicNS reads over 100k reads, in ns.
func timerResolution() int64 {
	best := int64(1 << 62)
	prev := ringbuf.MonotonicNS()
	for range 100_000 {
		now := ringbuf.MonotonicNS()
		if d := now - prev; d > 0 && d < best {
			best = d
		}
		prev = now
	}
	return best
}

// memcpyBandwidth copies 4 KiB blocks through 4 MiB buffers on one thread
// for about 3 x 30 ms and returns the best pass's bytes/s.
func memcpyBandwidth() float64 {
	const block, span = 4096, 4 << 20
	src, dst := make([]byte, span), make([]byte, span)
	for i := range src {
		src[i] = byte(i)
	}
	best := 0.0
	for range 3 {
		start := ringbuf.MonotonicNS()
		var n int64
		for ringbuf.MonotonicNS()-start < 30_000_000 {
			for off := 0; off < span; off += block {
				copy(dst[off:off+block], src[off:off+block])
			}
			n += span
		}
		if bw := float64(n) / (float64(ringbuf.MonotonicNS()-start) / 1e9); bw > best {
			best = bw
		}
	}
	return best
}
