package main

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIPubWaitSubscribers: `pub --wait-subscribers 1` started before
// `sub` waits for it, and sub gets every message (the README's quick
// start, without its old `sleep 1`); with nobody subscribing it gives up
// after --wait-timeout with exit 9 and says how many it saw.
func TestCLIPubWaitSubscribers(t *testing.T) {
	d := startDaemon(t)
	const topic = "demo.wait"
	d.mustCtl(t, nil, "topics", "create", topic)

	_, errOut, code := d.ctl(t, nil, "pub", "--wait-subscribers", "1", "--wait-timeout", "300ms", topic, "lost")
	if code != exitNoSubscribers || !strings.Contains(errOut, "waited 300ms for 1 subscriber(s) of demo.wait on partition(s) [0], have [0]") {
		t.Fatalf("pub --wait-subscribers with no subscriber: exit %d, stderr %q; want exit %d naming the wait", code, errOut, exitNoSubscribers)
	}
	// Without --wait-subscribers it publishes into the void, and says so once.
	_, errOut, code = d.ctl(t, nil, "pub", topic, "a", "b", "c")
	if code != 0 || strings.Count(errOut, "kaelixctl: no subscriber can receive on partition 0 of demo.wait, a block topic") != 1 {
		t.Fatalf("pub with no subscriber: exit %d, stderr %q; want exit 0 and one warning", code, errOut)
	}

	for round := range 5 {
		pub := d.start(t, nil, "pub", "--wait-subscribers", "1", topic, "bid 101.25", "ask 101.27")
		// The publisher is attached and waiting before the subscriber starts.
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-pub.done:
			t.Fatalf("round %d: pub ended before any subscriber: %v\nstderr: %s", round, err, pub.errb)
		default:
		}
		sub := d.start(t, nil, "sub", topic, "--count", "2", "--raw")
		if code := pub.wait(t); code != 0 {
			t.Fatalf("round %d: pub exit %d: %s", round, code, pub.errb)
		}
		if code := sub.wait(t); code != 0 || sub.out.String() != "bid 101.25\nask 101.27\n" {
			t.Fatalf("round %d: sub exit %d, output %q (want both messages)\nstderr: %s", round, code, sub.out, sub.errb)
		}
	}
}

// TestCLIPubBlockedSaysWho: the reproduction. `sub` is stopped
// (SIGSTOP) while `pub --count 100000` fills a block topic: after a
// second pub prints who blocks it (the stopped sub's pid, its name, its
// state, its lag), and with --block-timeout it fails with exit 10 naming
// it again. Eviction is off here (0s), so nothing else releases pub.
func TestCLIPubBlockedSaysWho(t *testing.T) {
	d := startDaemon(t, "--set", "daemon.evict_stalled_after=0s")
	const topic = "demo.blocked"
	d.mustCtl(t, nil, "topics", "create", topic, "--capacity", "64KiB")
	pid := d.stoppedSub(t, topic)
	t0 := time.Now()
	_, errOut, code := d.ctl(t, nil, "pub", topic, "x", "--count", "100000", "--block-timeout", "4s")
	took := time.Since(t0)
	if code != exitBlocked {
		t.Fatalf("pub past a stopped subscriber: exit %d after %v, want %d\nstderr: %s", code, took, exitBlocked, errOut)
	}
	t.Logf("pub failed after %v:\n%s", took.Round(time.Millisecond), errOut)
	who := regexp.MustCompile(`back-pressured by subscriber pid ` + strconv.Itoa(pid) + ` \(kaelixctl\), stopped, (\d+) records \((\d+) bytes\) behind`)
	// The first report comes after a second (later on a loaded host).
	report := regexp.MustCompile(`(?m)^kaelixctl: blocked for (\d+(?:\.\d)?)s: kaelix: publish to "demo.blocked" partition 0: ` + who.String())
	if m := report.FindStringSubmatch(errOut); m == nil {
		t.Errorf("no report after a second blocked naming pid %d (kaelixctl), stopped, with its lag:\n%s", pid, errOut)
	} else if after, _ := strconv.ParseFloat(m[1], 64); after < 1 {
		t.Errorf("first report after %ss, want a second", m[1])
	} else if n, _ := strconv.Atoi(m[2]); n == 0 {
		t.Errorf("reported lag of %s records, want > 0", m[2])
	}
	if !strings.Contains(errOut, "(--block-timeout)") || len(who.FindAllString(errOut, -1)) < 2 {
		t.Errorf("the final error does not name the blocking subscriber again:\n%s", errOut)
	}
	if !strings.Contains(errOut, "published ") {
		t.Errorf("no summary of what was published:\n%s", errOut)
	}
}

// TestCLIPubPastStoppedSubByDefault is the reproduction under the
// default configuration: `kaelixctl sub t & kill -STOP $!; kaelixctl pub
// t x --count 100000` used to hang after a ring's worth of messages with
// no word. Now pub says after a second who blocks it, and kaelixd evicts
// the stopped sub after daemon.evict_stalled_after (default 5s, plus up
// to a sweep_interval), so pub finishes.
func TestCLIPubPastStoppedSubByDefault(t *testing.T) {
	d := startDaemon(t)
	const topic = "demo.default"
	d.mustCtl(t, nil, "topics", "create", topic)
	pid := d.stoppedSub(t, topic)
	t0 := time.Now()
	_, errOut, code := d.ctl(t, nil, "pub", topic, "x", "--count", "100000")
	took := time.Since(t0)
	t.Logf("pub exit %d after %v:\n%s", code, took.Round(time.Millisecond), errOut)
	if code != 0 || !strings.Contains(errOut, "published 100000 messages") {
		t.Fatalf("pub past a stopped subscriber with the default eviction: exit %d after %v", code, took)
	}
	if !regexp.MustCompile(`kaelixctl: blocked for \d+(\.\d)?s: `).MatchString(errOut) || !strings.Contains(errOut, "pid "+strconv.Itoa(pid)+" (kaelixctl), stopped") {
		t.Errorf("pub did not say after a second that the stopped sub (pid %d) blocks it", pid)
	}
	if took < 4*time.Second {
		t.Errorf("pub finished after %v, before the 5s default eviction could have released it", took)
	}
	if out := d.mustCtl(t, nil, "daemon", "status"); !strings.Contains(out, "evictions:    1 subscriber(s)") {
		t.Errorf("daemon status does not show the eviction:\n%s", out)
	}
}

// stoppedSub starts `kaelixctl sub topic --raw`, waits until it holds a
// subscriber slot, stops it (SIGSTOP, continued at cleanup) and returns
// its pid once the kernel shows it stopped.
func (d *testDaemon) stoppedSub(t *testing.T, topic string) int {
	t.Helper()
	sub := d.start(t, nil, "sub", topic, "--raw")
	d.waitSubscribers(t, topic, 1)
	pid := sub.cmd.Process.Pid
	sub.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { sub.cmd.Process.Signal(syscall.SIGCONT) })
	for deadline := time.Now().Add(time.Minute); procState(pid) != 'T'; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sub did not stop")
		}
	}
	return pid
}
