package ringbuf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"testing"
	"time"
)

// edgeConfig is a 4 KiB ring with 300-byte payloads, so that records wrap
// and lap after a handful of offers.
func edgeConfig(kind Kind, policy Policy) Config {
	c := DefaultConfig(kind)
	c.Policy = policy
	c.CapacityBytes = 4096
	c.MaxPayloadBytes = 300
	return c
}

// edgePayload returns n bytes that encode seq, so a torn or misplaced
// payload never looks right.
func edgePayload(seq uint64, n int) []byte {
	p := make([]byte, n)
	x := seq*0x9e3779b97f4a7c15 + uint64(n)
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return p
}

func mustSub(t testing.TB, r *Ring, o SubscriberOptions) *Subscriber {
	t.Helper()
	s, err := r.NewSubscriber(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPub(t testing.TB, r *Ring, o PublisherOptions) *Publisher {
	t.Helper()
	p, err := r.NewPublisher(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// edgeRecord is a delivered record with its payload copied out.
type edgeRecord struct {
	Record
	data []byte
}

// drain polls s until it reports nothing to read and returns what it
// delivered and the errors it saw (ErrLapped is expected under
// PolicyDropOldest; anything else fails the test).
func drain(t testing.TB, s *Subscriber) (recs []edgeRecord, lapped int) {
	t.Helper()
	for calls := 0; calls < 1000; calls++ {
		n, err := s.Poll(func(r Record) {
			recs = append(recs, edgeRecord{r, bytes.Clone(r.Payload)})
		}, 7)
		switch {
		case errors.Is(err, ErrLapped):
			lapped++
		case err != nil:
			t.Fatalf("poll: %v", err)
		case n == 0:
			return recs, lapped
		}
	}
	t.Fatal("drain: subscriber never ran dry")
	return nil, 0
}

// TestPositionsNearWraparound starts rings just below 2^32 and 2^63, at
// and off a multiple of the capacity, and pushes traffic across.
func TestPositionsNearWraparound(t *testing.T) {
	starts := []struct {
		name            string
		pos, seq, cross uint64
	}{
		{"2^32-1000", 1<<32 - 1000, 1<<32 - 3, 1 << 32},
		{"2^32-capacity", 1<<32 - 4096, 1<<32 - 1, 1 << 32},
		{"2^32-3*capacity+24", 1<<32 - 3*4096 + 24, 1 << 31, 1 << 32},
		{"2^63-1000", 1<<63 - 1000, 1<<63 - 3, 1 << 63},
		{"2^63-capacity", 1<<63 - 4096, 1<<63 - 1, 1 << 63},
	}
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest, PolicyReject} {
			for _, st := range starts {
				t.Run(fmt.Sprintf("%v/%v/%s", kind, pol, st.name), func(t *testing.T) {
					c := edgeConfig(kind, pol)
					size, _ := sizeIn(c)
					b, _ := sharedMapping(t, size)
					r, err := createAt(b, c, st.pos, st.seq)
					if err != nil {
						t.Fatal(err)
					}
					sub := mustSub(t, r, SubscriberOptions{})
					var member *Subscriber
					if kind == MPMC {
						member = mustSub(t, r, SubscriberOptions{Group: 7})
					}
					pub := mustPub(t, r, PublisherOptions{})
					// 120 records of 0..295 bytes: about five laps.
					var want [][]byte
					seq := st.seq
					var got, gotGroup []edgeRecord
					for i := 0; i < 120; i++ {
						p := edgePayload(seq, (i*97)%296)
						if err := pub.Offer(p); err != nil {
							t.Fatalf("offer %d at tail %d: %v", i, r.TailPosition(), err)
						}
						want = append(want, p)
						seq++
						recs, lapped := drain(t, sub)
						if lapped != 0 {
							t.Fatalf("lapped while keeping up")
						}
						got = append(got, recs...)
						if member != nil {
							recs, _ := drain(t, member)
							gotGroup = append(gotGroup, recs...)
						}
					}
					if tp := r.TailPosition(); tp <= st.pos+4*4096 || tp <= st.cross {
						t.Fatalf("tail %d did not run four laps from %d and cross %d", tp, st.pos, st.cross)
					}
					check := func(who string, got []edgeRecord) {
						t.Helper()
						if len(got) != len(want) {
							t.Fatalf("%s: got %d records, want %d", who, len(got), len(want))
						}
						prevEnd := st.pos
						for i, g := range got {
							if g.Sequence != st.seq+uint64(i) || !bytes.Equal(g.data, want[i]) {
								t.Fatalf("%s: record %d: seq %d (%d bytes), want seq %d (%d bytes)", who, i, g.Sequence, len(g.data), st.seq+uint64(i), len(want[i]))
							}
							if g.Position < prevEnd || g.Position-prevEnd >= spanOf(uint64(c.MaxPayloadBytes)) {
								t.Fatalf("%s: record %d at %d, previous ended at %d", who, i, g.Position, prevEnd)
							}
							if g.Position != prevEnd && g.Position&r.mask != 0 {
								t.Fatalf("%s: record %d at %d leaves a gap after %d that is not wrap padding", who, i, g.Position, prevEnd)
							}
							prevEnd = g.Position + spanOf(uint64(len(g.data)))
						}
					}
					check("broadcast", got)
					if member != nil {
						check("group", gotGroup)
					}
					if cn := r.Counters(); cn.Published != seq || cn.TailPosition != r.TailPosition() {
						t.Fatalf("counters %+v, want Published %d", cn, seq)
					}

					if pol != PolicyDropOldest {
						return
					}
					// Lap the subscriber across the boundary: it must lose
					// exactly the records that were overwritten.
					for i := 0; i < 40; i++ {
						if err := pub.Offer(edgePayload(seq, 200)); err != nil {
							t.Fatal(err)
						}
						seq++
					}
					recs, lapped := drain(t, sub)
					if lapped != 1 || len(recs) == 0 {
						t.Fatalf("lapped %d times, %d records", lapped, len(recs))
					}
					if lost := sub.Lost(); recs[0].Sequence-(seq-40) != lost || recs[len(recs)-1].Sequence != seq-1 {
						t.Fatalf("lost %d, first record after the lap %d, last %d; first unread was %d", lost, recs[0].Sequence, recs[len(recs)-1].Sequence, seq-40)
					}
					for i, g := range recs {
						if !bytes.Equal(g.data, edgePayload(g.Sequence, 200)) || g.Sequence != recs[0].Sequence+uint64(i) {
							t.Fatalf("record %d after the lap: seq %d wrong or torn", i, g.Sequence)
						}
					}
				})
			}
		}
	}
}

// TestWrapPadding lays records so that the last one leaves 0, 8, 24, 32
// and 40 bytes before the end of the data area, then offers a record
// that does not fit there (and, for gaps of at least a header, one that
// does).
func TestWrapPadding(t *testing.T) {
	type step struct {
		payload     int
		wantPadding bool // a padding word is written at the gap
	}
	cases := []struct {
		gap  uint64
		next []step
	}{
		{0, []step{{100, false}}},
		{8, []step{{100, true}}},
		{24, []step{{0, true}}}, // even an empty record (32 bytes) does not fit
		{32, []step{{100, true}}},
		{32, []step{{0, false}, {100, false}}}, // an empty record fills the gap exactly
		{40, []step{{0, false}, {0, true}}},    // fits, leaves 8, then padding
		{40, []step{{8, false}, {100, false}}}, // 40-byte record fills it
		{40, []step{{9, true}}},                // 48 bytes: padding
	}
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%v/%v/gap%d/%v", kind, pol, tc.gap, tc.next), func(t *testing.T) {
					r, _, _ := newTestRing(t, edgeConfig(kind, pol))
					sub := mustSub(t, r, SubscriberOptions{})
					pub := mustPub(t, r, PublisherOptions{})
					var want [][]byte
					var got []edgeRecord
					offer := func(n int) {
						t.Helper()
						p := edgePayload(uint64(len(want)), n)
						if err := pub.Offer(p); err != nil {
							t.Fatalf("offer %d bytes at %d: %v", n, r.TailPosition(), err)
						}
						want = append(want, p)
						recs, _ := drain(t, sub)
						got = append(got, recs...)
					}
					// Fill the first lap up to capacity - gap with 256-byte
					// records and one shorter record.
					fill := 4096 - tc.gap
					for r.TailPosition() < fill {
						span := fill - r.TailPosition()
						if span > 256 {
							span = 256
							if fill-r.TailPosition()-256 < RecordHeaderLength {
								span = 128
							}
						}
						offer(int(span) - RecordHeaderLength)
					}
					if r.TailPosition() != fill {
						t.Fatalf("tail %d, want %d", r.TailPosition(), fill)
					}
					for _, s := range tc.next {
						at := r.TailPosition()
						offer(s.payload)
						w := r.dataWord(at)
						if s.wantPadding {
							if w != at|statePadding {
								t.Fatalf("word at %d = %#x, want padding %#x", at, w, at|statePadding)
							}
							last := got[len(got)-1]
							if lap := (at + r.capacity) &^ r.mask; last.Position != lap {
								t.Fatalf("record after padding at %d, want next lap start %d", last.Position, lap)
							}
						} else if last := got[len(got)-1]; last.Position != at {
							t.Fatalf("record at %d, want %d (no padding)", last.Position, at)
						}
					}
					if len(got) != len(want) {
						t.Fatalf("got %d records, want %d", len(got), len(want))
					}
					for i := range want {
						if !bytes.Equal(got[i].data, want[i]) || got[i].Sequence != uint64(i) {
							t.Fatalf("record %d torn or out of order", i)
						}
					}
				})
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig(MPMC)
	with := func(f func(*Config)) Config { c := ok; f(&c); return c }
	const pre = "ringbuf: invalid config: "
	cases := []struct {
		name string
		c    Config
		want string // "" = valid
	}{
		{"default mpmc", ok, ""},
		{"default spsc", DefaultConfig(SPSC), ""},
		{"smallest", with(func(c *Config) { c.CapacityBytes, c.MaxPayloadBytes = 4096, 2048-32 }), ""},
		{"kind 0", with(func(c *Config) { c.Kind = 0 }), "unknown kind 0"},
		{"kind 3", with(func(c *Config) { c.Kind = 3 }), "unknown kind 3"},
		{"spsc two publishers", with(func(c *Config) { c.Kind, c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = SPSC, 2, 1, 0 }),
			"spsc ring needs MaxPublishers=1, MaxSubscribers=1, MaxGroups=0 (got 2, 1, 0)"},
		{"spsc groups", with(func(c *Config) { c.Kind, c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = SPSC, 1, 1, 1 }),
			"spsc ring needs MaxPublishers=1, MaxSubscribers=1, MaxGroups=0 (got 1, 1, 1)"},
		{"policy 0", with(func(c *Config) { c.Policy = 0 }), "unknown overflow policy 0"},
		{"policy 4", with(func(c *Config) { c.Policy = 4 }), "unknown overflow policy 4"},
		{"capacity 0", with(func(c *Config) { c.CapacityBytes = 0 }), "capacity 0 bytes is not a power of two between 4096 and 2^40"},
		{"capacity 2048", with(func(c *Config) { c.CapacityBytes, c.MaxPayloadBytes = 2048, 100 }), "capacity 2048 bytes is not a power of two between 4096 and 2^40"},
		{"capacity 12288", with(func(c *Config) { c.CapacityBytes = 12288 }), "capacity 12288 bytes is not a power of two between 4096 and 2^40"},
		{"capacity 2^41", with(func(c *Config) { c.CapacityBytes = 1 << 41 }), "capacity 2199023255552 bytes is not a power of two between 4096 and 2^40"},
		{"payload 0", with(func(c *Config) { c.MaxPayloadBytes = 0 }),
			"max payload 0 bytes must be > 0 and its record (32 bytes with header) at most half the capacity (1048576 bytes)"},
		{"payload over half", with(func(c *Config) { c.CapacityBytes, c.MaxPayloadBytes = 4096, 2048-31 }),
			"max payload 2017 bytes must be > 0 and its record (2056 bytes with header) at most half the capacity (4096 bytes)"},
		{"publishers 0", with(func(c *Config) { c.MaxPublishers = 0 }), "slot counts out of range: publishers 0, subscribers 16, groups 4"},
		{"subscribers 2^15+1", with(func(c *Config) { c.MaxSubscribers = 1<<15 + 1 }), "slot counts out of range: publishers 16, subscribers 32769, groups 4"},
		{"groups -1", with(func(c *Config) { c.MaxGroups = -1 }), "slot counts out of range: publishers 16, subscribers 16, groups -1"},
		{"unblock 0", with(func(c *Config) { c.UnblockTimeout = 0 }), "unblock timeout 0s must be positive"},
		// The first problem wins.
		{"kind before capacity", with(func(c *Config) { c.Kind, c.CapacityBytes = 9, 1 }), "unknown kind 9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := sizeIn(tc.c); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != pre+tc.want || !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v\nwant       %s", err, pre+tc.want)
			}
			if _, err := sizeIn(tc.c); !errors.Is(err, ErrConfig) {
				t.Fatalf("SizeFor: %v", err)
			}
		})
	}
}

