package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
)

// Example runs a broker in-process, creates a topic, publishes three
// messages with a header and receives them.
func Example() {
	dir, _ := os.MkdirTemp("", "kaelix-example-")
	defer os.RemoveAll(dir)
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = filepath.Join(dir, "kaelixd.sock")
	cfg.Daemon.StateDir = dir
	cfg.Shm.DirName = "kaelix-example-" + strconv.Itoa(os.Getpid())
	cfg.RemoveOnExit = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, _ := daemon.New(cfg)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-d.Ready()
	defer func() { stop(); <-done }()

	c, err := client.Connect(ctx, client.Options{SocketPath: cfg.Daemon.SocketPath})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
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
