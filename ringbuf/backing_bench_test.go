package ringbuf

import (
	"fmt"
	"os"
	"testing"

	"github.com/kaelix-io/kaelix/shm"
)

// BenchmarkBacking streams 64-byte and 4 KiB records through an SPSC ring
// (subscriber in another goroutine) placed in an shm region on tmpfs (4 KiB
// pages) and on hugetlbfs (2 MiB pages), in the same run. The hugetlbfs
// case is skipped, saying why, where the host has no free hugepages.
func BenchmarkBacking(b *testing.B) {
	for _, backing := range []string{"tmpfs", "hugetlbfs"} {
		for _, size := range []int{64, 4096} {
			b.Run(fmt.Sprintf("%s/%dB", backing, size), func(b *testing.B) {
				cfg := shm.Default()
				cfg.DirName = fmt.Sprintf("kaelix-bench-%d", os.Getpid())
				cfg.HugePages = shm.PolicyOff
				if backing == "hugetlbfs" {
					cfg.HugePages = shm.PolicyRequired
				}
				rc := benchConfig(SPSC, size)
				rc.CapacityBytes = 32 << 20
				need, _ := sizeIn(rc)
				reg, err := shm.Create(cfg, fmt.Sprintf("ring-%s-%d", backing, size), shm.CreateOptions{SizeBytes: uint64(need), Prefault: true})
				if err != nil {
					b.Skipf("%s region unavailable: %v", backing, err)
				}
				b.Cleanup(func() {
					reg.Remove()
					reg.Close()
					for _, root := range []string{cfg.TmpfsRoot, "/dev/hugepages"} {
						os.Remove(root + "/" + cfg.DirName)
					}
				})
				r, err := createIn(reg.Data(), rc)
				if err != nil {
					b.Fatal(err)
				}
				pub, _ := r.NewPublisher(PublisherOptions{})
				sub, _ := r.NewSubscriber(SubscriberOptions{})
				done := make(chan struct{})
				n := b.N
				go func() {
					defer close(done)
					defer pin(1)()
					for got := 0; got < n; {
						k, _ := sub.Poll(func(Record) {}, 256)
						got += k
					}
				}()
				defer pin(0)()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; {
					if pub.Offer(msg) == nil {
						i++
					}
				}
				<-done
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
