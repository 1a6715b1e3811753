package ringbuf_test

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// mapFile maps the file at path, of size bytes, shared and read-write,
// creating it if needed.
func mapFile(path string, size int) ([]byte, func()) {
	f, _ := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	defer f.Close()
	f.Truncate(int64(size))
	mem, _ := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	return mem, func() { unix.Munmap(mem) }
}

// Example publishes three records into an SPSC ring kept in files (its
// data area, its consumer area and its one subscriber slot, as kaelixd
// keeps them) and polls them back. Another process would Attach the same
// files.
func Example() {
	dir, _ := os.MkdirTemp("", "ringbuf-example")
	defer os.RemoveAll(dir)

	cfg := ringbuf.DefaultConfig(ringbuf.SPSC)
	cfg.CapacityBytes = 64 << 10
	dataBytes, consumerBytes, _ := ringbuf.SizeFor(cfg)
	data, unmapData := mapFile(filepath.Join(dir, "ring"), dataBytes)
	defer unmapData()
	consumer, unmapConsumer := mapFile(filepath.Join(dir, "ring.c"), consumerBytes)
	defer unmapConsumer()
	slot, unmapSlot := mapFile(filepath.Join(dir, "ring.s0"), ringbuf.SlotBytes)
	defer unmapSlot()

	ring, err := ringbuf.Create(data, consumer, [][]byte{slot}, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	sub, _ := ring.NewSubscriber(ringbuf.SubscriberOptions{})
	pub, _ := ring.NewPublisher(ringbuf.PublisherOptions{})

	pub.Offer([]byte("hello"))
	buf, _ := pub.TryClaim(5) // zero copy: write in place, then commit
	copy(buf, "world")
	pub.Commit()
	pub.OfferBatch([][]byte{[]byte("and"), []byte("more")})

	n, _ := sub.Poll(func(r ringbuf.Record) {
		fmt.Printf("seq %d: %s\n", r.Sequence, r.Payload)
	}, 10)
	fmt.Println(n, "records; lag", sub.Lag(), "bytes")
	// Output:
	// seq 0: hello
	// seq 1: world
	// seq 2: and
	// seq 3: more
	// 4 records; lag 0 bytes
}
