package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
)

// Sample is one reading of this host's counters: the payload of a
// host.telemetry record (JSON). Rates and percentages cover the last
// WindowNS nanoseconds (about the Sampler's window, less at the start) and
// are zero in the first sample. /proc/stat counts CPU time in 10 ms ticks,
// so a window much shorter than a second would make the percentages jump.
type Sample struct {
	Host     string     `json:"host"`
	Seq      uint64     `json:"seq"`       // 0, 1, 2, ... per publisher run
	TimeNS   int64      `json:"time_ns"`   // unix ns when sampled
	WindowNS int64      `json:"window_ns"` // what the rates cover; 0 in the first
	CPU      CPUSample  `json:"cpu"`
	Mem      MemSample  `json:"mem"`
	Net      NetSample  `json:"net"`
	Disk     DiskSample `json:"disk"`
}

// CPUSample is the share of all CPUs' time over the interval, in percent
// (0-100), from /proc/stat, and the 1-minute load average.
type CPUSample struct {
	Cores     int     `json:"cores"`
	BusyPct   float64 `json:"busy_pct"` // everything but idle and iowait
	UserPct   float64 `json:"user_pct"` // user + nice
	SystemPct float64 `json:"system_pct"`
	IOWaitPct float64 `json:"iowait_pct"`
	Load1     float64 `json:"load1"`
}

