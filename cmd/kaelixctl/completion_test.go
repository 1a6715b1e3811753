package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletion: the candidates come from the grammar (verbs, flags of
// the verb and the globals, enum values) and topic names from a live
// kaelixd; the bash script, sourced in a real bash, fills COMPREPLY from
// the built binary. TestCompletionZsh and TestCompletionFish run the zsh
// and fish scripts in those shells.
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

// completionShell starts a daemon with two topics and returns it with the
// path of the named shell: the one scripts/shells.sh (run by make setup)
// unpacked into $KAELIX_SHELLS or the repository's .cache/shells, else
// one on PATH. It skips the test, saying why, when neither exists.
func completionShell(t *testing.T, shell string) (*testDaemon, string) {
	t.Helper()
	path, err := findShell(shell)
	if err != nil {
		t.Skipf("%s completion script not run: %v", shell, err)
	}
	d := startDaemon(t)
	d.mustCtl(t, nil, "topics", "create", "comp.alpha")
	d.mustCtl(t, nil, "topics", "create", "comp.beta")
	return d, path
}

// findShell returns the wrapper scripts/shells.sh made for shell, or the
// shell on PATH, or an error that names where it looked and why the
// fetch failed (the tail of its download.log).
func findShell(shell string) (string, error) {
	dir := os.Getenv("KAELIX_SHELLS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "shells")
	}
	wrapper := filepath.Join(dir, "bin", shell)
	if err := exec.Command(wrapper, "-c", "exit 0").Run(); err == nil {
		return filepath.Abs(wrapper)
	}
	if path, err := exec.LookPath(shell); err == nil {
		return path, nil
	}
	why := "run make setup (scripts/shells.sh fetches it)"
	if log, err := os.ReadFile(filepath.Join(dir, "download.log")); err == nil {
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		why = "scripts/shells.sh could not fetch it: " + strings.Join(lines[max(0, len(lines)-3):], "; ")
	}
	return "", fmt.Errorf("no %s on PATH nor in %s: %s", shell, filepath.Join(dir, "bin"), why)
}

// runShell runs script in shell with kaelixctl (the built one) on PATH
// and a private HOME, and returns its stdout.
func runShell(t *testing.T, shell string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(shell, args...)
	cmd.Env = append([]string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s", shell, err, out.String(), errb.String())
	}
	return out.String()
}

// TestCompletionZsh: the zsh script, loaded after the real compinit,
// registers _kaelixctl for kaelixctl (compdef), and its function, given
// the words typed, hands compadd a verb and topic names from kaelixd.
// compadd itself works only inside a completion widget, so it is replaced
// by a function printing what it is given.
func TestCompletionZsh(t *testing.T) {
	d, zsh := completionShell(t, "zsh")
	file := filepath.Join(t.TempDir(), "_kaelixctl")
	os.WriteFile(file, []byte(d.mustCtl(t, nil, "completion", "zsh")), 0o644)
	out := runShell(t, zsh, []string{"SCRIPT=" + file, "SOCK=" + d.socket}, "-c", `
autoload -U compinit && compinit -u -D || exit 3
source "$SCRIPT"
print -r -- "registered: $_comps[kaelixctl]"
compadd() {
	local -a q arrays
	zparseopts -D -E Q=q a=arrays
	local n
	if (( $#arrays )); then
		for n in "$@"; do print -rl -- "${(@P)n}"; done
	else
		print -rl -- "$@"
	fi
}
print -- "-- verb"
words=(kaelixctl to); CURRENT=2; _kaelixctl
print -- "-- topic"
words=(kaelixctl --socket "$SOCK" sub comp.); CURRENT=5; _kaelixctl
print -- "-- flag value"
words=(kaelixctl sub comp.alpha --from ''); CURRENT=5; _kaelixctl
`)
	checkShellCompletions(t, "zsh", out, "registered: _kaelixctl")
}

// TestCompletionFish: fish's own completer (complete -C) with the fish
// script sourced completes a verb and topic names from kaelixd.
func TestCompletionFish(t *testing.T) {
	d, fish := completionShell(t, "fish")
	file := filepath.Join(t.TempDir(), "kaelixctl.fish")
	os.WriteFile(file, []byte(d.mustCtl(t, nil, "completion", "fish")), 0o644)
	out := runShell(t, fish, []string{"SCRIPT=" + file, "SOCK=" + d.socket}, "-c", `
source $SCRIPT
echo "registered: "(complete -c kaelixctl | string match -q '*__kaelixctl_complete*'; and echo __kaelixctl_complete)
echo "-- verb"
complete -C "kaelixctl to"
echo "-- topic"
complete -C "kaelixctl --socket $SOCK sub comp."
echo "-- flag value"
complete -C "kaelixctl sub comp.alpha --from "
`)
	checkShellCompletions(t, "fish", out, "registered: __kaelixctl_complete")
}

// checkShellCompletions checks a shell test's output: the registration
// line, then the candidates of each case (fish prints "candidate\tdescription").
func checkShellCompletions(t *testing.T, shell, out, registered string) {
	t.Helper()
	if !strings.Contains(out, registered+"\n") {
		t.Errorf("%s: the script did not register its completer (want %q):\n%s", shell, registered, out)
	}
	got := map[string][]string{}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "-- "); ok {
			section = name
			continue
		}
		if section != "" && line != "" {
			cand, _, _ := strings.Cut(line, "\t")
			got[section] = append(got[section], cand)
		}
	}
	for section, want := range map[string][]string{
		"verb":       {"topics"},
		"topic":      {"comp.alpha", "comp.beta"},
		"flag value": {"latest", "oldest"},
	} {
		slices.Sort(got[section])
		if !slices.Equal(got[section], want) {
			t.Errorf("%s, %s: completed %q, want %q\n%s", shell, section, got[section], want, out)
		}
	}
}
