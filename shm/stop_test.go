package shm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestCreateStops: a Create whose Stop is closed between two chunks of
// its reservation and prefault returns a *StoppedError saying how far it
// got, and leaves nothing in the base directory (neither the region nor
// its temporary file); one with Stop closed before it starts reserves
// nothing; an open Stop changes nothing.
func TestCreateStops(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	const size = 4*StopChunkBytes - 4096 // four chunks with the header
	for _, prefault := range []bool{false, true} {
		stop := make(chan struct{})
		chunks := 0
		chunkHook = func(done, total uint64) {
			chunks++
			if chunks == 2 {
				close(stop)
			}
		}
		_, err := Create(cfg, "big", CreateOptions{SizeBytes: size, Prefault: prefault, Stop: stop})
		chunkHook = nil
		var se *StoppedError
		if !errors.As(err, &se) || !errors.Is(err, ErrStopped) || se.DoneBytes != 2*StopChunkBytes || se.TotalBytes != 4*StopChunkBytes || chunks != 2 {
			t.Fatalf("prefault %v: Create stopped after chunk 2 = %v (%+v, %d chunks), want a *StoppedError after 2 of 4 chunks", prefault, err, se, chunks)
		}
		assertEmptyBase(t, cfg)
	}
	closed := make(chan struct{})
	close(closed)
	if _, err := Create(cfg, "big", CreateOptions{SizeBytes: size, Stop: closed}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Create with Stop closed = %v, want ErrStopped", err)
	}
	assertEmptyBase(t, cfg)
	r, err := Create(cfg, "big", CreateOptions{SizeBytes: size, Prefault: true, Stop: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Header(); h.Flags&FlagPrefaulted == 0 || h.TotalBytes != 4*StopChunkBytes {
		t.Fatalf("header %+v, want a prefaulted region of 4 chunks", h)
	}
}

// assertEmptyBase fails unless cfg's base directory holds no file.
func assertEmptyBase(t *testing.T, cfg Config) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cfg.TmpfsRoot, cfg.DirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}
