package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/daemon/config"
)

// TestProcessorErrors: each bad [[processors]] entry is reported under its
// key path, at its file line, naming the processor: an unknown plugin, an
// input topic not declared, a plugin whose Init fails, a cycle A→B→A.
func TestProcessorErrors(t *testing.T) {
	body := `[[topics]]
name = "a"
[[topics]]
name = "b"

[[processors]]
name = "unknown-plugin"
input = "a"
  [[processors.stages]]
  plugin = "frobnicate"

[[processors]]
name = "no-input"
input = "nowhere"
  [[processors.stages]]
  plugin = "stamp"

[[processors]]
name = "bad-init"
input = "a"
  [[processors.stages]]
  plugin = "stamp"
  [[processors.stages]]
  plugin = "sample"
  permissions = { can_read_config = true }
  config = { every = -3 }

[[processors]]
name = "a-to-b"
input = "a"
outputs = ["b"]
  [[processors.stages]]
  plugin = "stamp"

[[processors]]
name = "b-to-a"
input = "b"
outputs = ["a"]
  [[processors.stages]]
  plugin = "stamp"
  [processors.limits]
  max_memory_mb = -1
`
	p := writeFile(t, body)
	_, err := (&config.Loader{Path: p, Environ: []string{}}).Load()
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Load: %v", err)
	}
	var fes config.Errors
	errors.As(err, &fes)
	want := []struct {
		key  string
		line int
		msg  string
	}{
		{"processors[0].stages[0]", 9, `processor "unknown-plugin"`},
		{"processors[1].input", 14, `processor "no-input": input topic "nowhere" is not declared in [[topics]]`},
		{"processors[2].stages[1]", 23, `processor "bad-init"`},
		{"processors[4].limits.max_memory_mb", 42, `processor "b-to-a": -1 is negative`},
		{"processors", 0, "cycle between processors: a -[a-to-b]-> b -[b-to-a]-> a"},
	}
	for _, w := range want {
		var fe *config.FieldError
		for _, e := range fes {
			if e.Key == w.key {
				fe = e
			}
		}
		if fe == nil {
			t.Errorf("no error for %s in:\n%v", w.key, err)
			continue
		}
		if !strings.Contains(fe.Msg, w.msg) {
			t.Errorf("%s: %q, want it to contain %q", w.key, fe.Msg, w.msg)
		}
		if w.line > 0 && fe.Where != p+":"+itoa(w.line) {
			t.Errorf("%s: where %q, want line %d", w.key, fe.Where, w.line)
		}
	}
	if len(fes) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(fes), len(want), err)
	}
	t.Log(err)
}

// TestProcessorValid: a good entry loads, with its stage config.
func TestProcessorValid(t *testing.T) {
	p := writeFile(t, `[[topics]]
name = "in"
[[topics]]
name = "out"
[[processors]]
name = "p1"
input = "in"
outputs = ["out"]
cpus = "0"
  [processors.limits]
  max_memory_mb = 256
  max_file_descriptors = 64
  [[processors.stages]]
  plugin = "stamp"
  permissions = { can_read_config = true }
  config = { header = "seen" }
`)
	ld, err := (&config.Loader{Path: p, Environ: []string{}}).Load()
	if err != nil {
		t.Fatal(err)
	}
	ps := ld.Config.Processors
	if len(ps) != 1 || ps[0].Limits.MaxMemoryMB != 256 || ps[0].Stages[0].Config["header"] != "seen" {
		t.Fatalf("%+v", ps)
	}
}
