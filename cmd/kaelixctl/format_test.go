package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
)

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"4096", 4096, false}, {"64K", 64 << 10, false}, {"64KiB", 64 << 10, false}, {"1MiB", 1 << 20, false},
		{"1m", 1 << 20, false}, {"2G", 2 << 30, false}, {"512B", 512, false}, {" 8 KiB ", 8 << 10, false},
		{"", 0, true}, {"lots", 0, true}, {"-1K", 0, true}, {"1.5M", 0, true}, {"99999999999G", 0, true},
		{"0", 0, true}, {"0KiB", 0, true},
	} {
		var b byteSize
		err := b.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.err || (err == nil && uint64(b) != tc.want) {
			t.Errorf("byteSize(%q) = %d, %v; want %d (error %v)", tc.in, b, err, tc.want, tc.err)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1KiB", 1536: "1.5KiB", 1 << 20: "1MiB", 2 << 20: "2MiB", 1 << 30: "1GiB"} {
		if got := bytesize.Human(in); got != want {
			t.Errorf("bytesize.Human(%d) = %q, want %q", in, got, want)
		}
	}
	if got := pageLabel(2<<20, true); got != "2M huge" {
		t.Errorf("pageLabel(2M, huge) = %q", got)
	}
	if got := pageLabel(4096, false); got != "4K tmpfs" {
		t.Errorf("pageLabel(4K, tmpfs) = %q", got)
	}
}

// TestRunInProcess drives the kong app in-process: help exits 0, usage
// errors exit 2, and no daemon exits 3 with the documented message.
func TestRunInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "Exit codes") {
		t.Errorf("--help: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"topics", "create"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("topics create (no name): exit %d, %s", code, errb.String())
	}
	errb.Reset()
	sock := t.TempDir() + "/none.sock"
	if code := run([]string{"--socket", sock, "daemon", "status"}, nil, &out, &errb); code != exitBrokerNotRunning ||
		!strings.Contains(errb.String(), "Broker is not running: "+sock) {
		t.Errorf("no daemon: exit %d, %s", code, errb.String())
	}
}

func TestFallbackLabel(t *testing.T) {
	if got := pageLabel(4096, false) + fallbackLabel(true); got != "4K tmpfs (fallback)" {
		t.Errorf("fallback region labelled %q", got)
	}
	if got := pageLabel(2<<20, true) + fallbackLabel(false); got != "2M huge" {
		t.Errorf("hugepage region labelled %q", got)
	}
}

// TestPagesMix: the create summary and the PAGES column say where every
// partition landed, with counts when they differ.
func TestPagesMix(t *testing.T) {
	huge := client.PartitionInfo{PageSizeBytes: 2 << 20, HugePages: true}
	fb := client.PartitionInfo{PageSizeBytes: 4096, FallbackTmpfs: true}
	small := client.PartitionInfo{PageSizeBytes: 4096}
	var mixed []client.PartitionInfo
	for i := range 64 {
		mixed = append(mixed, map[bool]client.PartitionInfo{true: huge, false: fb}[i < 51])
	}
	for _, tc := range []struct {
		parts []client.PartitionInfo
		want  string
	}{
		{nil, "-"},
		{mixed[:51], "2M huge"},
		{mixed, "2M huge ×51, 4K tmpfs ×13 (fallback)"},
		{[]client.PartitionInfo{small, fb, small}, "4K tmpfs ×2, 4K tmpfs ×1 (fallback)"},
		{[]client.PartitionInfo{small, small}, "4K tmpfs"},
	} {
		if got := pagesMix(tc.parts); got != tc.want {
			t.Errorf("pagesMix(%d partitions) = %q, want %q", len(tc.parts), got, tc.want)
		}
	}
	if got := pagesOf(client.TopicInfo{Partitions: mixed}); got != "2M huge ×51, 4K tmpfs ×13 (fallback)" {
		t.Errorf("create summary pages %q", got)
	}
	if r := rowOf(client.TopicInfo{Partitions: mixed}); r.Pages != "2M huge ×51, 4K tmpfs ×13 (fallback)" || r.HugePages {
		t.Errorf("topics list row: pages %q, huge %v", r.Pages, r.HugePages)
	}
}
