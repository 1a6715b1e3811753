package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/bench"
)

func TestMain(m *testing.M) {
	if bench.IsChild() {
		os.Exit(bench.ChildMain())
	}
	os.Exit(m.Run())
}

func TestList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"list"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"pingpong", "kaelix-spsc", "busy-spin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, out.String())
		}
	}
}

// TestFlags: kaelixctl's conventions: -h is no error (help on stdout,
// exit 0), a bad flag, mode or value exits 2 with the reason on stderr.
func TestFlags(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout for 0, stderr otherwise
	}{
		{[]string{"-h"}, 0, "Usage: kaelix-bench"},
		{[]string{"pingpong", "--help"}, 0, "--hugepages"},
		{[]string{"--version"}, 0, "kaelix-bench"},
		{nil, 2, "expected one of"},
		{[]string{"sideways"}, 2, "unexpected argument sideways"},
		{[]string{"pingpong", "--transports", "pigeon"}, 2, "unknown transport"},
		{[]string{"pingpong", "--format", "xml"}, 2, "--format"},
		{[]string{"pingpong", "-o", "yaml"}, 2, "--format"},
		{[]string{"pingpong", "--hugepages", "on"}, 2, `policy "on"`},
		{[]string{"pingpong", "-count", "5"}, 2, "unknown flag"},
		{[]string{"pingpong", "--size", "8"}, 2, "--size 8"},
		{[]string{"suite", "--scale", "0"}, 2, "--scale 0"},
		{[]string{"readme"}, 2, "--in"},
	} {
		var out, errb bytes.Buffer
		code := run(ctx, c.args, &out, &errb)
		got := errb.String()
		if c.code == 0 {
			got = out.String()
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%q: exit %d, want %d with %q in:\n%s%s", c.args, code, c.code, c.want, out.String(), errb.String())
		}
	}
}

// TestPingPongJSONOutAndReadme runs a tiny ping-pong end to end through
// the command (a real child process for uds), then regenerates a README
// table from the report directory.
func TestPingPongJSONOutAndReadme(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"pingpong", "--transports", "floor,uds,chan", "--count", "200", "--warmup", "20", "--size", "32", "-o", "json", "--out", dir, "--quiet", "--interleave", "--rounds", "2", "--block", "2ms"}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, errb.String())
	}
	var rep struct {
		Machine map[string]any   `json:"machine"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if len(rep.Results) != 3 || !strings.Contains(rep.Machine["command"].(string), "pingpong --transports floor,uds,chan") {
		t.Errorf("report: %+v", rep)
	}
	for _, f := range []string{"report.md", "results.json", "latency-spinning.png", "latency-sleeping.png", "hlog/pingpong-floor-busy-spin-32B.hlog"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	readme := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(readme, []byte("a\n<!-- bench:begin -->\n<!-- bench:end -->\n"), 0o644)
	if code := run(context.Background(), []string{"readme", "--in", dir, "--readme", readme}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, _ := os.ReadFile(readme)
	if !strings.Contains(string(b), "| uds/- |") {
		t.Errorf("README:\n%s", b)
	}
}