func TestAttachErrors(t *testing.T) {
	c := edgeConfig(MPMC, PolicyBlock)
	size, _ := sizeIn(c)
	dsize, csize, _ := SizeFor(c)
	fresh := func(t *testing.T) []byte {
		b, _ := sharedMapping(t, size+linePair)
		if _, err := createIn(b, c); err != nil {
			t.Fatal(err)
		}
		return b
	}
	put32 := func(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	put64 := func(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

	t.Run("ok", func(t *testing.T) {
		b := fresh(t)
		r, err := attachIn(b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind() != MPMC || r.Policy() != PolicyBlock || r.CapacityBytes() != 4096 || r.MaxPayloadBytes() != 300 {
			t.Fatalf("attached %v %v %d %d", r.Kind(), r.Policy(), r.CapacityBytes(), r.MaxPayloadBytes())
		}
	})
	cases := []struct {
		name   string
		mutate func(b []byte) []byte
		is     error
		want   string
	}{
		{"version 0", func(b []byte) []byte { put32(b, versionOffset, 0); return b }, ErrNotReady,
			"ringbuf: ring not initialized yet"},
		{"version 0 and no magic", func(b []byte) []byte { clear(b[:headerLength]); return b }, ErrNotReady,
			"ringbuf: ring not initialized yet"},
		{"version 2", func(b []byte) []byte { put32(b, versionOffset, 2); return b }, ErrIncompatible,
			"ringbuf: incompatible layout version 2, want 5"},
		{"version 0xffffffff", func(b []byte) []byte { put32(b, versionOffset, ^uint32(0)); return b }, ErrIncompatible,
			"ringbuf: incompatible layout version 4294967295, want 5"},
		{"wrong magic", func(b []byte) []byte { put64(b, magicOffset, 0x1234); return b }, ErrIncompatible,
			fmt.Sprintf("ringbuf: incompatible ring: magic 0x1234, want %#x (not a Kaelix ring)", Magic)},
		{"data size mismatch", func(b []byte) []byte { put64(b, totalBytesOffset, uint64(dsize)+128); return b }, ErrCorrupt,
			fmt.Sprintf("ringbuf: corrupt ring memory: header says the data area is %d bytes, its fields need %d, mapping has %d", dsize+128, dsize, dsize+128)},
		{"consumer size mismatch", func(b []byte) []byte { put64(b, consumerBytesOffset, uint64(csize)+128); return b }, ErrCorrupt,
			fmt.Sprintf("ringbuf: corrupt ring memory: header says the consumer area is %d bytes, its fields need %d, mapping has %d", csize+128, csize, csize)},
		{"mapping smaller than ring", func(b []byte) []byte { return b[:size-1] }, ErrConfig,
			fmt.Sprintf("ringbuf: invalid config: slot area %d is %d bytes, want at least %d", c.MaxSubscribers+c.MaxGroups-1, SlotBytes-1, SlotBytes)},
		{"consumer area cut short", func(b []byte) []byte { return b[:dsize+csize-1] }, ErrCorrupt,
			fmt.Sprintf("ringbuf: corrupt ring memory: header says the consumer area is %d bytes, its fields need %d, mapping has %d", csize, csize, csize-1)},
		{"consumer area of another ring", func(b []byte) []byte { put64(b, dsize+int(consumerCreatedNSOffset), 42); return b }, ErrCorrupt,
			"ringbuf: corrupt ring memory: consumer area belongs to another ring (its creation time or size differs from the data area's)"},
		{"mapping smaller than header", func(b []byte) []byte { return b[:headerLength-1] }, ErrCorrupt,
			fmt.Sprintf("ringbuf: corrupt ring memory: data area of %d bytes is too small for a ring header (%d bytes)", headerLength-1, headerLength)},
		{"empty mapping", func(b []byte) []byte { return nil }, ErrCorrupt,
			fmt.Sprintf("ringbuf: corrupt ring memory: data area of 0 bytes is too small for a ring header (%d bytes)", headerLength)},
		{"invalid capacity", func(b []byte) []byte { put64(b, capacityOffset, 5000); return b }, ErrCorrupt,
			"ringbuf: corrupt ring memory: header describes an invalid ring: ringbuf: invalid config: capacity 5000 bytes is not a power of two between 4096 and 2^40"},
		{"unaligned", func(b []byte) []byte { return b[8:] }, ErrConfig,
			"ringbuf: invalid config: mapping is not 128-byte aligned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(fresh(t))
			r, err := attachIn(b)
			if r != nil || !errors.Is(err, tc.is) || err.Error() != tc.want {
				t.Fatalf("Attach = %v, %v\nwant error %s", r, err, tc.want)
			}
		})
	}
}

// TestCorruptRecords plants values no correct publisher writes at the
// subscriber's position and checks that Poll and Read report them, do not
// move, and do the same again on the next call.
func TestCorruptRecords(t *testing.T) {
	type plant func(t *testing.T, r *Ring, pos uint64)
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	cases := []struct {
		name  string
		field string
		plant plant
	}{
		{"length over max payload", "length", func(t *testing.T, r *Ring, pos uint64) {
			r.pokeData(pos+recLengthOffset, u32(301))
		}},
		{"length 2^32-1", "length", func(t *testing.T, r *Ring, pos uint64) {
			r.pokeData(pos+recLengthOffset, u32(^uint32(0)))
		}},
		{"length past the buffer end", "length", func(t *testing.T, r *Ring, pos uint64) {
			// pos is 64 bytes before the end: a 100-byte payload cannot end in time.
			r.pokeData(pos+recLengthOffset, u32(100))
		}},
		{"state 0", "state", func(t *testing.T, r *Ring, pos uint64) { r.pokeData(pos, u64(pos)) }},
		{"state 5", "state", func(t *testing.T, r *Ring, pos uint64) { r.pokeData(pos, u64(pos|5)) }},
		{"state 7", "state", func(t *testing.T, r *Ring, pos uint64) { r.pokeData(pos, u64(pos|7)) }},
	}
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest, PolicyReject} {
			for _, group := range []bool{false, true} {
				if group && kind == SPSC {
					continue
				}
				for _, tc := range cases {
					t.Run(fmt.Sprintf("%v/%v/group=%v/%s", kind, pol, group, tc.name), func(t *testing.T) {
						r, _, _ := newTestRing(t, edgeConfig(kind, pol))
						o := SubscriberOptions{}
						if group {
							o.Group = 1
						}
						sub := mustSub(t, r, o)
						pub := mustPub(t, r, PublisherOptions{})
						// Fill to 64 bytes before the end, consuming as we go.
						for r.TailPosition() < 4096-64 {
							n := min(4096-64-r.TailPosition(), 256) - RecordHeaderLength
							if err := pub.Offer(make([]byte, n)); err != nil {
								t.Fatal(err)
							}
							drain(t, sub)
						}
						pos := r.TailPosition()
						if err := pub.Offer(make([]byte, 32)); err != nil {
							t.Fatal(err)
						}
						tc.plant(t, r, pos)
						var first *CorruptError
						for call := 0; call < 4; call++ {
							var err error
							if call%2 == 0 {
								_, err = sub.Poll(func(Record) { t.Fatal("delivered a corrupt record") }, 10)
							} else {
								_, _, err = sub.Read(make([]byte, 300))
							}
							var ce *CorruptError
							if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
								t.Fatalf("call %d: err = %v, want a *CorruptError", call, err)
							}
							if ce.Position != pos || ce.Field != tc.field {
								t.Fatalf("call %d: %v, want position %d field %s", call, ce, pos, tc.field)
							}
							if first == nil {
								first = ce
							} else if *ce != *first {
								t.Fatalf("call %d: %v, first call said %v", call, ce, first)
							}
							if sub.Position() != pos {
								t.Fatalf("call %d: position moved to %d, want %d", call, sub.Position(), pos)
							}
						}
					})
				}
			}
		}
	}
}

