package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/bytesize"
)

// SubCmd prints the samples: one line per --every (the latest sample, how
// many arrived since the previous line, and the worst publish-to-receive
// latency among them), or every sample with --every 0.
//
// With --metrics-addr it serves /metrics there (Prometheus text format):
// kaelix_telemetry_receive_latency_seconds, a histogram of every sample's
// publish-to-receive latency (from its CLOCK_MONOTONIC publish timestamp),
// and kaelix_telemetry_received_total.
type SubCmd struct {
	Every       time.Duration `help:"Print at most one line per interval (0: every sample)." default:"250ms"`
	Count       int           `short:"n" help:"Exit after this many samples (0: until interrupted)."`
	MetricsAddr string        `name:"metrics-addr" help:"Serve /metrics (the latency histogram) on this address, e.g. 127.0.0.1:9464 (:0 picks a port, printed at start)." placeholder:"HOST:PORT"`
}

// subscribe connects and subscribes to --topic with the blocking wait
// strategy, waiting for the topic if its publisher has not created it
// yet. A nil Subscriber with a nil error: interrupted meanwhile. The
// caller closes both.
func (g *Globals) subscribe() (*client.Client, *client.Subscriber, error) {
	c, err := g.connect()
	if err != nil {
		return nil, nil, err
	}
	for {
		sub, err := c.Subscribe(g.ctx, g.Topic, client.SubscribeOptions{Wait: client.WaitBlocking})
		if err == nil {
			return c, sub, nil
		}
		if !errIsNotFound(err) {
			c.Close()
			return nil, nil, err
		}
		select {
		case <-g.ctx.Done():
			c.Close()
			return nil, nil, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Run subscribes and prints until --count or a signal.
func (cmd *SubCmd) Run(g *Globals) error {
	c, sub, err := g.subscribe()
	if err != nil || sub == nil {
		return err
	}
	defer c.Close()
	defer sub.Close()
	fmt.Fprintf(g.stdout, "kaelix-telemetry: subscribed to %s\n", g.Topic)
	lat := newLatencyMetrics()
	if cmd.MetricsAddr != "" {
		addr, stop, err := lat.serve(cmd.MetricsAddr)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(g.stdout, "kaelix-telemetry: metrics on http://%s/metrics\n", addr)
	}
	var (
		last     time.Time
		since    int
		worstLat time.Duration
	)
	for n := 0; cmd.Count == 0 || n < cmd.Count; n++ {
		m, err := sub.Receive(g.ctx)
		if err != nil {
			if g.ctx.Err() != nil {
				return nil
			}
			return err
		}
		since++
		if m.TimestampNS != 0 {
			l := time.Duration(client.MonotonicNS() - m.TimestampNS)
			worstLat = max(worstLat, l)
			lat.observe(l)
		}
		lat.received.Inc()
		if cmd.Every > 0 && time.Since(last) < cmd.Every && (cmd.Count == 0 || n+1 < cmd.Count) {
			continue
		}
		var s Sample
		var line string
		if err := json.Unmarshal(m.Payload, &s); err != nil || m.Headers[headerKind] != kindSample {
			line = fmt.Sprintf("%s  (not a sample: kind=%q, %d bytes)", m.ID, m.Headers[headerKind], len(m.Payload))
		} else {
			line = formatSample(s, m.ID, since, worstLat)
		}
		if _, err := fmt.Fprintln(g.stdout, line); err != nil {
			return err // stdout closed: nobody is watching
		}
		last, since, worstLat = time.Now(), 0, 0
	}
	return nil
}

func errIsNotFound(err error) bool {
	return errors.Is(err, client.ErrTopicNotFound)
}

// formatSample renders one line: time, host, CPU, memory, network, disk,
// and the record's id, the samples it stands for and their worst latency.
func formatSample(s Sample, id client.MessageID, n int, lat time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s  cpu %5.1f%% (usr %4.1f sys %4.1f io %4.1f) load %.2f", time.Unix(0, s.TimeNS).Format("15:04:05.000"), s.Host,
		s.CPU.BusyPct, s.CPU.UserPct, s.CPU.SystemPct, s.CPU.IOWaitPct, s.CPU.Load1)
	fmt.Fprintf(&b, " | mem %s/%s %4.1f%%", humanBytes(float64(s.Mem.TotalBytes-min(s.Mem.AvailableBytes, s.Mem.TotalBytes))), humanBytes(float64(s.Mem.TotalBytes)), s.Mem.UsedPct)
	fmt.Fprintf(&b, " | net rx %s/s tx %s/s", humanBytes(s.Net.RxBytesPerSec), humanBytes(s.Net.TxBytesPerSec))
	fmt.Fprintf(&b, " | disk r %s/s w %s/s", humanBytes(s.Disk.ReadBytesPerSec), humanBytes(s.Disk.WriteBytesPerSec))
	fmt.Fprintf(&b, " | #%s +%d lat %v", id, n, lat.Round(time.Microsecond))
	return b.String()
}

// humanBytes renders a byte count (or rate) with a binary unit, one
// decimal (bytesize.Human).
func humanBytes(v float64) string {
	return bytesize.Human(uint64(max(v, 0)))
}
