package shm_test

import (
	"fmt"
	"log"
	"os"

	"github.com/kaelix-io/kaelix/shm"
)

// Create a region on tmpfs, attach it read-only as a subscriber would, and
// read its header.
func Example() {
	root, err := os.MkdirTemp("/dev/shm", "kaelix-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	cfg := shm.Default()
	cfg.TmpfsRoot = root
	cfg.HugePages = shm.PolicyOff

	w, err := shm.Create(cfg, "telemetry", shm.CreateOptions{SizeBytes: 64 << 10})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	copy(w.Data(), "hello")

	r, err := shm.AttachFile(w.File(), shm.AttachOptions{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	h := r.Header()
	var greeting string
	if err := shm.Guard(func() error { greeting = string(r.Data()[:5]); return nil }); err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", h.Version, "total", h.TotalBytes, "data at", h.DataOffsetBytes, "data", h.DataBytes)
	fmt.Println("page", h.PageSizeBytes, "generation", h.Generation, "flags", h.Flags)
	fmt.Println(greeting)
	// Output:
	// version 2 total 69632 data at 4096 data 65536
	// page 4096 generation 1 flags none
	// hello
}
