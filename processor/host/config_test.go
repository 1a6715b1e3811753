package host_test

import (
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/processor/host"
)

const good = `
[runtime]
worker_threads = 1
priority_levels = 3

[[pipelines]]
name = "agg"
input = "host.telemetry"
outputs = ["host.telemetry.1s"]
priority = 2
  [[pipelines.stages]]
  plugin = "window"
  permissions = { can_read_config = true }
  config = { interval = "1s", values = ["json:cpu.busy_pct"] }

[[pipelines]]
name = "split"
input = "ticks"
  [[pipelines.stages]]
  plugin = "stamp"
  [[pipelines.stages]]
  plugin = "route"
  permissions = { can_read_config = true }
  config = { header = "sym", routes = { A = "ticks.a", B = "ticks.b" } }
`

func TestLoadGood(t *testing.T) {
	cfg, err := host.LoadBytes("good.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pipelines) != 2 || cfg.Pipelines[1].Stages[1].Name != "route" || cfg.Pipelines[0].Priority != 2 {
		t.Fatalf("%+v", cfg)
	}
}

// TestLoadErrors: each mistake is reported, naming the pipeline (and the
// stage), all in one error.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"unknown plugin", `
[[pipelines]]
name = "p1"
input = "a"
  [[pipelines.stages]]
  plugin = "teleport"`, []string{`pipeline "p1"`, `unknown plugin "teleport"`}},
		{"missing input", `
[[pipelines]]
name = "p2"
outputs = ["b"]
  [[pipelines.stages]]
  plugin = "stamp"`, []string{`pipeline "p2"`, "no input topic"}},
		{"cycle", `
[[pipelines]]
name = "A"
input = "x"
outputs = ["y"]
  [[pipelines.stages]]
  plugin = "stamp"
[[pipelines]]
name = "B"
input = "y"
  [[pipelines.stages]]
  plugin = "route"
  permissions = { can_read_config = true }
  config = { header = "h", routes = { v = "x" } }`, []string{"cycle between pipelines", "x -[A]-> y -[B]-> x"}},
		{"init failure", `
[[pipelines]]
name = "p3"
input = "a"
  [[pipelines.stages]]
  plugin = "sample"
  name = "thin"
  permissions = { can_read_config = true }
  config = { every = 2, interval = "1s" }`, []string{`pipeline "p3"`, `stage "thin"`, "exactly one of every"}},
		{"config without permission", `
[[pipelines]]
name = "p4"
input = "a"
  [[pipelines.stages]]
  plugin = "filter"
  config = { header = "h" }`, []string{`pipeline "p4"`, "can_read_config"}},
		{"unknown key", `
[[pipelines]]
name = "p5"
input = "a"
ouputs = ["b"]
  [[pipelines.stages]]
  plugin = "stamp"`, []string{"unknown key pipelines.ouputs"}},
		{"self loop", `
[[pipelines]]
name = "p6"
input = "a"
outputs = ["a"]
  [[pipelines.stages]]
  plugin = "stamp"`, []string{`pipeline "p6"`, "cycle"}},
		{"priority", `
[[pipelines]]
name = "p7"
input = "a"
priority = 3
  [[pipelines.stages]]
  plugin = "stamp"`, []string{`pipeline "p7"`, "priority 3"}},
	}
	var all strings.Builder
	for _, c := range cases {
		_, err := host.LoadBytes("bad.toml", []byte(c.text))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if c.name != "cycle" && c.name != "unknown key" {
			all.WriteString(c.text[strings.Index(c.text, "[[pipelines]]"):] + "\n")
		}
	}
	// Several bad pipelines in one file: every one is reported.
	_, err := host.LoadBytes("all.toml", []byte(all.String()))
	for _, p := range []string{"p1", "p2", "p3", "p4", "p6", "p7"} {
		if err == nil || !strings.Contains(err.Error(), `pipeline "`+p+`"`) {
			t.Errorf("combined file: %v lacks pipeline %s", err, p)
		}
	}
}
