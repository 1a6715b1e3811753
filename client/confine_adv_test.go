package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// TestAdvSPSCGroupSubscribeLeaksReservation: Subscribe with a Group on an
// SPSC topic fails with client.ErrUnsupported (documented as an expected
// outcome), but the daemon ignored the group and reserved the partition's
// only subscriber slot for this process before the client library noticed.
// Nothing cancels that reservation: the process's next, correct Subscribe
// is refused (no_slot) and the reservation holds the publisher back, for as
// long as this process lives.
func TestAdvSPSCGroupSubscribeLeaksReservation(t *testing.T) {
	_, c, ctx := withTopic(t, client.TopicConfig{Name: "adv.spsc", Kind: "spsc", CapacityBytes: 4096, MaxMessageBytes: 64})
	if _, err := c.Subscribe(ctx, "adv.spsc", client.SubscribeOptions{Group: "g"}); !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("group on SPSC: %v, want ErrUnsupported", err)
	}
	s, err := c.Subscribe(ctx, "adv.spsc", client.SubscribeOptions{})
	if err != nil {
		t.Errorf("plain Subscribe after the refused group Subscribe: %v (the refused attach left its reservation behind)", err)
	} else {
		s.Close()
	}
	// With no subscriber left, the publisher must be free to write.
	p, err := c.NewPublisher(ctx, "adv.spsc", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sent := 0
	// Publish, not TryPublish: with no subscriber TryPublish says
	// ErrNotConnected without trying, while Publish writes and would wait
	// (here: time out) if a leaked reservation held the ring back.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	for i := 0; i < 200; i++ { // 200 x 64 B > 4 KiB capacity
		if err := p.Publish(pctx, client.Message{Payload: make([]byte, 32)}); err != nil {
			t.Errorf("Publish %d with no subscriber: %v (held back by the leaked reservation)", i, err)
			break
		}
		sent++
	}
	t.Logf("published %d of 200", sent)
}

// TestAdvCancelledSubscribeLeaksReservation: a Subscribe whose context
// ends while the attach request is in flight gives up on the reply (and
// closes its descriptors), but the daemon has reserved a slot for this
// process and registered the attachment; nothing tells it otherwise. On an
// SPSC topic the process can then never subscribe again while it lives.
func TestAdvCancelledSubscribeLeaksReservation(t *testing.T) {
	_, c, ctx := withTopic(t, client.TopicConfig{Name: "adv.spsc2", Kind: "spsc", CapacityBytes: 4096, MaxMessageBytes: 64})
	dead, stop := context.WithCancel(context.Background())
	stop()
	_, err := c.Subscribe(dead, "adv.spsc2", client.SubscribeOptions{})
	if err == nil {
		t.Skip("the reply won the race against the cancelled context")
	}
	t.Logf("cancelled Subscribe: %v", err)
	time.Sleep(50 * time.Millisecond) // the daemon has answered by now
	s, err := c.Subscribe(ctx, "adv.spsc2", client.SubscribeOptions{})
	if err != nil {
		t.Errorf("Subscribe after a cancelled one: %v (the cancelled attach's reservation was never released)", err)
	} else {
		s.Close()
	}
	info, err := c.TopicInfo(ctx, "adv.spsc2")
	if err == nil {
		t.Logf("topic info after: %+v", info)
	}
}

// TestAdvConsumedCounterGoesBackwards: kaelix_partition_consumed_records_total
// (Counters.Consumed, a Prometheus counter) is the sum of the subscriber
// slots' consumed fields, and a reservation zeroes the slot it takes. So
// when a subscriber leaves and the next one reuses its slot, the
// partition's "total" drops: 10 records consumed, then 0.
func TestAdvConsumedCounterGoesBackwards(t *testing.T) {
	_, c, ctx := withTopic(t, client.TopicConfig{Name: "adv.count", CapacityBytes: 64 << 10})
	s, err := c.Subscribe(ctx, "adv.count", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewPublisher(ctx, "adv.count", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := 0; i < 10; i++ {
		p.Publish(ctx, client.Message{Payload: []byte("x")})
	}
	for got := 0; got < 10; {
		n, err := s.Poll(func(*client.Message) {}, 10)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	consumed := func() uint64 {
		info, err := c.TopicInfo(ctx, "adv.count")
		if err != nil {
			t.Fatal(err)
		}
		return info.Partitions[0].Counters.Consumed
	}
	before := consumed()
	s.Close()
	s2, err := c.Subscribe(ctx, "adv.count", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if after := consumed(); after < before {
		t.Errorf("partition consumed counter went from %d to %d when a new subscriber took the slot", before, after)
	}
}

// TestAdvTopicTooManySlotsForAnyPublisher: max_subscribers is accepted up
// to 32768 (and max_groups as many), and every slot is a region file the
// daemon keeps open; a publisher needs every slot's descriptor in one
// attach reply, at most wire.MaxFDs (4096). A topic with 5000 subscriber
// slots is created (5000 files, 5000 descriptors held by kaelixd) and can
// never be published to.
func TestAdvTopicTooManySlotsForAnyPublisher(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := c.CreateTopic(ctx, client.TopicConfig{Name: "adv.wide", CapacityBytes: 4096, MaxMessageBytes: 64, MaxSubscribers: 5000, MaxGroups: 1})
	if err != nil {
		t.Logf("create refused: %v", err)
		return
	}
	defer c.DeleteTopic(ctx, "adv.wide", client.DeleteOptions{Force: true})
	p, err := c.NewPublisher(ctx, "adv.wide", client.PublisherOptions{})
	if err != nil {
		t.Errorf("topic created with 5000 subscriber slots, but no publisher can attach: %v", err)
		return
	}
	p.Close()
}
