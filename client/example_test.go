package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// exampleClient runs kaelixd in this process, on paths of its own (an example's
// stand-in for the kaelixd systemd starts), and connects a Client to it
// (client.Options{} would find the system's socket). stop closes the
// Client and stops the daemon.
func exampleClient() (c *client.Client, stop func()) {
	dir, _ := os.MkdirTemp("", "kaelix-example-")
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = filepath.Join(dir, "kaelixd.sock")
	cfg.Daemon.StateDir = dir
	cfg.Shm.DirName = "kaelix-example-" + strconv.Itoa(os.Getpid())
	cfg.RemoveOnExit = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, _ := daemon.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	c, err := client.Connect(ctx, client.Options{SocketPath: cfg.Daemon.SocketPath})
	if err != nil {
		panic(err)
	}
	return c, func() { c.Close(); cancel(); <-done; os.RemoveAll(dir) }
}

// Example runs a broker in-process, creates a topic, publishes three
// messages with a header and receives them.
func Example() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, client.TopicConfig{Name: "demo.greetings"}); err != nil {
		fmt.Println(err)
		return
	}
	sub, _ := c.Subscribe(ctx, "demo.greetings", client.SubscribeOptions{})
	pub, _ := c.NewPublisher(ctx, "demo.greetings", client.PublisherOptions{})
	for i := range 3 {
		msg := client.NewMessage([]byte(fmt.Sprintf("hello %d", i)), client.WithHeader("lang", "en"))
		if err := pub.Publish(ctx, msg); err != nil {
			fmt.Println(err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for range 3 {
		m, err := sub.Receive(rctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s lang=%s\n", m.ID, m.Payload, m.Headers["lang"])
	}
	// Output:
	// 0:0 hello 0 lang=en
	// 0:1 hello 1 lang=en
	// 0:2 hello 2 lang=en
}

// ExampleClient_CreateTopic creates an SPSC topic, reads back its
// normalized config and a partition's counters, and matches the errors
// a second subscriber and a bad config get, all with package client's
// own types and sentinels.
func ExampleClient_CreateTopic() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()

	info, err := c.CreateTopic(ctx, client.TopicConfig{
		Name:          "demo.ticks",
		Kind:          client.KindSPSC,
		Policy:        client.PolicyDropOldest,
		CapacityBytes: 64 << 10,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := info.Spec // normalized: every default filled in
	fmt.Printf("%s: %s %s, %d partition, %d KiB, max message %d B, %d publisher, %d subscriber\n",
		s.Name, s.Kind, s.Policy, s.Partitions, s.CapacityBytes>>10, s.MaxMessageBytes, s.MaxPublishers, s.MaxSubscribers)

	pub, _ := c.NewPublisher(ctx, "demo.ticks", client.PublisherOptions{})
	sub, _ := c.Subscribe(ctx, "demo.ticks", client.SubscribeOptions{})
	_ = pub.Publish(ctx, client.NewMessage([]byte("tick")))
	info, _ = c.TopicInfo(ctx, "demo.ticks")
	p := info.Partitions[0]
	fmt.Printf("partition %d: published %d, %d publisher, %d subscriber\n",
		p.Index, p.Counters.Published, p.Counters.Publishers, p.Counters.Subscribers)

	// SPSC: one subscriber slot, held by sub.
	_, err = c.Subscribe(ctx, "demo.ticks", client.SubscribeOptions{})
	fmt.Println("second subscriber refused, no slot:", errors.Is(err, client.ErrNoSlot))
	_, err = c.CreateTopic(ctx, client.TopicConfig{Name: "demo.bad", Kind: "ring"})
	fmt.Println("unknown kind refused:", errors.Is(err, client.ErrInvalidSpec))
	sub.Close()
	pub.Close()
	// Output:
	// demo.ticks: spsc drop-oldest, 1 partition, 64 KiB, max message 4096 B, 1 publisher, 1 subscriber
	// partition 0: published 1, 1 publisher, 1 subscriber
	// second subscriber refused, no slot: true
	// unknown kind refused: true
}
