package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/daemon/config"
)

// TestErrorFixtures loads each testdata/errors/NAME.toml and compares the
// errors with NAME.want, one "FILE:LINE: key: message" a line, in order:
// type errors and unknown keys are reported together with every other
// error, none hides another.
func TestErrorFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/errors/*.toml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantB, err := os.ReadFile(strings.TrimSuffix(f, ".toml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSpace(string(wantB)), "\n")
			_, err = config.LoadBytes(name, data, config.Default())
			compareErrors(t, err, want)
			// The daemon's path: Load names the file as given.
			_, err = (&config.Loader{Path: f, Environ: []string{}}).Load()
			for i, w := range want {
				want[i] = filepath.Dir(f) + "/" + w
			}
			compareErrors(t, err, want)
		})
	}
}

func compareErrors(t *testing.T, err error, want []string) {
	t.Helper()
	var fes config.Errors
	if !errors.As(err, &fes) || !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	got := make([]string, len(fes))
	for i, fe := range fes {
		got[i] = fe.Error()
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
