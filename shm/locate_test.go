package shm

import (
	"testing"

	"github.com/kaelix-io/kaelix/numa"
)

// TestCreateLocatesPages wires the real numa.Bind and numa.Locate, as the
// daemon does, and checks that a new region (not prefaulted) reports the
// node its pages are on: node 0 on a one-node host, any existing node
// elsewhere.
func TestCreateLocatesPages(t *testing.T) {
	cfg, _ := tmpfsConfig(t)
	cfg.Bind = numa.Bind
	cfg.Locate = func(b []byte) (int, error) {
		n, _, err := numa.Locate(b)
		return n, err
	}
	r, err := Create(cfg, "located", CreateOptions{SizeBytes: 1 << 20, BindNode: true, Node: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	defer r.Close()
	h := r.Header()
	if h.NodeRequested != 0 || h.NodeActual != 0 {
		t.Fatalf("region on node %d (requested %d), want 0", h.NodeActual, h.NodeRequested)
	}
}
