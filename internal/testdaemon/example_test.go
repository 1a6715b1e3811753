package testdaemon_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/daemon"
	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
)

// exampleT stands in for the *testing.T a test has: it implements the
// part of testing.TB that Start uses and runs the cleanups at the end.
type exampleT struct {
	testing.TB
	dir      string
	cleanups []func()
}

func (t *exampleT) Helper()                   {}
func (t *exampleT) TempDir() string           { return t.dir }
func (t *exampleT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(f string, a ...any) { fmt.Printf(f+"\n", a...) }
func (t *exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	os.RemoveAll(t.dir)
}

// Example starts a daemon that declares a topic, publishes a record to it
// with a client and receives it back. In a test, t is the test's own.
func Example() {
	dir, _ := os.MkdirTemp("", "testdaemon-example-")
	t := &exampleT{dir: dir}
	defer t.finish()

	d := testdaemon.Start(t, testdaemon.WithConfig(func(c *daemon.Config) {
		c.Topics = []config.Topic{{Name: "example.td"}} // declared: made at start
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{SocketPath: d.SocketPath()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	sub, _ := c.Subscribe(ctx, "example.td", client.SubscribeOptions{})
	pub, _ := c.NewPublisher(ctx, "example.td", client.PublisherOptions{})
	if err := pub.Publish(ctx, client.NewMessage([]byte("hello"))); err != nil {
		fmt.Println(err)
		return
	}
	m, err := sub.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s, %d topic\n", m.Payload, d.Status().Topics)
	// Output: hello, 1 topic
}
