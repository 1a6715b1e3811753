package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
	if err := run(context.Background(), []string{"list"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pingpong", "kaelix-spsc", "busy-spin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	ctx := context.Background()
	if err := run(ctx, nil, &out, &errb); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("no args: %v", err)
	}
	if err := run(ctx, []string{"sideways"}, &out, &errb); !errors.Is(err, bench.ErrUnknownMode) {
		t.Errorf("bad mode: %v", err)
	}
	if err := run(ctx, []string{"pingpong", "--transports", "pigeon"}, &out, &errb); !errors.Is(err, bench.ErrUnknownTransport) {
		t.Errorf("bad transport: %v", err)
	}
	if err := run(ctx, []string{"pingpong", "--format", "xml"}, &out, &errb); !errors.Is(err, bench.ErrOptions) {
		t.Errorf("bad format: %v", err)
	}
}

// TestPingPongJSONOutAndReadme runs a tiny ping-pong end to end through
// the command (a real child process for uds), then regenerates a README
// table from the report directory.
func TestPingPongJSONOutAndReadme(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"pingpong", "--transports", "floor,uds,chan", "--count", "200", "--warmup", "20", "--size", "32", "--format", "json", "--out", dir, "--quiet", "--interleave", "--rounds", "2", "--block", "2ms"}
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("%v\nstderr: %s", err, errb.String())
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
	if err := run(context.Background(), []string{"readme", "--in", dir, "--readme", readme}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	if !strings.Contains(string(b), "| uds/- |") {
		t.Errorf("README:\n%s", b)
	}
}