// TestCorruptClaimPublisherIndex plants a claimed record, never committed,
// whose publisher index names no slot. Unblocking it must report a
// *CorruptError once the stall is noticed, without moving the position.
func TestCorruptClaimPublisherIndex(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			c := edgeConfig(MPMC, PolicyBlock)
			c.UnblockTimeout = time.Millisecond
			r, _, _ := newTestRing(t, c)
			o := SubscriberOptions{Wait: Blocking}
			if group {
				o.Group = 3
			}
			sub := mustSub(t, r, o)
			pub := mustPub(t, r, PublisherOptions{})
			if err := pub.Offer([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			drain(t, sub)
			// A claim that no live publisher's intent covers, whose header
			// names publisher 999 of 16.
			pos, seq := r.tail()
			hdr := make([]byte, RecordHeaderLength)
			binary.LittleEndian.PutUint64(hdr[recStateOffset:], pos|stateClaimed)
			binary.LittleEndian.PutUint32(hdr[recLengthOffset:], 8)
			binary.LittleEndian.PutUint16(hdr[recPublisherOffset:], 999)
			binary.LittleEndian.PutUint64(hdr[recSequenceOffset:], seq)
			r.pokeData(pos, hdr)
			r.setTail(pos+spanOf(8), seq+1)

			// Poll notices a stall only every 256 empty polls, so the error
			// comes after a bounded number of calls, not on the first.
			deadline := time.Now().Add(5 * time.Second)
			var err error
			calls := 0
			for err == nil && time.Now().Before(deadline) {
				_, err = sub.Poll(func(Record) { t.Fatal("delivered a claimed record") }, 1)
				calls++
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Field != "publisher" || ce.Position != pos || ce.Value != 999 {
				t.Fatalf("after %d polls: err = %v, want a publisher *CorruptError at %d", calls, err, pos)
			}
			if sub.Position() != pos {
				t.Fatalf("position moved to %d", sub.Position())
			}
			// PollWait checks for stalls every time it parks: the error
			// comes back at once, again and again.
			for i := 0; i < 3; i++ {
				start := time.Now()
				n, err := sub.PollWait(func(Record) {}, 1, time.Second)
				var ce2 *CorruptError
				if n != 0 || !errors.As(err, &ce2) || *ce2 != *ce {
					t.Fatalf("PollWait %d: %d, %v; want %v", i, n, err, ce)
				}
				if d := time.Since(start); d > 500*time.Millisecond {
					t.Fatalf("PollWait %d took %v", i, d)
				}
			}
			if sub.Position() != pos {
				t.Fatalf("position moved to %d", sub.Position())
			}
		})
	}
}

