package ringbuf

import "testing"

// TestHotPathAllocs proves the hot paths allocate nothing per record.
func TestHotPathAllocs(t *testing.T) {
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest} {
			r, _, _ := newTestRing(t, benchConfig(kind, 256))
			if kind == SPSC || pol == PolicyDropOldest {
				// reconfigure policy
				c := benchConfig(kind, 256)
				c.Policy = pol
				r, _, _ = newTestRing(t, c)
			}
			pub, _ := r.NewPublisher(PublisherOptions{Timestamps: true})
			sub, _ := r.NewSubscriber(SubscriberOptions{})
			msg := make([]byte, 100)
			batch := [][]byte{msg, msg, msg, msg}
			buf := make([]byte, 256)
			var sum int
			h := func(rec Record) { sum += len(rec.Payload) }
			cases := map[string]func(){
				"Offer+Poll": func() {
					if pub.Offer(msg) != nil {
						t.Fatal("offer")
					}
					sub.Poll(h, 8)
				},
				"TryClaim+Commit+Read": func() {
					b, err := pub.TryClaim(64)
					if err != nil {
						t.Fatal(err)
					}
					b[0] = 1
					pub.Commit()
					sub.Read(buf)
				},
				"OfferBatch+Poll": func() {
					pub.OfferBatch(batch)
					sub.Poll(h, 8)
				},
			}
			for name, f := range cases {
				if a := testing.AllocsPerRun(1000, f); a != 0 {
					t.Errorf("%v/%v %s: %v allocs per run, want 0", kind, pol, name, a)
				}
			}
		}
	}
}