// MemSample is from /proc/meminfo.
type MemSample struct {
	TotalBytes     uint64  `json:"total_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	UsedPct        float64 `json:"used_pct"` // (total - available) / total
}

// NetSample sums /proc/net/dev over every interface but lo.
type NetSample struct {
	Interfaces    int     `json:"interfaces"`
	RxBytes       uint64  `json:"rx_bytes"` // cumulative since boot
	TxBytes       uint64  `json:"tx_bytes"`
	RxBytesPerSec float64 `json:"rx_bytes_per_sec"`
	TxBytesPerSec float64 `json:"tx_bytes_per_sec"`
}

// DiskSample sums /proc/diskstats over whole block devices (those in
// /sys/block), leaving out loop, ram, zram, device-mapper and md devices,
// which would count the same I/O twice.
type DiskSample struct {
	Devices          int     `json:"devices"`
	ReadBytes        uint64  `json:"read_bytes"` // cumulative since boot
	WriteBytes       uint64  `json:"write_bytes"`
	ReadBytesPerSec  float64 `json:"read_bytes_per_sec"`
	WriteBytesPerSec float64 `json:"write_bytes_per_sec"`
	ReadOps          uint64  `json:"read_ops"` // cumulative since boot
	WriteOps         uint64  `json:"write_ops"`
	ReadOpsPerSec    float64 `json:"read_ops_per_sec"`
	WriteOpsPerSec   float64 `json:"write_ops_per_sec"`
}

// sectorBytes is the unit of /proc/diskstats' sector counts, whatever the
// device's own sector size.
const sectorBytes = 512

// Sampler reads the counters under a proc and a sys root (injectable, so a
// test can point it at fixtures). It keeps the readings of the last window
// to compute rates. A Sampler is used by one goroutine.
type Sampler struct {
	host   string
	proc   procfs.FS
	blk    blockdevice.FS
	window time.Duration
	seq    uint64
	hist   []reading // oldest first; hist[0] is the rates' base
}

// reading is what a Sample's rates are computed from.
type reading struct {
	timeNS int64
	cpu    procfs.CPUStat // totals over all CPUs, seconds
	net    NetSample
	disk   DiskSample
}

// DefaultWindow is the span the rates and percentages cover.
const DefaultWindow = time.Second

// NewSampler returns a Sampler reading procRoot (e.g. /proc) and sysRoot
// (e.g. /sys), labelling samples with host, with rates over DefaultWindow.
func NewSampler(host, procRoot, sysRoot string) (*Sampler, error) {
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	bfs, err := blockdevice.NewFS(procRoot, sysRoot)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return &Sampler{host: host, proc: pfs, blk: bfs, window: DefaultWindow}, nil
}

// Sample reads every counter once, at now.
func (s *Sampler) Sample(now time.Time) (Sample, error) {
	out := Sample{Host: s.host, Seq: s.seq, TimeNS: now.UnixNano()}
	st, err := s.proc.Stat()
	if err != nil {
		return out, fmt.Errorf("telemetry: /proc/stat: %w", err)
	}
	mi, err := s.proc.Meminfo()
	if err != nil {
		return out, fmt.Errorf("telemetry: /proc/meminfo: %w", err)
	}
	nd, err := s.proc.NetDev()
	if err != nil {
		return out, fmt.Errorf("telemetry: /proc/net/dev: %w", err)
	}
	disks, err := s.blk.ProcDiskstats()
	if err != nil {
		return out, fmt.Errorf("telemetry: /proc/diskstats: %w", err)
	}
	whole := map[string]bool{}
	if names, err := s.blk.SysBlockDevices(); err == nil {
		for _, n := range names {
			whole[n] = true
		}
	}

	out.CPU.Cores = len(st.CPU)
	if la, err := s.proc.LoadAvg(); err == nil {
		out.CPU.Load1 = la.Load1
	}
	if mi.MemTotalBytes != nil && mi.MemAvailableBytes != nil {
		out.Mem.TotalBytes, out.Mem.AvailableBytes = *mi.MemTotalBytes, *mi.MemAvailableBytes
		if out.Mem.TotalBytes > 0 {
			out.Mem.UsedPct = 100 * float64(out.Mem.TotalBytes-min(out.Mem.AvailableBytes, out.Mem.TotalBytes)) / float64(out.Mem.TotalBytes)
		}
	}
	for name, l := range nd {
		if name == "lo" {
			continue
		}
		out.Net.Interfaces++
		out.Net.RxBytes += l.RxBytes
		out.Net.TxBytes += l.TxBytes
	}
	for _, d := range disks {
		if !countDisk(d.DeviceName, whole) {
			continue
		}
		out.Disk.Devices++
		out.Disk.ReadBytes += d.ReadSectors * sectorBytes
		out.Disk.WriteBytes += d.WriteSectors * sectorBytes
		out.Disk.ReadOps += d.ReadIOs
		out.Disk.WriteOps += d.WriteIOs
	}

	now0 := reading{timeNS: out.TimeNS, cpu: st.CPUTotal, net: out.Net, disk: out.Disk}
	// Drop readings while the next one is still at least a window old, so
	// hist[0] is the newest reading a whole window back (or the oldest).
	for len(s.hist) > 1 && s.hist[1].timeNS <= out.TimeNS-s.window.Nanoseconds() {
		s.hist = s.hist[1:]
	}
	if len(s.hist) > 0 {
		p := s.hist[0]
		out.WindowNS = out.TimeNS - p.timeNS
		if sec := float64(out.WindowNS) / 1e9; sec > 0 {
			out.Net.RxBytesPerSec = perSec(out.Net.RxBytes, p.net.RxBytes, sec)
			out.Net.TxBytesPerSec = perSec(out.Net.TxBytes, p.net.TxBytes, sec)
			out.Disk.ReadBytesPerSec = perSec(out.Disk.ReadBytes, p.disk.ReadBytes, sec)
			out.Disk.WriteBytesPerSec = perSec(out.Disk.WriteBytes, p.disk.WriteBytes, sec)
			out.Disk.ReadOpsPerSec = perSec(out.Disk.ReadOps, p.disk.ReadOps, sec)
			out.Disk.WriteOpsPerSec = perSec(out.Disk.WriteOps, p.disk.WriteOps, sec)
		}
		c0, c1 := p.cpu, st.CPUTotal
		if total := cpuTotal(c1) - cpuTotal(c0); total > 0 {
			idle := (c1.Idle - c0.Idle) + (c1.Iowait - c0.Iowait)
			out.CPU.BusyPct = pct(total-idle, total)
			out.CPU.UserPct = pct((c1.User-c0.User)+(c1.Nice-c0.Nice), total)
			out.CPU.SystemPct = pct((c1.System-c0.System)+(c1.IRQ-c0.IRQ)+(c1.SoftIRQ-c0.SoftIRQ), total)
			out.CPU.IOWaitPct = pct(c1.Iowait-c0.Iowait, total)
		}
	}
	s.hist = append(s.hist, now0)
	s.seq++
	return out, nil
}

// countDisk reports whether a /proc/diskstats device is a whole device
// whose I/O is not counted elsewhere.
func countDisk(name string, whole map[string]bool) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	return len(whole) == 0 || whole[name]
}

// cpuTotal is all CPU time in a CPUStat (guest time is already in user).
func cpuTotal(c procfs.CPUStat) float64 {
	return c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
}

func pct(part, total float64) float64 {
	return math.Round(1000*math.Max(0, math.Min(1, part/total))) / 10
}

// perSec is the counter's increase per second; 0 if it went backwards (an
// interface or device went away).
func perSec(now, before uint64, sec float64) float64 {
	if now < before {
		return 0
	}
	return float64(now-before) / sec
}
