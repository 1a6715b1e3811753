package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestCreateFlagMessages: --capacity 0 is refused (it used to mean the 1
// MiB default silently), and the documented minimum --capacity 4KiB with
// the default --max-message names the flag to change. Both fail before
// any daemon is asked.
func TestCreateFlagMessages(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"topics", "create", "x", "--capacity", "0"}, exitUsage, "more than 0"},
		{[]string{"topics", "create", "x", "--capacity", "4KiB"}, exitInvalid, "--max-message 2016"},
		{[]string{"topics", "create", "x", "--max-message", "0"}, exitUsage, "more than 0"},
		{[]string{"topics", "create", "x", "--capacity", "-1"}, exitUsage, `"-1" is not a size`},
		{[]string{"topics", "create", "x", "--node", "-1"}, exitBrokerNotRunning, "Broker is not running"}, // parsed: -1 is no binding
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--socket", "/nonexistent/kaelixd.sock"}, c.args...), nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

// TestPubRateRepeats: `pub TOPIC MSG --rate R` without --count publishes
// MSG again and again until stopped (it used to publish it once).
func TestPubRateRepeats(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "rate.t")
	sub := d.start(t, nil, "sub", "rate.t", "--count", "5", "--for", "60s", "--raw")
	d.waitSubscribers(t, "rate.t", 1)
	pub := d.start(t, nil, "pub", "rate.t", "tick", "--rate", "50")
	if code := sub.wait(t); code != 0 {
		t.Fatalf("sub: exit %d\n%s", code, sub.errb)
	}
	pub.cmd.Process.Signal(os.Interrupt)
	if code := pub.wait(t); code != 0 {
		t.Errorf("pub after SIGINT: exit %d\n%s", code, pub.errb)
	}
	if got := strings.Fields(sub.out.String()); len(got) != 5 || got[4] != "tick" {
		t.Errorf("sub received %q, want tick 5 times", got)
	}
}

// TestGroupLabel: a topic left in the daemon's group (no --group, or
// --group root: gid 0 means the daemon's in the protocol) shows the group
// its region files really have, not just "daemon's".
func TestGroupLabel(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "grp.t", "--group", "0")
	out := d.mustCtl(t, nil, "topics", "info", "grp.t")
	if !strings.Contains(out, "the daemon's)") || !strings.Contains(out, "group ") {
		t.Errorf("topics info:\n%s", out)
	}
	if os.Getegid() == 0 && !strings.Contains(out, "(0, the daemon's)") {
		t.Errorf("run as gid 0, the regions' group is 0:\n%s", out)
	}
}
