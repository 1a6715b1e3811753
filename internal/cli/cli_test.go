package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type grammar struct {
	Format
	N       int              `help:"A number." default:"3"`
	Version kong.VersionFlag `help:"Print the version."`
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		ok     bool
		stdout string
		stderr string
	}{
		{nil, ExitOK, true, "", ""},
		{[]string{"-o", "json", "--n", "5"}, ExitOK, true, "", ""},
		{[]string{"-h"}, ExitOK, false, "Usage: tool", ""},
		{[]string{"--help"}, ExitOK, false, "A number.", ""},
		{[]string{"--version"}, ExitOK, false, "tool", ""},
		{[]string{"--bogus"}, ExitUsage, false, "", "tool: unknown flag --bogus\n  run `tool --help` for usage\n"},
		{[]string{"-o", "xml"}, ExitUsage, false, "", "--format"},
		{[]string{"--n", "many"}, ExitUsage, false, "", "--n"},
	} {
		var g grammar
		var out, errb bytes.Buffer
		_, code, ok := Parse("tool", "A tool.", &g, c.args, &out, &errb, nil)
		if code != c.code || ok != c.ok || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%q: code %d ok %v, stdout %q, stderr %q", c.args, code, ok, out.String(), errb.String())
		}
		if c.ok && c.code == ExitOK && len(c.args) > 0 && (!g.JSON() || g.N != 5) {
			t.Errorf("%q: parsed %+v", c.args, g)
		}
	}
}
