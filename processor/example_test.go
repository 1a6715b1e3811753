package processor_test

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
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
)

// upper is a processor of our own: it replaces the payload with its upper
// case and marks the record.
type upper struct{ buf []byte }

func (*upper) Name() string                     { return "upper" }
func (*upper) Version() string                  { return "1.0" }
func (*upper) Init(ctx processor.Context) error { return nil }
func (*upper) Close() error                     { return nil }
func (u *upper) Process(m *processor.Message) processor.Action {
	u.buf = u.buf[:0]
	for _, c := range m.Payload() {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		u.buf = append(u.buf, c)
	}
	m.SetPayload(u.buf) // u.buf must stay unchanged until the record is published: the next Process
	m.SetHeader("case", "upper")
	return processor.Continue
}

// Example embeds a broker, then runs a pipeline "greetings" -> filter ->
// upper -> "shouts" in this program.
func Example() {
	dir, _ := os.MkdirTemp("", "kaelix-proc-example-")
	defer os.RemoveAll(dir)
	cfg := daemon.Default()
	cfg.Daemon.SocketPath = filepath.Join(dir, "kaelixd.sock")
	cfg.Daemon.StateDir = dir
	cfg.Shm.DirName = "kaelix-proc-example-" + strconv.Itoa(os.Getpid())
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
	for _, t := range []string{"greetings", "shouts"} {
		c.CreateTopic(ctx, client.TopicConfig{Name: t})
	}

	reg := processor.NewRegistry(nil)
	filter, _ := builtin.New("filter")
	reg.Register("only-en", filter, processor.StageOptions{
		Config:      processor.Config{"header": "lang", "equals": []string{"en"}},
		Permissions: processor.Permissions{CanReadConfig: true},
	})
	reg.Register("upper", &upper{}, processor.StageOptions{})
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "greetings", Outputs: []string{"shouts"}, Stages: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	ran := make(chan error)
	go func() { ran <- p.Run(pctx) }()

	sub, _ := c.Subscribe(ctx, "shouts", client.SubscribeOptions{})
	pub, _ := c.NewPublisher(ctx, "greetings", client.PublisherOptions{})
	for i, lang := range []string{"en", "fr", "en"} {
		pub.Publish(ctx, client.NewMessage([]byte(fmt.Sprintf("hello %d", i)), client.WithHeader("lang", lang)))
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for range 2 {
		m, err := sub.Receive(rctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s case=%s lang=%s\n", m.Payload, m.Headers["case"], m.Headers["lang"])
	}
	stopPipeline()
	<-ran
	st := p.Stats()
	fmt.Printf("in %d out %d dropped %d\n", st.In, st.Out, st.Dropped)
	pub.Close()
	sub.Close()
	p.Close()
	// Output:
	// HELLO 0 case=upper lang=en
	// HELLO 2 case=upper lang=en
	// in 3 out 2 dropped 1
}
