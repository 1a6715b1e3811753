package bridge_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kaelix-io/kaelix/bridge"
	"github.com/kaelix-io/kaelix/client"
)

// BenchmarkBridge carries b.N records of 64 B from host A's topic through
// an outbound rule, an embedded nats-server and an inbound rule into host
// B's topic, in both modes, and reports records/s end to end (set-up
// excluded). Out and In alone: the outbound rule with a plain NATS
// subscriber as the sink, and a plain NATS publisher with the inbound
// rule. Profile one with e.g.
//
//	go test -run '^$' -bench 'Bridge/core' -benchtime 200000x -cpuprofile cpu.out ./bridge/
//
// These are for finding where the time goes; the comparison with nats.go
// alone is kaelix-bench's (transports nats,kaelix-nats).
func BenchmarkBridge(b *testing.B) {
	b.Run("nats", benchNATS)
	for _, mode := range []string{bridge.Core, bridge.JetStream} {
		b.Run(mode, func(b *testing.B) { benchPath(b, mode, true, true) })
		b.Run(mode+".out", func(b *testing.B) { benchPath(b, mode, true, false) })
		b.Run(mode+".in", func(b *testing.B) { benchPath(b, mode, false, true) })
	}
}

// benchPath runs the outbound rule (or a NATS publisher) and the inbound
// rule (or a NATS subscriber) and times b.N records through them.
func benchPath(b *testing.B, mode string, out, in bool) {
	ns := startNATS(b)
	a, h := startHost(b, "hosta"), startHost(b, "hostb")
	const topic = "bench.feed"
	a.topic(b, topic, "block", 4<<20)
	h.topic(b, topic, "block", 4<<20)
	ctx := context.Background()
	subject := "kaelix.hosta." + topic + ".{partition}"
	nc := natsConn(b, ns.url())
	var ob, ib *bridge.Bridge
	if in {
		ib = runBridge(b, bridgeConfig(h, ns.url(), b.TempDir(), bridge.Rule{Name: "in", Direction: bridge.In, Topic: topic, Mode: mode, Subject: "kaelix.hosta." + topic + ".*"}))
		waitRunning(b, ib, "in")
	}
	if out {
		ob = runBridge(b, bridgeConfig(a, ns.url(), b.TempDir(), bridge.Rule{Name: "out", Direction: bridge.Out, Topic: topic, Mode: mode, Subject: subject}))
		waitRunning(b, ob, "out")
	}
	// The sink: host B's topic, or a NATS subscription on the subject
	// (a consumer of the rule's stream in JetStream mode would count
	// acknowledged messages instead; the plain subscription sees what
	// the outbound rule published, which the stream also receives).
	var received atomic.Int64
	var sinkStop func()
	if in {
		sub, err := h.c.Subscribe(ctx, topic, client.SubscribeOptions{Wait: client.WaitBackoff})
		if err != nil {
			b.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer sub.Close()
			for sctx.Err() == nil {
				n, err := sub.PollWait(sctx, func(*client.Message) {}, 256)
				if err != nil {
					break
				}
				received.Add(int64(n))
			}
		}()
		sinkStop = func() { cancel(); <-done }
	} else {
		sub, err := nc.Subscribe("kaelix.hosta."+topic+".*", func(*nats.Msg) { received.Add(1) })
		if err != nil {
			b.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		nc.Flush()
		sinkStop = func() { sub.Unsubscribe() }
	}
	defer sinkStop()
	if in && mode == bridge.Core {
		time.Sleep(200 * time.Millisecond) // the inbound subscription reaches the server
	}
	var js nats.JetStreamContext
	if !out && mode == bridge.JetStream {
		var err error
		if js, err = nc.JetStream(nats.PublishAsyncMaxPending(1024)); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 64)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if out {
		pub, err := a.c.NewPublisher(ctx, topic, client.PublisherOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			if err := pub.Publish(ctx, client.Message{Payload: data, Partition: i % 2}); err != nil {
				b.Fatal(err)
			}
		}
		pub.Close()
	} else {
		// A plain NATS publisher standing in for the far bridge: the
		// Kaelix identity headers, one subject per partition.
		for i := 0; i < b.N; i++ {
			p := strconv.Itoa(i % 2)
			rec := bridge.Record{Host: "hosta", Topic: topic, Partition: i % 2, Sequence: uint64(i / 2), TimestampNS: 1}
			m := &nats.Msg{Subject: "kaelix.hosta." + topic + "." + p, Data: data, Header: nats.Header{
				bridge.HdrRecord: {rec.String()},
			}}
			if mode == bridge.JetStream {
				m.Header[bridge.HdrMsgID] = []string{"hosta/" + topic + "/" + p + "/" + strconv.Itoa(i/2)}
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			} else if err := nc.PublishMsg(m); err != nil {
				b.Fatal(err)
			}
		}
		nc.Flush()
	}
	// Core NATS has no flow control: the inbound side may drop (nats.go's
	// pending limit) when it is the slower; those count as arrived here
	// and are reported.
	var dropped uint64
	deadline := time.Now().Add(120 * time.Second)
	for {
		if in && mode == bridge.Core {
			dropped = ruleStatus(ib, "in").Dropped
		}
		if received.Load()+int64(dropped) >= int64(b.N) {
			break
		}
		if time.Now().After(deadline) {
			var st []bridge.RuleStatus
			for _, br := range []*bridge.Bridge{ob, ib} {
				if br != nil {
					st = append(st, br.Status().Rules...)
				}
			}
			b.Fatalf("%d of %d records arrived in 120s: %+v", received.Load(), b.N, st)
		}
		time.Sleep(time.Millisecond)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	reportPath(b, el, cpu)
	if dropped > 0 {
		b.ReportMetric(float64(dropped), "dropped")
	}
}

// reportPath reports records/s over the wall time and the process's CPU
// time per record (user+system, every goroutine: publisher, bridges,
// embedded server, sink): on a shared machine the second is the steadier.
func reportPath(b *testing.B, wall, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/wall.Seconds(), "rec/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/rec")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNATS is the baseline in the same harness: nats.go alone, one
// connection publishing b.N records of 64 B without headers, one
// subscription on another connection counting them.
func benchNATS(b *testing.B) {
	ns := startNATS(b)
	pc, sc := natsConn(b, ns.url()), natsConn(b, ns.url())
	var received atomic.Int64
	sub, err := sc.Subscribe("bench", func(*nats.Msg) { received.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(-1, -1)
	sc.Flush()
	data := make([]byte, 64)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if err := pc.Publish("bench", data); err != nil {
			b.Fatal(err)
		}
	}
	pc.Flush()
	for received.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	reportPath(b, el, cpu)
}
