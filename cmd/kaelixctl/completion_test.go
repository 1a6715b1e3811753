package main

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestCompletion: the candidates come from the grammar (verbs, flags of
// the verb and the globals, enum values) and topic names from a live
// kaelixd; the bash script, sourced in a real bash, fills COMPREPLY from
// the built binary. The zsh and fish scripts are checked for their hooks
// only (no zsh or fish on the test host).
func TestCompletion(t *testing.T) {
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "comp.alpha")
	d.mustCtl(t, nil, "topics", "create", "comp.beta")
	cands := func(words ...string) []string {
		t.Helper()
		out := d.mustCtl(t, nil, append([]string{"__complete", "--"}, words...)...)
		return strings.Fields(out)
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"to"}, []string{"topics"}},
		{[]string{"topics", ""}, []string{"create", "delete", "info", "list", "stats"}},
		{[]string{"sub", "comp."}, []string{"comp.alpha", "comp.beta"}},
		{[]string{"--socket", d.socket, "sub", "comp.a"}, []string{"comp.alpha"}},
		{[]string{"sub", "comp.alpha", "--from", ""}, []string{"latest", "oldest"}},
		{[]string{"topics", "create", "x", "--pol"}, []string{"--policy"}},
		{[]string{"replay", "f", "--topic", "comp.b"}, []string{"comp.beta"}},
		{[]string{"-o", "j"}, []string{"json"}},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}},
	} {
		got := cands(c.words...)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("complete %q: %v, want %v", c.words, got, c.want)
		}
	}
	if got := cands("--"); !slices.Contains(got, "--socket") || slices.Contains(got, "--policy") {
		t.Errorf("global flags: %v", got)
	}
	if got := cands(""); slices.Contains(got, "__complete") {
		t.Errorf("the hidden verb is offered: %v", got)
	}

	script := d.mustCtl(t, nil, "completion", "bash")
	cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=(kaelixctl --socket "$SOCK" sub comp.)
COMP_CWORD=4
_kaelixctl
printf '%s\n' "${COMPREPLY[@]}"`)
	cmd.Env = []string{"PATH=" + binDir + ":/usr/bin:/bin", "SOCK=" + d.socket}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\n%s", err, errb.String())
	}
	if got := strings.Fields(out.String()); !slices.Equal(got, []string{"comp.alpha", "comp.beta"}) {
		t.Errorf("bash COMPREPLY %v", got)
	}
	if z := d.mustCtl(t, nil, "completion", "zsh"); !strings.HasPrefix(z, "#compdef kaelixctl") || !strings.Contains(z, "__complete") {
		t.Errorf("zsh script:\n%s", z)
	}
	if f := d.mustCtl(t, nil, "completion", "fish"); !strings.Contains(f, "complete -c kaelixctl") || !strings.Contains(f, "__complete") {
		t.Errorf("fish script:\n%s", f)
	}
}
