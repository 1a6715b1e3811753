package processor_test

import (
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
)

// BenchmarkHop compares one processor hop (input ring -> stamp -> output
// ring, the pipeline busy-spinning on its own goroutine) with one direct
// SPSC hop (publisher -> ring -> subscriber on another goroutine),
// interleaved in the same run:
// rounds of 256 records on each path in turn, so that a slow phase of the
// machine hits both. One record is in flight at a time; its latency is
// from before TryPublish to the subscriber's Poll seeing it (the send time
// travels in the payload: the pipeline's publisher stamps its own
// timestamp). Reported: p50 and p99 of each path and the p50 ratio. The
// allocations reported are the receiving subscriber's: it decodes the
// header stamp adds into two strings per record (client behaviour; the
// pipeline's own path allocates nothing, TestPipelineZeroAllocs). b.N
// records go through each path. It busy-spins three goroutines (sender,
// pipeline, receiver), each yielding (runtime.Gosched) when it finds
// nothing, so that three spinners fit GOMAXPROCS=2 without waiting for
// the Go scheduler's 10 ms preemption; on a 2-core host they share cores,
// which the hop (two cross-goroutine transfers) pays for more than the
// direct path (one).
// Run it on an otherwise idle host with a few thousand records
// (-benchtime=20000x).
func BenchmarkHop(b *testing.B) {
	e := newEnv(b)
	startDaemon(b, e)
	c := connect(b, e.socket)
	spsc := func(n string) client.TopicConfig { return client.TopicConfig{Name: n, Kind: client.KindSPSC} }
	createTopics(b, c, spsc("direct"), spsc("hop.in"), spsc("hop.out"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	reg := processor.NewRegistry(nil)
	s, _ := builtin.New("stamp")
	reg.Register("stamp", s, processor.StageOptions{})
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "hop.in", Outputs: []string{"hop.out"}, Stages: reg, Wait: client.WaitBusySpin, NoTimestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if n, _ := p.PollOnce(ctx); n == 0 {
				runtime.Gosched()
			}
		}
	}()
	defer func() { cancel(); <-done; p.Close() }()

	type path struct {
		pub *client.Publisher
		sub *client.Subscriber
		lat []int64
	}
	mk := func(in, out string) *path {
		pub, err := c.NewPublisher(ctx, in, client.PublisherOptions{NoTimestamps: true})
		if err != nil {
			b.Fatal(err)
		}
		sub, err := c.Subscribe(ctx, out, client.SubscribeOptions{Wait: client.WaitBusySpin})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pub.Close(); sub.Close() })
		return &path{pub: pub, sub: sub, lat: make([]int64, 0, b.N)}
	}
	paths := []*path{mk("direct", "direct"), mk("hop.in", "hop.out")}
	// The receiver goroutine polls the active path's subscriber and acks
	// each record; the sender keeps one record in flight.
	var active atomic.Pointer[path]
	var acks atomic.Int64
	var stopRecv atomic.Bool
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		var sentAt int64
		onMsg := func(m *client.Message) { sentAt = int64(binary.LittleEndian.Uint64(m.Payload)) }
		for !stopRecv.Load() {
			pt := active.Load()
			if pt == nil {
				runtime.Gosched()
				continue
			}
			n, err := pt.sub.Poll(onMsg, 1)
			if err != nil {
				panic(err)
			}
			if n == 1 {
				pt.lat = append(pt.lat, client.MonotonicNS()-sentAt)
				acks.Add(1)
			} else {
				runtime.Gosched()
			}
		}
	}()
	defer func() { stopRecv.Store(true); <-recvDone }()
	payload := make([]byte, 32)
	sent := int64(0)
	run := func(pt *path, n int) {
		active.Store(pt)
		for range n {
			binary.LittleEndian.PutUint64(payload, uint64(client.MonotonicNS()))
			for pt.pub.TryPublish(client.Message{Payload: payload}) != nil {
			}
			sent++
			for acks.Load() != sent {
				runtime.Gosched()
			}
		}
	}
	for _, pt := range paths { // warm up
		run(pt, 1000)
	}
	active.Store(nil)
	for _, pt := range paths {
		pt.lat = pt.lat[:0] // the receiver is idle: no record in flight
	}
	b.ReportAllocs()
	b.ResetTimer()
	const round = 256
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for _, pt := range paths {
			run(pt, n)
		}
	}
	b.StopTimer()
	active.Store(nil)
	pct := func(l []int64, q float64) float64 {
		s := slices.Clone(l)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))])
	}
	d50, h50 := pct(paths[0].lat, 0.5), pct(paths[1].lat, 0.5)
	b.ReportMetric(d50, "direct-p50-ns")
	b.ReportMetric(pct(paths[0].lat, 0.99), "direct-p99-ns")
	b.ReportMetric(h50, "hop-p50-ns")
	b.ReportMetric(pct(paths[1].lat, 0.99), "hop-p99-ns")
	b.ReportMetric(h50/d50, "hop/direct-p50")
	if st := p.Stats(); st.Failed != 0 {
		b.Fatalf("pipeline failed records: %+v", st)
	}
}

