package numa

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", []int{}},
		{"\n", []int{}},
		{"0", []int{0}},
		{"0-3\n", []int{0, 1, 2, 3}},
		{"0-3,8-11", []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{"0-1,8-9", []int{0, 1, 8, 9}},
		{"5,1,3", []int{1, 3, 5}},
		{"0-2,1-3", []int{0, 1, 2, 3}},                // overlap: union
		{"0-15:2/4", []int{0, 1, 4, 5, 8, 9, 12, 13}}, // stride: 2 of every 4
		{"0-6:1/3", []int{0, 3, 6}},
		{"2-9:3/3", []int{2, 3, 4, 5, 6, 7, 8, 9}},
		{"4-4", []int{4}},
		{"65535", []int{65535}},
	} {
		got, err := ParseCPUList(tc.in)
		if err != nil || !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCPUListErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"a", `item "a"`},
		{"3-1", "range end below start"},
		{"1-", "empty number"},
		{"-1", "empty number"},
		{"+1", `item "+1"`},
		{"0,,1", `item ""`},
		{",", `item ""`},
		{"0-3:0/2", "0 < U <= G"},
		{"0-3:3/2", "0 < U <= G"},
		{"0-3:2", "stride must be U/G"},
		{"5:1/2", "stride needs a range"},
		{"65536", "above limit 65535"},
		{"0-4294967296", `item "0-4294967296"`},
		{"0 - 3", `item "0 - 3"`},
	} {
		_, err := ParseCPUList(tc.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseCPUList(%q) error = %v; want ErrMalformed mentioning %q", tc.in, err, tc.msg)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1, 2, 3, 8, 9, 10, 11}, "0-3,8-11"},
		{[]int{1, 3, 5}, "1,3,5"},
		{[]int{0, 1, 3}, "0-1,3"},
	} {
		if got := FormatCPUList(tc.in); got != tc.want {
			t.Errorf("FormatCPUList(%v) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseCPUList checks that every accepted list is ascending, unique and
// survives a format/parse round trip, and that nothing panics.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,8-11\n", "0-15:2/4", "1,3,5", "0-1,8-9", "3-1", "0-3:0/2", "65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseCPUList(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseCPUList(%q) error %v does not match ErrMalformed", s, err)
			}
			return
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("ParseCPUList(%q) = %v: not ascending and unique", s, ids)
			}
		}
		again, err := ParseCPUList(FormatCPUList(ids))
		if err != nil || !slices.Equal(again, ids) {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, ids, FormatCPUList(ids), again, err)
		}
	})
}
