package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSamplerRealProc samples this host's /proc and /sys and checks the
// samples are well formed and survive a JSON round trip.
func TestSamplerRealProc(t *testing.T) {
	s, err := NewSampler("test-host", "/proc", "/sys")
	if err != nil {
		t.Fatal(err)
	}
	var last Sample
	for i := range 3 {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		got, err := s.Sample(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back Sample
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if back != got {
			t.Errorf("JSON round trip: %+v != %+v", back, got)
		}
		if got.Seq != uint64(i) || got.Host != "test-host" || got.TimeNS == 0 {
			t.Errorf("sample %d: seq %d host %q time %d", i, got.Seq, got.Host, got.TimeNS)
		}
		if (i == 0) != (got.WindowNS == 0) || got.WindowNS < 0 {
			t.Errorf("sample %d: window %d ns", i, got.WindowNS)
		}
		last = got
	}
	c := last.CPU
	if c.Cores < 1 {
		t.Errorf("cores = %d", c.Cores)
	}
	for name, v := range map[string]float64{"busy": c.BusyPct, "user": c.UserPct, "system": c.SystemPct, "iowait": c.IOWaitPct, "mem used": last.Mem.UsedPct} {
		if v < 0 || v > 100 || math.IsNaN(v) {
			t.Errorf("%s = %v%%", name, v)
		}
	}
	if c.UserPct+c.SystemPct > c.BusyPct+0.2 {
		t.Errorf("user %v + system %v > busy %v", c.UserPct, c.SystemPct, c.BusyPct)
	}
	if last.Mem.TotalBytes == 0 || last.Mem.AvailableBytes > last.Mem.TotalBytes {
		t.Errorf("mem: %+v", last.Mem)
	}
	for name, v := range map[string]float64{"rx": last.Net.RxBytesPerSec, "tx": last.Net.TxBytesPerSec, "read": last.Disk.ReadBytesPerSec, "write": last.Disk.WriteBytesPerSec} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s rate = %v", name, v)
		}
	}
}

// TestSamplerRates drives the Sampler over a fixture tree whose counters
// it rewrites between samples, and checks the exact rates.
func TestSamplerRates(t *testing.T) {
	root := t.TempDir()
	proc, sys := filepath.Join(root, "proc"), filepath.Join(root, "sys")
	for _, d := range []string{filepath.Join(proc, "net"), filepath.Join(sys, "block", "vda"), filepath.Join(sys, "block", "loop0")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(proc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// counters at t0 and t1 = t0 + 1 s. CPU fields: user nice system idle
	// iowait irq softirq steal guest guest_nice, in 10 ms ticks.
	fixture := func(user, system, idle, iowait, rx, tx, rdSectors, wrSectors int) {
		write("stat", "cpu  "+itoa(user)+" 0 "+itoa(system)+" "+itoa(idle)+" "+itoa(iowait)+" 0 0 0 0 0\n"+
			"cpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 0\nctxt 0\nbtime 0\nprocesses 0\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
		write("meminfo", "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n")
		write("loadavg", "0.50 0.40 0.30 1/100 1234\n")
		write("net/dev", "Inter-|   Receive                                                |  Transmit\n"+
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
			"    lo: 999999 0 0 0 0 0 0 0 999999 0 0 0 0 0 0 0\n"+
			"  eth0: "+itoa(rx)+" 0 0 0 0 0 0 0 "+itoa(tx)+" 0 0 0 0 0 0 0\n")
		write("diskstats", "   8       0 vda 10 0 "+itoa(rdSectors)+" 0 20 0 "+itoa(wrSectors)+" 0 0 0 0 0 0 0 0 0 0\n"+
			"   8       1 vda1 10 0 "+itoa(rdSectors)+" 0 20 0 "+itoa(wrSectors)+" 0 0 0 0 0 0 0 0 0 0\n"+
			"   7       0 loop0 5 0 1000 0 5 0 1000 0 0 0 0 0 0 0 0 0 0\n")
	}
	s, err := NewSampler("fixture", proc, sys)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	fixture(100, 50, 800, 50, 1000, 2000, 100, 200)
	first, err := s.Sample(t0)
	if err != nil {
		t.Fatal(err)
	}
	if first.WindowNS != 0 || first.CPU.BusyPct != 0 || first.Net.RxBytesPerSec != 0 {
		t.Errorf("first sample has rates: %+v", first)
	}
	// Over 1 s: 200 ticks, 60 user, 40 system, 80 idle, 20 iowait.
	fixture(160, 90, 880, 70, 1000+4096, 2000+1024, 100+8, 200+16)
	got, err := s.Sample(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := Sample{
		Host: "fixture", Seq: 1, TimeNS: t0.Add(time.Second).UnixNano(), WindowNS: 1e9,
		CPU: CPUSample{Cores: 2, BusyPct: 50, UserPct: 30, SystemPct: 20, IOWaitPct: 10, Load1: 0.5},
		Mem: MemSample{TotalBytes: 1000 << 10, AvailableBytes: 250 << 10, UsedPct: 75},
		Net: NetSample{Interfaces: 1, RxBytes: 5096, TxBytes: 3024, RxBytesPerSec: 4096, TxBytesPerSec: 1024},
		Disk: DiskSample{Devices: 1, ReadBytes: 108 * 512, WriteBytes: 216 * 512, ReadOps: 10, WriteOps: 20,
			ReadBytesPerSec: 8 * 512, WriteBytesPerSec: 16 * 512},
	}
	if got != want {
		t.Errorf("sample:\n got %+v\nwant %+v", got, want)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