// TestWakeupCounter: publishing costs no FUTEX_WAKE while nobody sleeps,
// and wakes a subscriber parked in PollWait.
func TestWakeupCounter(t *testing.T) {
	for _, kind := range []Kind{SPSC, MPMC} {
		t.Run(kind.String(), func(t *testing.T) {
			r, _, _ := newTestRing(t, edgeConfig(kind, PolicyBlock))
			sub := mustSub(t, r, SubscriberOptions{Wait: Blocking})
			pub := mustPub(t, r, PublisherOptions{})
			for i := 0; i < 100; i++ {
				if err := pub.Offer(edgePayload(uint64(i), 100)); err != nil {
					t.Fatal(err)
				}
				drain(t, sub)
			}
			if c := r.Counters(); c.Wakeups != 0 || c.Waits != 0 {
				t.Fatalf("no sleeper, yet wakeups %d waits %d", c.Wakeups, c.Waits)
			}

			type result struct {
				n   int
				err error
				got []byte
			}
			done := make(chan result, 1)
			go func() {
				var got []byte
				n, err := sub.PollWait(func(rec Record) { got = bytes.Clone(rec.Payload) }, 1, 10*time.Second)
				done <- result{n, err, got}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for r.dataWaiters() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("subscriber never parked")
				}
				time.Sleep(100 * time.Microsecond)
			}
			want := []byte("wake up")
			if err := pub.Offer(want); err != nil {
				t.Fatal(err)
			}
			select {
			case res := <-done:
				if res.n != 1 || res.err != nil || !bytes.Equal(res.got, want) {
					t.Fatalf("PollWait = %d, %v, %q", res.n, res.err, res.got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("parked subscriber not woken")
			}
			if c := r.Counters(); c.Wakeups == 0 || c.Waits == 0 {
				t.Fatalf("after waking a sleeper: wakeups %d waits %d", c.Wakeups, c.Waits)
			}
		})
	}
}

// ---- Regression tests for bugs found by these tests and the fuzzer. ----

// TestBugDropOldestForgedBoundary: the oldest intact record is found as
// the first word at or after tail-capacity that looks like a state word
// naming its own position. A record header's length word (length |
// type<<32 | publisher<<48) looks like one when length&^7 == its own
// offset+8, so a subscriber delivered a record made of another record's
// header and payload bytes. (A lapped subscriber now resumes half a ring
// behind the tail, where no such word can be forged, since lengths are
// smaller than any position past the first lap; a FromOldest subscriber
// still starts at the oldest record, so it checks the scan.)
func TestRegressionDropOldestForgedBoundary(t *testing.T) {
	r, _, _ := newTestRing(t, edgeConfig(SPSC, PolicyDropOldest))
	sub := mustSub(t, r, SubscriberOptions{})
	pub := mustPub(t, r, PublisherOptions{})
	var want [][]byte
	offer := func(n int) {
		t.Helper()
		p := edgePayload(uint64(len(want)), n)
		if err := pub.Offer(p); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	offer(24) // at 0, span 56
	offer(66) // at 56, span 104: its length word at 64 reads 66 = 64|stateCommitted
	for r.TailPosition()+232 <= 4096 {
		offer(200)
	}
	offer(int(4096-r.TailPosition()) - RecordHeaderLength) // to the end of the lap
	offer(32)                                              // at 4096, span 64: tail 4160, so tail-capacity = 64
	recs, lapped := drain(t, sub)
	if lapped != 1 {
		t.Fatalf("lapped %d times", lapped)
	}
	sub.Close() // SPSC: one subscriber slot
	oldest := mustSub(t, r, SubscriberOptions{From: FromOldest})
	orecs, olapped := drain(t, oldest)
	if olapped != 0 {
		t.Fatalf("FromOldest subscriber lapped %d times", olapped)
	}
	for _, g := range append(recs, orecs...) {
		if g.Sequence >= uint64(len(want)) || !bytes.Equal(g.data, want[g.Sequence]) {
			t.Fatalf("delivered a forged record at position %d: seq %d, %d bytes", g.Position, g.Sequence, len(g.data))
		}
	}
	if orecs[0].Sequence != 2 || oldest.Lost() != 0 {
		t.Fatalf("FromOldest started at seq %d having lost %d, want seq 2 and 0 lost", orecs[0].Sequence, oldest.Lost())
	}
	if lo := r.TailPosition() - 2048; recs[0].Position < lo || recs[0].Position >= lo+232 || sub.Lost() != recs[0].Sequence {
		t.Fatalf("lapped subscriber resumed at %d (seq %d) having lost %d, want the first record at or after %d, all before it lost",
			recs[0].Position, recs[0].Sequence, sub.Lost(), lo)
	}
}

// TestBugGroupReadShortBufferLosesRecord: Read documents that on
// ErrShortBuffer "the record stays unread", but a queue-group member has
// already taken the record from the group's cursor, so nobody ever gets
// it, and under PolicyBlock the member's hold word keeps pinning its
// position.
func TestRegressionGroupReadShortBufferLosesRecord(t *testing.T) {
	r, _, _ := newTestRing(t, edgeConfig(MPMC, PolicyBlock))
	a := mustSub(t, r, SubscriberOptions{Group: 5})
	b := mustSub(t, r, SubscriberOptions{Group: 5})
	pub := mustPub(t, r, PublisherOptions{})
	want := edgePayload(1, 100)
	if err := pub.Offer(want); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Read(make([]byte, 10)); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short read: %v", err)
	}
	buf := make([]byte, 300)
	n, _, err := a.Read(buf)
	if n == 0 {
		n, _, err = b.Read(buf)
	}
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("record lost after ErrShortBuffer: n=%d err=%v", n, err)
	}
}

