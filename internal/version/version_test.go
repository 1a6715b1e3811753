package version

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	in := Get()
	if in.Go != runtime.Version() || in.Module == "" || in.Protocol == 0 {
		t.Errorf("%+v", in)
	}
	s := in.String("x")
	if !strings.HasPrefix(s, "x "+in.Module+" (commit ") || !strings.Contains(s, in.Go) {
		t.Errorf("String: %q", s)
	}
	if (Info{Commit: "0123456789abcdef0123", Modified: true}).ShortCommit() != "0123456789ab+dirty" {
		t.Error("ShortCommit")
	}
}

// TestEveryBinary: every command under cmd/ answers --version with exit 0
// and one line naming itself, its module version, its commit (built here
// from a git checkout, so known) and the Go version.
func TestEveryBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every command")
	}
	bin := t.TempDir()
	// As make build does: the commit stamped with -ldflags, since the
	// toolchain's own VCS stamping may be off (GOFLAGS=-buildvcs=false).
	const fake = "0123456789abcdef0123456789abcdef01234567"
	out, err := exec.Command("go", "build", "-ldflags", "-X github.com/kaelix-io/kaelix/internal/version.commit="+fake,
		"-o", bin+"/", "github.com/kaelix-io/kaelix/cmd/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	names, _ := filepath.Glob("../../cmd/*")
	if len(names) < 6 {
		t.Fatalf("commands: %v", names)
	}
	for _, dir := range names {
		name := filepath.Base(dir)
		out, err := exec.Command(filepath.Join(bin, name), "--version").CombinedOutput()
		line := strings.TrimSpace(string(out))
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + ` \S+ \(commit [0-9a-f]{12}(\+dirty)?, .*go1\.\d+.*, protocol v\d+\)$`)
		if err != nil || !re.MatchString(line) || strings.Count(line, "\n") != 0 {
			t.Errorf("%s --version: %v\n%s", name, err, out)
		}
	}
}
