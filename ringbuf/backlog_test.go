package ringbuf

import (
	"errors"
	"testing"
)

// TestBacklog: every consumer slot with its lag in bytes and records, its
// own consumed and lost counts; a lapped reader's record lag is unknown
// (the record at its position was overwritten) and never a wrong number.
func TestBacklog(t *testing.T) {
	c := DefaultConfig(MPMC)
	c.CapacityBytes, c.MaxPayloadBytes, c.Policy = 4096, 64, PolicyDropOldest
	r, _, _ := newTestRing(t, c)
	pub, _ := r.NewPublisher(PublisherOptions{})
	fast, _ := r.NewSubscriber(SubscriberOptions{})
	slow, _ := r.NewSubscriber(SubscriberOptions{})
	member, err := r.NewSubscriber(SubscriberOptions{Group: 9})
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 24) // 56-byte records
	for range 10 {
		if err := pub.Offer(msg); err != nil {
			t.Fatal(err)
		}
	}
	fast.Poll(func(Record) {}, 10)
	member.Poll(func(Record) {}, 4)
	rows := r.Backlog()
	by := map[string]SlotBacklog{}
	for _, b := range rows {
		switch {
		case b.State == "group":
			by["group"] = b
		case b.Group >= 0:
			by["member"] = b
		case b.Index == 0:
			by["fast"] = b
		default:
			by["slow"] = b
		}
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rows), rows)
	}
	if f := by["fast"]; f.LagBytes != 0 || f.LagRecords != 0 || !f.LagRecordsKnown || f.Consumed != 10 || f.ConsumedBytes != 240 || f.State != "active" {
		t.Errorf("fast: %+v", f)
	}
	if s := by["slow"]; s.LagBytes != 560 || s.LagRecords != 10 || !s.LagRecordsKnown || s.Consumed != 0 {
		t.Errorf("slow: %+v", s)
	}
	if g := by["group"]; g.GroupID != 9 || g.Members != 1 || g.LagRecords != 6 || g.Consumed != 4 {
		t.Errorf("group: %+v", g)
	}
	if m := by["member"]; m.Group != by["group"].Index || m.LagRecords != 6 || m.Consumed != 4 {
		t.Errorf("member: %+v", m)
	}
	// Lap the slow reader: its position's record is overwritten.
	for range 200 {
		if err := pub.Offer(msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range r.Backlog() {
		if b.Index == by["slow"].Index && b.Group < 0 && b.State == "active" {
			if b.LagRecordsKnown || b.LagBytes <= c.CapacityBytes {
				t.Errorf("lapped reader: %+v, want an unknown record lag and more than a ring of bytes", b)
			}
		}
	}
	if _, err := slow.Poll(func(Record) {}, 1); !errors.Is(err, ErrLapped) {
		t.Errorf("slow reader's next poll: %v, want ErrLapped", err)
	}
}
