package shm

import (
	"errors"
	"os"
	"testing"
)

// TestDropFile: a region attached by descriptor keeps its mapping and no
// descriptor after DropFile; the calls that need the descriptor say so
// with ErrNoFile, and Close still unmaps.
func TestDropFile(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	owner := mustCreate(t, cfg, "dropfile", CreateOptions{SizeBytes: 4096})
	defer owner.Close()
	copy(owner.Data(), "hello")
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	r, err := AttachFile(owner.File(), AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := count() - before; got != 1 {
		t.Fatalf("an attached region holds %d descriptors, want 1", got)
	}
	if err := r.DropFile(); err != nil {
		t.Fatal(err)
	}
	if err := r.DropFile(); err != nil {
		t.Fatalf("second DropFile: %v, want nil", err)
	}
	if got := count() - before; got != 0 {
		t.Fatalf("after DropFile the region holds %d descriptors, want 0", got)
	}
	if string(r.Data()[:5]) != "hello" || r.File() != nil {
		t.Fatalf("after DropFile: data %q, file %v; want the mapping and no file", r.Data()[:5], r.File())
	}
	if err := r.Check(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Check: %v, want ErrNoFile", err)
	}
	if _, err := r.Linked(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Linked: %v, want ErrNoFile", err)
	}
	if _, err := r.OpenReadOnly(); !errors.Is(err, ErrNoFile) {
		t.Errorf("OpenReadOnly: %v, want ErrNoFile", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.DropFile(); !errors.Is(err, ErrClosed) {
		t.Errorf("DropFile after Close: %v, want ErrClosed", err)
	}
}
