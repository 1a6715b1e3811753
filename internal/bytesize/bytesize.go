// Package bytesize is Kaelix's one syntax for byte counts: what the
// daemon's config (capacity = "1MiB"), kaelixctl's and the tools' flags
// (--capacity 64KiB) and hugetlbfs mount options (pagesize=2M) read, and
// what every message, table and config view writes.
//
// # Units are binary, always
//
// K, KB and KiB are 2^10 bytes; M, MB and MiB 2^20; G, GB and GiB 2^30;
// T, TB and TiB 2^40. Units are case-insensitive; B or no unit is bytes,
// and a space may stand between number and unit ("64 KiB"). MB means
// 2^20, not 10^6: every size Kaelix takes is a ring, region, page or
// message size, which are powers of two (and the kernel's own "2M" and
// "kB" are binary), so a decimal megabyte is never what is meant and
// reading "1MB" as 1 MiB is kinder than refusing it. Kaelix writes the
// IEC names (KiB, MiB, GiB, TiB) so that what it prints is unambiguous.
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// units, longest suffix first within each multiplier so that "KiB" is not
// read as "K" followed by junk; every suffix is matched case-insensitively.
var units = []struct {
	suffix string
	shift  uint
}{
	{"TIB", 40}, {"TB", 40}, {"T", 40},
	{"GIB", 30}, {"GB", 30}, {"G", 30},
	{"MIB", 20}, {"MB", 20}, {"M", 20},
	{"KIB", 10}, {"KB", 10}, {"K", 10},
	{"B", 0},
}

// names are the units Format and Human write, by power of 1024.
var names = [...]string{"B", "KiB", "MiB", "GiB", "TiB"}

// Parse reads a byte count: a decimal integer with an optional unit (see
// the package doc), surrounding space ignored. Errors: not an integer
// with a known unit ("\"lots\" is not a size: ..."), or more than 2^64-1
// bytes.
func Parse(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	up := strings.ToUpper(t)
	shift := uint(0)
	for _, u := range units {
		if strings.HasSuffix(up, u.suffix) {
			t, shift = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: want an integer with an optional unit (KiB, MiB, GiB, TiB)", s)
	}
	if n > (1<<64-1)>>shift {
		return 0, fmt.Errorf("size %q overflows 64 bits", s)
	}
	return n << shift, nil
}

// Format writes n in the largest unit that holds it exactly: "1MiB",
// "64KiB", "3GiB"; a count that is not a multiple of 1024 (0 included)
// is plain digits ("1000"). Parse reads it back to n.
func Format(n uint64) string {
	i := 0
	for n != 0 && n%1024 == 0 && i < len(names)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatUint(n, 10)
	}
	return strconv.FormatUint(n, 10) + names[i]
}

// Human writes n for people, in the largest unit it reaches, with at most
// one decimal: "512B", "4KiB", "1.5MiB", "16GiB" (a trailing ".0" is
// dropped). It rounds: Parse does not read it back exactly.
func Human(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + "B"
	}
	v, i := float64(n), 0
	for v >= 1024 && i < len(names)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "1024.0" && i < len(names)-1 { // 1023.95 and up round to the next unit
		s, i = "1", i+1
	}
	return strings.TrimSuffix(s, ".0") + names[i]
}
