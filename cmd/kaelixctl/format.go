package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// byteSize is a flag value in bytes, in package bytesize's syntax: a plain
// number or one with a binary unit (K, KiB, KB, M, MiB, MB, G, GiB, GB,
// T, TiB, TB; 1K = 1024, 1MB = 2^20).
type byteSize uint64

// UnmarshalText parses "4096", "64K", "64KiB", "1M", "1MiB", "1G".
func (b *byteSize) UnmarshalText(text []byte) error {
	n, err := bytesize.Parse(string(text))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%q: a size must be more than 0 (leave the flag out for the default)", text)
	}
	*b = byteSize(n)
	return nil
}

// pageLabel renders a region's page size and backing: "2M huge", "4K tmpfs".
func pageLabel(pageBytes uint64, huge bool) string {
	s := strings.TrimSuffix(strings.TrimSuffix(bytesize.Human(pageBytes), "iB"), "B")
	if huge {
		return s + " huge"
	}
	return s + " tmpfs"
}

// humanRate renders a per-second rate: 0, 12.5, 1.2k, 3.4M.
func humanRate(r float64) string {
	switch {
	case r < 0:
		return "-"
	case r < 1000:
		return strings.TrimSuffix(strconv.FormatFloat(r, 'f', 1, 64), ".0")
	case r < 1e6:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + "k"
	default:
		return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
	}
}

// newTable returns a tabwriter for aligned text tables; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// unixNS renders unix nanoseconds as local time, or "-" for 0.
func unixNS(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).Format("2006-01-02 15:04:05.000 MST")
}

// fallbackLabel marks a region that asked for hugepages (policy auto) and
// fell back to tmpfs because none were free.
// pagesMix renders where a topic's data regions are: one label when
// every partition's is alike ("2M huge"), else each label with its count
// in order of first partition, "2M huge ×51, 4K tmpfs ×13 (fallback)";
// "-" without partitions.
func pagesMix(parts []client.PartitionInfo) string {
	var labels []string
	count := map[string]int{}
	for _, p := range parts {
		l := pageLabel(p.PageSizeBytes, p.HugePages) + "\x00" + fallbackLabel(p.FallbackTmpfs)
		if count[l] == 0 {
			labels = append(labels, l)
		}
		count[l]++
	}
	switch len(labels) {
	case 0:
		return "-"
	case 1:
		return strings.Replace(labels[0], "\x00", "", 1)
	}
	for i, l := range labels {
		labels[i] = strings.Replace(l, "\x00", " ×"+strconv.Itoa(count[l]), 1)
	}
	return strings.Join(labels, ", ")
}

func fallbackLabel(fallback bool) string {
	if fallback {
		return " (fallback)"
	}
	return ""
}
