package shm

import (
	"fmt"
	"testing"
)

const benchBytes = 64 << 20

// benchConfigs gives the two backings; hugetlbfs skips with the reason when
// the host has no mount or too few free pages.
func benchConfig(b *testing.B, backing string) Config {
	if backing == "hugetlbfs" {
		return hugeConfig(b, benchBytes/HugePage2M+1)
	}
	cfg, _ := tmpfsConfig(b)
	return cfg
}

// BenchmarkCreate: create (reserve every page with fallocate, no touch)
// and remove a 64 MiB region.
func BenchmarkCreate(b *testing.B) {
	for _, backing := range []string{"tmpfs", "hugetlbfs"} {
		b.Run(backing, func(b *testing.B) {
			cfg := benchConfig(b, backing)
			b.SetBytes(benchBytes)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r, err := Create(cfg, fmt.Sprint("bench", i), CreateOptions{SizeBytes: benchBytes - HeaderBytes})
				if err != nil {
					b.Fatal(err)
				}
				r.Remove()
				r.Close()
			}
		})
	}
}

// BenchmarkFirstTouch: write one byte per page of a freshly created 64 MiB
// region (the page faults a client's first pass would take); creation is
// outside the timer.
func BenchmarkFirstTouch(b *testing.B) {
	for _, backing := range []string{"tmpfs", "hugetlbfs"} {
		b.Run(backing, func(b *testing.B) {
			cfg := benchConfig(b, backing)
			b.SetBytes(benchBytes)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r, err := Create(cfg, fmt.Sprint("touch", i), CreateOptions{SizeBytes: benchBytes - HeaderBytes})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				touchPages(r.Data(), r.Header().PageSizeBytes)
				b.StopTimer()
				r.Remove()
				r.Close()
				b.StartTimer()
			}
		})
	}
}