// TestBugLappedClaimCommitScribbles: a claim held while other publishers
// lap it (PolicyDropOldest, or PolicyBlock with no consumer) is committed
// with a plain store of its state word into space that now belongs to a
// newer record. Here it overwrites the state word of the record at the
// next lap start, which subscribers then never read.
func TestRegressionLappedClaimCommitScribbles(t *testing.T) {
	// A claim in flight may not be lapped, under any policy: other
	// publishers are back-pressured a capacity ahead of it, and proceed as
	// soon as it is committed. Nothing is torn.
	r, _, _ := newTestRing(t, edgeConfig(MPMC, PolicyDropOldest))
	sub := mustSub(t, r, SubscriberOptions{})
	slow := mustPub(t, r, PublisherOptions{})
	fast := mustPub(t, r, PublisherOptions{})
	buf, err := slow.TryClaim(40) // at position 0
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, edgePayload(0, 40))
	var offerErr error
	for i := 0; i < 1000 && offerErr == nil; i++ {
		offerErr = fast.Offer(edgePayload(1, 100))
	}
	if !errors.Is(offerErr, ErrBackPressured) {
		t.Fatalf("lapping a claim in flight: %v, want ErrBackPressured", offerErr)
	}
	if tail := r.TailPosition(); tail > r.CapacityBytes() {
		t.Fatalf("tail %d passed the claim in flight at 0 by more than the capacity", tail)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	recs, _ := drain(t, sub)
	if len(recs) == 0 || !bytes.Equal(recs[0].data, edgePayload(0, 40)) {
		t.Fatalf("the held record was not delivered intact first")
	}
	for _, g := range recs[1:] {
		if !bytes.Equal(g.data, edgePayload(1, 100)) {
			t.Fatalf("torn record at %d", g.Position)
		}
	}
	for i := 0; i < 80; i++ { // two more laps, read as it goes
		if err := fast.Offer(edgePayload(1, 100)); err != nil {
			t.Fatal(err)
		}
		recs, _ := drain(t, sub)
		for _, g := range recs {
			if !bytes.Equal(g.data, edgePayload(1, 100)) {
				t.Fatalf("torn record at %d", g.Position)
			}
		}
		if lag := sub.Lag(); lag != 0 {
			t.Fatalf("offer %d: subscriber stuck at %d with %d bytes unread", i, sub.Position(), lag)
		}
	}
}

