package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a byte count that reads as an integer or with a binary unit
// ("4096", "64KiB", "1MiB", "2M", "1G"; K, M, G and KiB, MiB, GiB are all
// powers of 1024). It writes the shortest exact form ("1MiB").
type Size uint64

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// UnmarshalText parses a size; see Size.
func (s *Size) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mult := uint64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return fmt.Errorf("size %q: want an integer with an optional unit (KiB, MiB, GiB)", string(b))
	}
	if n > (1<<64-1)/mult {
		return fmt.Errorf("size %q overflows", string(b))
	}
	*s = Size(n * mult)
	return nil
}

// MarshalText writes the size with the largest exact binary unit.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string {
	for _, u := range sizeUnits[:3] {
		if s != 0 && uint64(s)%u.mult == 0 {
			return strconv.FormatUint(uint64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(s), 10)
}

// FileMode is a permission: a TOML integer (write it in octal, 0o660) or a
// string read as octal when it starts with 0 ("0660", "0o660").
type FileMode uint32

// UnmarshalText parses a mode; see FileMode.
func (m *FileMode) UnmarshalText(b []byte) error {
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	if err != nil {
		return fmt.Errorf("mode %q: want an octal permission such as 0o600", string(b))
	}
	*m = FileMode(n)
	return nil
}

// MarshalText writes the mode in octal ("0o600").
func (m FileMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m FileMode) String() string { return "0o" + strconv.FormatUint(uint64(m), 8) }
