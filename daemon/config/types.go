package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// Size is a byte count in the one syntax of package bytesize: an integer
// or a string with a binary unit ("4096", "64KiB", "1MiB", "2M", "1MB",
// "1G"; K, KB and KiB alike are 1024, MB is 2^20, never 10^6). It writes
// the shortest exact form ("1MiB").
type Size uint64

// UnmarshalText parses a size; see Size.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := bytesize.Parse(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalText writes the size with the largest exact binary unit.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Size) String() string { return bytesize.Format(uint64(s)) }

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