// TestBugCountersLostDoubleCountsGroups: a queue group's loss is added to
// the group slot's lost counter and to the lapped member's slot, and
// Counters sums both.
func TestRegressionCountersLostDoubleCountsGroups(t *testing.T) {
	r, _, _ := newTestRing(t, edgeConfig(MPMC, PolicyDropOldest))
	m := mustSub(t, r, SubscriberOptions{Group: 2})
	pub := mustPub(t, r, PublisherOptions{})
	for i := 0; i < 60; i++ {
		if err := pub.Offer(edgePayload(uint64(i), 200)); err != nil {
			t.Fatal(err)
		}
	}
	if _, lapped := drain(t, m); lapped == 0 {
		t.Fatal("not lapped")
	}
	if c := r.Counters(); c.Lost != m.Lost() {
		t.Fatalf("Counters().Lost = %d, but the only consumer lost %d (group slot says %d)", c.Lost, m.Lost(), m.groupLost())
	}
}

// TestBugLappedWordNamesPosition: under PolicyDropOldest a newer record
// whose payload ends inside an 8-byte word leaves that word's upper bytes
// from the previous lap. If the word is where a lapped subscriber stands,
// it can read as "this position, state 0" (Poll reports ErrCorrupt on a
// healthy ring), "this position, claimed" (Poll reports nothing while the
// ring is full of unread records, until the next lap rewrites the word) or
// "this position, padding" (the subscriber jumps to the next lap start and
// loses the records in between without ErrLapped or Lost counting them).
// next checks whether the position was lapped only when the word does not
// name it.
func TestRegressionLappedWordNamesPosition(t *testing.T) {
	for _, state := range []byte{0, stateClaimed, statePadding, 5} {
		t.Run(fmt.Sprintf("state%d", state), func(t *testing.T) {
			r, _, _ := newTestRing(t, edgeConfig(SPSC, PolicyDropOldest))
			sub := mustSub(t, r, SubscriberOptions{})
			pub := mustPub(t, r, PublisherOptions{})
			offer := func(p []byte) {
				t.Helper()
				if err := pub.Offer(p); err != nil {
					t.Fatal(err)
				}
			}
			offer(make([]byte, 16))  // at 0, span 48
			drain(t, sub)            // the subscriber now stands at 48
			offer(make([]byte, 100)) // at 48, span 136
			for r.TailPosition()+232 <= 4096 {
				offer(make([]byte, 200))
			}
			offer(make([]byte, 4096-r.TailPosition()-RecordHeaderLength))
			// At 4096: 17 payload bytes end at offset 48, whose other
			// seven bytes still hold the old state word 48|committed.
			last := make([]byte, 17)
			last[16] = 48 | state
			offer(last)
			if w := r.dataWord(48); w != 48|uint64(state) {
				t.Fatalf("word at 48 = %#x", w)
			}
			recs, lapped := drain(t, sub)
			if lapped != 1 || len(recs) == 0 || sub.Lag() != 0 {
				t.Fatalf("lapped %d, %d records, %d bytes left unread at %d", lapped, len(recs), sub.Lag(), sub.Position())
			}
		})
	}
}

