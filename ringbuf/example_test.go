package ringbuf_test

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// Example publishes three records into an SPSC ring in a shared mapping
// and polls them back. Another process would Attach the same file.
func Example() {
	dir, _ := os.MkdirTemp("", "ringbuf-example")
	defer os.RemoveAll(dir)

	cfg := ringbuf.DefaultConfig(ringbuf.SPSC)
	cfg.CapacityBytes = 64 << 10
	size, _ := ringbuf.SizeFor(cfg)
	f, _ := os.Create(filepath.Join(dir, "ring"))
	defer f.Close()
	f.Truncate(int64(size))
	mem, _ := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	defer unix.Munmap(mem)

	ring, err := ringbuf.Create(mem, cfg)
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
