package main

import (
	"bytes"
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
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--socket", "/nonexistent/kaelixd.sock"}, c.args...), nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}
