package shm

import "fmt"

// MaxNameBytes is the longest region name accepted, in bytes: NAME_MAX
// (255) less the 10 bytes Create adds to the temporary ".NAME.creating".
const MaxNameBytes = 245

// ValidateName reports whether name can be a region (or base directory)
// name: 1..MaxNameBytes bytes of ASCII letters, digits, '-', '_' and '.',
// not starting with '.'. So a name never holds '/', NUL or "..", and never
// leaves the base directory. The error wraps ErrInvalidName.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameBytes {
		return fmt.Errorf("%w: length %d, want 1..%d bytes", ErrInvalidName, len(name), MaxNameBytes)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w: %q has byte %#02x at %d (allowed: letters, digits, '-', '_', '.')", ErrInvalidName, name, c, i)
		}
	}
	return nil
}