// BenchmarkThroughput compares the rate of 64-byte records through a
// no-op processor (input ring -> pass-through stage -> output ring) with a
// direct SPSC ring, interleaved: rounds of 4096 records per path, the
// sender publishing as fast as the ring takes them (TryPublish, retrying
// when back-pressured) and a receiver goroutine draining in batches. Each
// spinning goroutine yields when it finds nothing (three spinners on
// GOMAXPROCS=2). Reported: records per second of each path (medians over
// rounds) and their ratio. b.N records go through each path.
func BenchmarkThroughput(b *testing.B) {
	e := newEnv(b)
	startDaemon(b, e)
	c := connect(b, e.socket)
	spsc := func(n string) client.TopicConfig { return client.TopicConfig{Name: n, Kind: client.KindSPSC} }
	createTopics(b, c, spsc("t.direct"), spsc("t.in"), spsc("t.out"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := processor.NewRegistry(nil)
	reg.Register("pass", &passthrough{}, processor.StageOptions{})
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "t.in", Outputs: []string{"t.out"}, Stages: reg, Batch: 256, NoTimestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		for ctx.Err() == nil {
			if n, _ := p.PollOnce(ctx); n == 0 {
				runtime.Gosched()
			}
		}
	}()
	defer func() { cancel(); <-pdone; p.Close() }()

	type path struct {
		pub   *client.Publisher
		sub   *client.Subscriber
		rates []float64
	}
	mk := func(in, out string) *path {
		pub, err := c.NewPublisher(ctx, in, client.PublisherOptions{NoTimestamps: true})
		if err != nil {
			b.Fatal(err)
		}
		sub, err := c.Subscribe(ctx, out, client.SubscribeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pub.Close(); sub.Close() })
		return &path{pub: pub, sub: sub}
	}
	paths := []*path{mk("t.direct", "t.direct"), mk("t.in", "t.out")}
	var received atomic.Int64
	var active atomic.Pointer[path]
	var stopRecv atomic.Bool
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		count := func(*client.Message) {}
		for !stopRecv.Load() {
			pt := active.Load()
			if pt == nil {
				runtime.Gosched()
				continue
			}
			n, err := pt.sub.Poll(count, 256)
			if err != nil {
				panic(err)
			}
			if n == 0 {
				runtime.Gosched()
			}
			received.Add(int64(n))
		}
	}()
	defer func() { stopRecv.Store(true); <-recvDone }()
	msg := client.Message{Payload: make([]byte, 64)}
	run := func(pt *path, n int) {
		active.Store(pt)
		start := client.MonotonicNS()
		base := received.Load()
		for range n {
			for pt.pub.TryPublish(msg) != nil {
				runtime.Gosched()
			}
		}
		for received.Load()-base < int64(n) {
			runtime.Gosched()
		}
		pt.rates = append(pt.rates, float64(n)/(float64(client.MonotonicNS()-start)/1e9))
		active.Store(nil)
	}
	for _, pt := range paths {
		run(pt, 4096) // warm up
		pt.rates = pt.rates[:0]
	}
	b.ReportAllocs()
	b.ResetTimer()
	const round = 4096
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for _, pt := range paths {
			run(pt, n)
		}
	}
	b.StopTimer()
	med := func(r []float64) float64 {
		s := slices.Clone(r)
		slices.Sort(s)
		return s[len(s)/2]
	}
	d, h := med(paths[0].rates), med(paths[1].rates)
	b.ReportMetric(d, "direct-rec/s")
	b.ReportMetric(h, "noop-proc-rec/s")
	b.ReportMetric(h/d, "proc/direct")
}
