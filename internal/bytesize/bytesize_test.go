package bytesize

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"0", 0}, {"4096", 4096}, {"4096B", 4096}, {" 12 b ", 12},
		{"1K", 1 << 10}, {"1k", 1 << 10}, {"1KB", 1 << 10}, {"1kib", 1 << 10}, {"64KiB", 64 << 10}, {"64 KiB", 64 << 10},
		{"2M", 2 << 20}, {"1MB", 1 << 20}, {"1MiB", 1 << 20}, // MB is binary: 2^20, never 10^6
		{"1G", 1 << 30}, {"3GB", 3 << 30}, {"1GiB", 1 << 30},
		{"1T", 1 << 40}, {"2TiB", 2 << 40}, {"16777215TiB", 16777215 << 40},
		{"18446744073709551615", math.MaxUint64},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"lots", `"lots" is not a size: want an integer with an optional unit (KiB, MiB, GiB, TiB)`},
		{"", `"" is not a size`},
		{"-1", `"-1" is not a size`},
		{"1.5MiB", `"1.5MiB" is not a size`},
		{"1PiB", `"1PiB" is not a size`},
		{"KiB", `"KiB" is not a size`},
		{"16777216TiB", `size "16777216TiB" overflows 64 bits`},
		{"18446744073709551616", `is not a size`},
	} {
		if _, err := Parse(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q): %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want string
	}{
		{0, "0"}, {1000, "1000"}, {1024, "1KiB"}, {1536, "1536"}, {64 << 10, "64KiB"}, {3 << 19, "1536KiB"},
		{1 << 20, "1MiB"}, {2 << 30, "2GiB"}, {1 << 40, "1TiB"}, {1 << 50, "1024TiB"}, {math.MaxUint64, "18446744073709551615"},
	} {
		got := Format(c.in)
		if got != c.want {
			t.Errorf("Format(%d) = %q, want %q", c.in, got, c.want)
		}
		if back, err := Parse(got); err != nil || back != c.in {
			t.Errorf("Parse(Format(%d)) = %d, %v", c.in, back, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want string
	}{
		{0, "0B"}, {512, "512B"}, {1023, "1023B"}, {1024, "1KiB"}, {1536, "1.5KiB"}, {4 << 10, "4KiB"},
		{3 << 19, "1.5MiB"}, {1<<20 - 1, "1MiB"}, {16 << 30, "16GiB"}, {5 << 40, "5TiB"}, {1 << 50, "1024TiB"},
	} {
		if got := Human(c.in); got != c.want {
			t.Errorf("Human(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}
