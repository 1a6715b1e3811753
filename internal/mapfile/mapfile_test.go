package mapfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestShared: a created mapping and a second one of the same path share
// bytes; creating over an existing file fails; opening maps the whole
// file with size 0 and refuses a size past its end.
func TestShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	a, err := Shared(path, 8192, true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(a)
	if _, err := Shared(path, 8192, true); !os.IsExist(err) {
		t.Fatalf("create over an existing file: %v, want exists", err)
	}
	b, err := Shared(path, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	if len(b) != 8192 {
		t.Fatalf("size 0 mapped %d bytes, want the whole 8192", len(b))
	}
	a[4097] = 42
	if b[4097] != 42 {
		t.Fatal("the two mappings do not share bytes")
	}
	if _, err := Shared(path, 16384, false); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("mapping past the end: %v, want an error naming the path", err)
	}
}
