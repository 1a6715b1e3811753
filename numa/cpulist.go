package numa

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxListID bounds the ids a list may name. The kernel's NR_CPUS and
// MAX_NUMNODES are far below it; the bound keeps a hostile or corrupt list
// ("0-4294967295") from allocating gigabytes.
const maxListID = 1 << 16

// ParseCPUList parses the kernel's list format for CPU and node sets, as in
// /sys/devices/system/node/node0/cpulist and /sys/devices/system/cpu/online
// (the format of bitmap_parselist, Documentation/admin-guide/kernel-parameters.rst
// "cpu lists"): comma-separated items, each "N", "A-B", or the stride form
// "A-B:U/G" (in each group of G ids starting at A, take the first U).
// Whitespace around the list, including the trailing newline, is ignored;
// an empty list is valid and yields an empty, non-nil slice.
//
// The result is ascending and free of duplicates. Ids must be below 65536.
// A malformed list returns an error matching ErrMalformed that quotes the
// offending item.
func ParseCPUList(s string) ([]int, error) {
	ids, err := parseList(s)
	if err != nil {
		return nil, fmt.Errorf("%w: list %q: %w", ErrMalformed, s, err)
	}
	return ids, nil
}

// parseList is ParseCPUList without the wrapping; callers that know the
// file name wrap its error in a *ParseError.
func parseList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	ids := []int{}
	if s == "" {
		return ids, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		var err error
		ids, err = appendItem(ids, item)
		if err != nil {
			return nil, fmt.Errorf("item %q: %w", item, err)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// appendItem appends the ids of one list item ("N", "A-B", "A-B:U/G").
func appendItem(ids []int, item string) ([]int, error) {
	rng, stride, hasStride := strings.Cut(item, ":")
	lo, hi, isRange := strings.Cut(rng, "-")
	first, err := parseID(lo)
	if err != nil {
		return nil, err
	}
	if !isRange {
		if hasStride {
			return nil, errors.New("stride needs a range")
		}
		return append(ids, first), nil
	}
	last, err := parseID(hi)
	if err != nil {
		return nil, err
	}
	if last < first {
		return nil, errors.New("range end below start")
	}
	used, group := 1, 1
	if hasStride {
		u, g, ok := strings.Cut(stride, "/")
		if !ok {
			return nil, errors.New("stride must be U/G")
		}
		if used, err = parseID(u); err != nil {
			return nil, err
		}
		if group, err = parseID(g); err != nil {
			return nil, err
		}
		if used == 0 || group == 0 || used > group {
			return nil, errors.New("stride needs 0 < U <= G")
		}
	}
	for base := first; base <= last; base += group {
		for id := base; id < base+used && id <= last; id++ {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// parseID parses one decimal id in [0, maxListID).
func parseID(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	// ParseUint, not Atoi: rejects "+1" and "-1".
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if n >= maxListID {
		return 0, fmt.Errorf("id %d above limit %d", n, maxListID-1)
	}
	return int(n), nil
}

// FormatCPUList formats ids in the kernel list format ("0-3,8-11"), the
// inverse of ParseCPUList for ascending, duplicate-free input. Unsorted
// input is formatted in the order given, ranges formed only from ascending
// runs. An empty slice formats as "".
func FormatCPUList(ids []int) string {
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return b.String()
}