// TestLappedConsumerOnSurvivingPadding replays the essentials of a
// property-test failure (TestRingProperties/mpmc/drop-oldest, where the
// model, not the ring, was wrong): a broadcast subscriber and a queue
// group stand on a wrap padding word at 4032 when the next lap pads from
// 3992, so nothing lands on the word at 4032 and it still reads
// 4032|padding after the lap. The ring does not follow it (a word at a
// lapped position is never believed, see
// TestRegressionLappedWordNamesPosition): while no resume point can be
// proven (the first record at or after tail - capacity/2 and the oldest
// record in the window are both claims in flight), both stay at 4032,
// and Position and Counters().SlowestLag say so. Once the claims commit,
// both resume half a ring behind the tail, at 6784, with ErrLapped,
// having lost exactly the records from 4096 to there.
func TestLappedConsumerOnSurvivingPadding(t *testing.T) {
	c := edgeConfig(MPMC, PolicyDropOldest)
	c.UnblockTimeout = time.Hour // the held claims are not a dead publisher's
	r, _, _ := newTestRing(t, c)
	pub := mustPub(t, r, PublisherOptions{})
	oldSlow := mustPub(t, r, PublisherOptions{})
	halfSlow := mustPub(t, r, PublisherOptions{})
	offer := func(n int) {
		t.Helper()
		if err := pub.Offer(edgePayload(uint64(n), n)); err != nil {
			t.Fatal(err)
		}
	}
	hold := func(p *Publisher, id uint64) {
		t.Helper()
		held, err := p.TryClaim(300)
		if err != nil {
			t.Fatal(err)
		}
		copy(held, edgePayload(id, 300))
	}
	for i := 0; i < 12; i++ {
		offer(300) // span 336: seq 0..11, tail 4032
	}
	b := mustSub(t, r, SubscriberOptions{})
	g := mustSub(t, r, SubscriberOptions{Group: 7})
	offer(300)          // padding at 4032..4096, seq 12 at 4096
	hold(oldSlow, 1000) // seq 13 at 4432: the oldest record once lapped
	for i := 0; i < 6; i++ {
		offer(300) // seq 14..19, 4768..6448
	}
	hold(halfSlow, 2000) // seq 20 at 6784: the first record at or after tail - capacity/2
	offer(300)           // seq 21 at 7120
	offer(300)           // seq 22 at 7456
	offer(264)           // seq 23, span 296: tail 8088, offset 3992
	offer(300)           // padding at 8088..8192, seq 24 at 8192: tail 8528
	const padAt, tail, resume = 4032, 8528, 6784
	if got := r.TailPosition(); got != tail {
		t.Fatalf("tail %d, want %d", got, tail)
	}
	if w := r.dataWord(padAt); w != padAt|statePadding {
		t.Fatalf("word at %d = %#x, want the surviving padding word %#x", padAt, w, uint64(padAt|statePadding))
	}
	for _, s := range []*Subscriber{b, g} {
		// Lapped at 4032 (and at 4096); the record at or after
		// tail - capacity/2 = 6480 and the oldest record at or after
		// tail - capacity = 4432 are claims in flight: nothing to read yet.
		if n, err := s.Poll(func(Record) { t.Fatal("delivered a record") }, 4); n != 0 || err != nil {
			t.Fatalf("poll with the resume points claimed: %d, %v", n, err)
		}
		if p := s.Position(); p != padAt {
			t.Fatalf("position %d, want %d: followed a word at a lapped position", p, padAt)
		}
	}
	if lag := r.Counters().SlowestLag; lag != tail-padAt {
		t.Fatalf("SlowestLag %d, want %d", lag, tail-padAt)
	}
	if err := oldSlow.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := halfSlow.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Subscriber{b, g} {
		recs, lapped := drain(t, s)
		if lapped != 1 || len(recs) != 5 || recs[0].Position != resume {
			t.Fatalf("lapped %d, %d records, want 1 and 5 from %d", lapped, len(recs), resume)
		}
		for i, rec := range recs {
			want := edgePayload(uint64(len(rec.data)), len(rec.data))
			if i == 0 {
				want = edgePayload(2000, 300)
			}
			if rec.Sequence != 20+uint64(i) || !bytes.Equal(rec.data, want) {
				t.Fatalf("record %d: seq %d at %d (%d bytes), want seq %d intact", i, rec.Sequence, rec.Position, len(rec.data), 20+i)
			}
		}
		if s.Lost() != 8 || s.Position() != tail {
			t.Fatalf("lost %d at %d, want 8 (seq 12..19) at %d", s.Lost(), s.Position(), tail)
		}
	}
	if c := r.Counters(); c.Lost != 16 || c.SlowestLag != 0 {
		t.Fatalf("counters: lost %d slowest lag %d, want 16 and 0", c.Lost, c.SlowestLag)
	}
}

