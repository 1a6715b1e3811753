package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kaelix-io/kaelix/client"
)

// TestPollMessageFields: the Subscriber stores a partition's common
// fields (Topic, Partition, ID.Partition) once per ring Poll and the
// per-message ones (sequence, timestamp, payload, key, headers) per
// message; every message of a Poll over three partitions, with and
// without keys and headers interleaved, carries its own partition,
// sequence, payload, key and headers (nil after a message that had some).
func TestPollMessageFields(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e, nil)
	c := connect(t, e)
	ctx := context.Background()
	const topic, parts, perPart = "fields", 3, 40
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: topic, Partitions: parts, CapacityBytes: 64 << 10, MaxMessageBytes: 256}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := c.NewPublisher(ctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range parts * perPart {
		m := client.NewMessage([]byte(fmt.Sprintf("p%d-%03d", i%parts, i/parts)))
		if i%3 == 1 || i%7 == 0 {
			m = client.NewMessage(m.Payload, client.WithHeader("i", fmt.Sprint(i)))
		}
		m.Partition = i % parts
		m.Key = keyFor(i, parts)
		if err := pub.TryPublish(m); err != nil {
			t.Fatal(i, err)
		}
	}
	seen := make([]int, parts)
	last := make([]uint64, parts)
	total := 0
	h := func(m *client.Message) {
		p := m.Partition
		if p < 0 || p >= parts || m.ID.Partition != p || m.Topic != topic {
			t.Fatalf("message %q: topic %q partition %d id %+v key %v", m.Payload, m.Topic, p, m.ID, m.Key)
		}
		k := seen[p]
		if want := fmt.Sprintf("p%d-%03d", p, k); string(m.Payload) != want {
			t.Fatalf("partition %d: payload %q, want %q", p, m.Payload, want)
		}
		if k > 0 && m.ID.Sequence <= last[p] {
			t.Fatalf("partition %d message %d: sequence %d after %d", p, k, m.ID.Sequence, last[p])
		}
		last[p] = m.ID.Sequence
		i := k*parts + p
		if want := keyFor(i, parts); string(m.Key) != string(want) || (want == nil) != (m.Key == nil) {
			t.Fatalf("message %d: key %q, want %q", i, m.Key, want)
		}
		if i%3 == 1 || i%7 == 0 {
			if m.Headers["i"] != fmt.Sprint(i) {
				t.Fatalf("message %d: headers %v", i, m.Headers)
			}
		} else if m.Headers != nil {
			t.Fatalf("message %d: headers %v, want none", i, m.Headers)
		}
		seen[p]++
		total++
	}
	for polls := 0; total < parts*perPart && polls < 1000; polls++ {
		if _, err := sub.Poll(h, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if total != parts*perPart {
		t.Fatalf("received %d of %d (per partition %v)", total, parts*perPart, seen)
	}
}

// keyFor is message i's key: none for most, else one that routes to
// partition i%parts (as the test's numbered partition).
func keyFor(i, parts int) []byte {
	if i%5 != 2 {
		return nil
	}
	for j := 0; ; j++ {
		if k := []byte(fmt.Sprintf("k%d-%d", i, j)); client.PartitionOf(k, parts) == i%parts {
			return k
		}
	}
}
