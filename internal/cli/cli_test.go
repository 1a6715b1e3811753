package cli

import (
	"bytes"
	"context"
	"errors"
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

type failCmd struct {
	Fail bool `help:"Fail."`
}

// globals stands for a command's globals: Run hands it the context.
type globals struct{ ctx context.Context }

func (f *failCmd) Run(g *globals) error {
	if g.ctx == nil {
		return errors.New("no context")
	}
	if f.Fail {
		return errors.New("it broke")
	}
	return nil
}

type runGrammar struct {
	Do failCmd `cmd:"" help:"Do it."`
}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"do"}, ExitOK, ""},
		{[]string{"do", "--fail"}, 7, "tool: it broke\n  fix it\n"},
	} {
		var gr runGrammar
		var errb bytes.Buffer
		kctx, _, ok := Parse("tool", "A tool.", &gr, c.args, &errb, &errb, nil)
		if !ok {
			t.Fatalf("%q: %s", c.args, errb.String())
		}
		g := &globals{}
		code := Run(context.Background(), "tool", kctx, &errb, func(ctx context.Context) { g.ctx = ctx },
			func(error) (int, string) { return 7, "fix it" }, g)
		if code != c.code || errb.String() != c.stderr {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", c.args, code, errb.String(), c.code, c.stderr)
		}
	}
}