// TestBugUnalignedTailOutOfBounds: publishers and new subscribers take
// the tail pair from shared memory as it is. A tail that is not a multiple
// of 8 (memory corruption, a foreign writer) makes an MPMC publisher's
// padding and header stores, and a new subscriber's state-word loads,
// straddle the end of the data area: the ring touches memory outside its
// span. The ring sits at the end of a mapping followed by a PROT_NONE
// page, so the stray access faults.
func TestRegressionUnalignedTailOutOfBounds(t *testing.T) {
	for _, who := range []string{"publisher", "new subscriber"} {
		t.Run(who, func(t *testing.T) {
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			c := edgeConfig(MPMC, PolicyDropOldest)
			size, _ := sizeIn(c)
			r, err := createIn(guardedMapping(t, size), c)
			if err != nil {
				t.Fatal(err)
			}
			pub := mustPub(t, r, PublisherOptions{})
			r.setTail(4089, 0)
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("%s faulted: %v", who, v)
				}
			}()
			var ce *CorruptError
			if who == "publisher" {
				if err := pub.Offer(nil); !errors.As(err, &ce) {
					t.Fatalf("Offer with an unaligned tail: %v, want a *CorruptError", err)
				}
				return
			}
			if _, err := r.NewSubscriber(SubscriberOptions{}); !errors.As(err, &ce) {
				t.Fatalf("joining at an unaligned tail: %v, want a *CorruptError", err)
			}
		})
	}
}

// TestBugGroupResyncSpins: a lapped queue-group member under
// PolicyDropOldest whose resync finds no intact record (here the oldest
// record in the window is a claim still being written, a normal transient
// state) retries up to 2^16 times inside one Poll instead of reporting
// nothing to read, as a broadcast subscriber does.
func TestRegressionGroupResyncSpins(t *testing.T) {
	r, _, _ := newTestRing(t, edgeConfig(MPMC, PolicyDropOldest))
	m := mustSub(t, r, SubscriberOptions{Group: 1})
	b := mustSub(t, r, SubscriberOptions{})
	pub := mustPub(t, r, PublisherOptions{})
	slow := mustPub(t, r, PublisherOptions{})
	for r.TailPosition() < 4096-336 {
		if err := pub.Offer(make([]byte, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := slow.TryClaim(300); err != nil { // at the next lap start
		t.Fatal(err)
	}
	defer slow.Abort()
	for r.TailPosition() < 2*4096-64 { // tail-capacity passes the padding: the claim is the oldest record
		if err := pub.Offer(make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
	}
	measure := func(s *Subscriber) time.Duration {
		start := time.Now()
		for i := 0; i < 10; i++ {
			if _, err := s.Poll(func(Record) {}, 1); err != nil && !errors.Is(err, ErrLapped) {
				t.Fatal(err)
			}
		}
		return time.Since(start) / 10
	}
	bd, gd := measure(b), measure(m)
	t.Logf("per Poll: broadcast %v, group member %v", bd, gd)
	if gd > 20*bd+100*time.Microsecond {
		t.Fatalf("a group member's Poll takes %v with nothing to read (broadcast: %v)", gd, bd)
	}
}

// TestSPSCOfferDiesBeforeCommit covers a publisher that dies inside the
// SPSC fast path of Offer, after writing a record's header fields and
// payload but before its commit store (the fast path writes no claimed
// state word). Under PolicyBlock and PolicyReject it has not announced the
// claim yet: the tail has not moved, and the next publisher writes the
// record again. Under PolicyDropOldest it has (intent, then tail): the
// subscriber steps over the dead claim as over any other. Either way the
// subscriber never sees the half-written record.
func TestSPSCOfferDiesBeforeCommit(t *testing.T) {
	for _, pol := range []Policy{PolicyBlock, PolicyReject, PolicyDropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			c := DefaultConfig(SPSC)
			c.Policy, c.CapacityBytes, c.MaxPayloadBytes = pol, 4096, 64
			c.UnblockTimeout = 20 * time.Millisecond
			r, _, _ := newTestRing(t, c)
			sub, err := r.NewSubscriber(SubscriberOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dead, _ := r.NewPublisher(PublisherOptions{})
			for i := 0; i < 3; i++ {
				if err := dead.Offer([]byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			// The dead Offer of a 40-byte record at the tail.
			pos, seq := dead.pos, dead.seq
			span := spanOf(40)
			if pol == PolicyDropOldest {
				dead.sv.set(pubIntentPosOffset, pos)
				dead.sv.set(pubIntentLenOffset, span)
				dead.sv.set(pubIntentSeqOffset, seq)
				dead.sv.set(pubIntentCountOffset, 1)
				r.m.storeRelease64(tailSequenceOffset, seq+1)
				r.m.storeRelease64(tailPositionOffset, pos+span)
			}
			base := r.dataOffset + uintptr(pos&r.mask)
			r.m.recordAt(base).setFields(40, 7, uint16(dead.slot), seq, 0)
			copy(r.m.b[base+RecordHeaderLength:], bytes.Repeat([]byte{0xEE}, 40))
			r.m.u32(dead.slotOff + pubPIDOffset).Store(deadPID(t))

			next, err := r.NewPublisher(PublisherOptions{}) // reaps the dead slot
			if err != nil {
				t.Fatalf("publisher after the dead one: %v", err)
			}
			if err := next.Offer([]byte("after")); err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			deadline := time.Now().Add(10 * time.Second)
			for len(got) == 0 || !bytes.Equal(got[len(got)-1], []byte("after")) {
				if time.Now().After(deadline) {
					t.Fatalf("subscriber never got the record after the dead Offer; got %q", got)
				}
				if _, err := sub.PollWait(func(rec Record) { got = append(got, bytes.Clone(rec.Payload)) }, 10, 50*time.Millisecond); err != nil && !errors.Is(err, ErrTimeout) {
					t.Fatal(err)
				}
			}
			want := [][]byte{{0}, {1}, {2}, []byte("after")}
			if len(got) != len(want) {
				t.Fatalf("got %q, want %q", got, want)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
				}
			}
		})
	}
}
