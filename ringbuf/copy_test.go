package ringbuf

import (
	"bytes"
	"testing"
)

// TestPayloadCopyEveryLength: Offer and OfferBatch deliver payloads of
// every length from 0 to 80 bytes intact (the 16 to 32 byte copies are
// done inline with overlapping moves, the others with copy), and the
// bytes of the record space after each payload are left as they were.
func TestPayloadCopyEveryLength(t *testing.T) {
	for _, batch := range []bool{false, true} {
		c := DefaultConfig(SPSC)
		c.CapacityBytes = 1 << 16
		c.MaxPayloadBytes = 128
		r, b, _ := newTestRing(t, c)
		pub, err := r.NewPublisher(PublisherOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := r.NewSubscriber(SubscriberOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Poison the data area, so that a byte written past a payload shows.
		data := b[r.dataOffset : r.dataOffset+uintptr(r.capacity)]
		for i := range data {
			data[i] = 0xee
		}
		for n := 0; n <= 80; n++ {
			src := make([]byte, n+8)
			for i := range src {
				src[i] = byte(n*7 + i + 1)
			}
			want := src[:n] // the bytes after it must not be read into the record
			if batch {
				if k, err := pub.OfferBatch([][]byte{want, want}); k != 2 || err != nil {
					t.Fatalf("OfferBatch of two %d-byte payloads: %d, %v", n, k, err)
				}
			} else if err := pub.Offer(want); err != nil {
				t.Fatalf("Offer of %d bytes: %v", n, err)
			}
			got := 0
			k, err := sub.Poll(func(rec Record) {
				got++
				if !bytes.Equal(rec.Payload, want) {
					t.Errorf("batch %v, %d bytes: payload %x, want %x", batch, n, rec.Payload, want)
				}
				end := uintptr(rec.Position&r.mask) + RecordHeaderLength + uintptr(n)
				pad := uintptr(spanOf(uint64(n))) - RecordHeaderLength - uintptr(n)
				for _, x := range data[end : end+pad] {
					if x != 0xee {
						t.Errorf("batch %v, %d bytes: padding after the payload written (%x)", batch, n, data[end:end+pad])
						break
					}
				}
			}, 8)
			if err != nil || k != got || (batch && k != 2) || (!batch && k != 1) {
				t.Fatalf("batch %v, %d bytes: Poll delivered %d (%d seen), %v", batch, n, k, got, err)
			}
		}
	}
}
