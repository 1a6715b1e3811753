package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kaelix-io/kaelix/client"
)

// SubCmd is `kaelixctl sub TOPIC`.
//
// Text output is one line per record:
//
//	ID  TIME  [k=v ...]  PAYLOAD
//
// where ID is partition:sequence and TIME the publish time (local wall
// clock, converted from the record's CLOCK_MONOTONIC stamp). A payload that
// is not printable UTF-8 on one line is shown Go-quoted. --raw prints the
// payloads alone, one per line. --format json prints one Record object per
// line. Output is flushed whenever no more records are ready, so a pipe
// sees each record promptly.
//
// sub exits after --count records, on SIGINT/SIGTERM (exit 0), when
// --timeout expires (exit 1 if --count records had not arrived, else 0),
// or when kaelixd evicts it for holding the publishers of a block or
// reject topic back (daemon.evict_stalled_after: it was stopped, or its
// output blocked, that long), which it reports on stderr (exit 7).
type SubCmd struct {
	Topic   string        `arg:"" help:"Topic to subscribe to." predictor:"topic"`
	From    string        `help:"Where to start: latest (only new messages) or oldest (the oldest still held)." enum:"latest,oldest" default:"latest"`
	Count   int           `short:"n" help:"Exit after this many records (0: run until interrupted)." placeholder:"N"`
	Group   string        `help:"Join this queue group (mpmc): its members share the messages." placeholder:"NAME"`
	Wait    string        `help:"Wait strategy when idle: backoff, blocking, yield or busy-spin." enum:"backoff,blocking,yield,busy-spin" default:"backoff"`
	Timeout time.Duration `name:"for" help:"Stop after this long (with --count: fail if fewer records came)." placeholder:"DURATION"`
	Raw     bool          `help:"Print only the payloads, one per line."`
}

// Record is one line of `sub --format json`.
type Record struct {
	ID        string `json:"id"` // "partition:sequence"
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Sequence  uint64 `json:"sequence"`
	// TimestampNS is the publisher's CLOCK_MONOTONIC ns (0: none); Time is
	// the same instant as local wall-clock time, RFC 3339.
	TimestampNS int64             `json:"timestamp_ns"`
	Time        string            `json:"time,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	// Key is the message key (absent: none) when it is valid UTF-8;
	// otherwise KeyBase64 holds it (standard encoding).
	Key       *string `json:"key,omitempty"`
	KeyBase64 string  `json:"key_base64,omitempty"`
	// Payload is the payload when it is valid UTF-8; otherwise it is
	// absent and PayloadBase64 holds it (standard encoding).
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 string  `json:"payload_base64,omitempty"`
}

// Run subscribes and prints.
func (cmd *SubCmd) Run(g *Globals) error {
	if err := client.ValidateTopicName(cmd.Topic); err != nil {
		return err
	}
	c, err := g.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	opts := client.SubscribeOptions{Group: cmd.Group, Wait: waitOf(cmd.Wait)}
	if cmd.From == "oldest" {
		opts.From = client.FromOldest
	}
	actx, cancel := g.reqCtx()
	sub, err := c.Subscribe(actx, cmd.Topic, opts)
	cancel()
	if err != nil {
		return err
	}
	defer sub.Close()

	ctx := g.ctx
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	p := &printer{w: bufio.NewWriterSize(g.stdout, 64<<10), json: g.json(), raw: cmd.Raw,
		wallOffsetNS: time.Now().UnixNano() - client.MonotonicNS()}
	defer p.w.Flush()
	n := 0
	for cmd.Count == 0 || n < cmd.Count {
		limit := 256
		if cmd.Count > 0 {
			limit = min(limit, cmd.Count-n)
		}
		got, err := sub.Poll(p.print, limit)
		n += got
		if p.err != nil {
			return p.err
		}
		if errors.Is(err, client.ErrEvicted) { // even after records: this partition gives no more
			return err
		}
		if got > 0 || errors.Is(err, client.ErrLapped) || errors.Is(err, client.ErrStalled) {
			continue
		}
		if err != nil {
			return err
		}
		// Nothing ready: flush what was printed, then wait for one.
		if err := p.w.Flush(); err != nil {
			return err
		}
		m, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil && g.ctx.Err() == nil && cmd.Timeout > 0 {
				if cmd.Count > 0 {
					return fmt.Errorf("timed out after %v: received %d of %d records", cmd.Timeout, n, cmd.Count)
				}
				break
			}
			if g.interrupted(err) {
				break
			}
			return err
		}
		p.print(&m)
		n++
	}
	if lost := sub.Lost(); lost > 0 {
		fmt.Fprintf(g.stderr, "lost %d messages (overrun under drop-oldest)\n", lost)
	}
	if err := p.w.Flush(); err != nil {
		return err
	}
	return p.err
}

// waitOf maps a --wait name to the client's strategy.
func waitOf(s string) client.WaitStrategy {
	switch s {
	case "blocking":
		return client.WaitBlocking
	case "yield":
		return client.WaitYield
	case "busy-spin":
		return client.WaitBusySpin
	}
	return client.WaitBackoff
}

// printer formats records onto w; its first write error sticks in err.
type printer struct {
	w            *bufio.Writer
	json, raw    bool
	wallOffsetNS int64 // unix ns minus CLOCK_MONOTONIC ns, measured at start
	err          error
	scratch      []byte
}

// print formats one record. m is only valid during the call (Poll's view).
func (p *printer) print(m *client.Message) {
	if p.err != nil {
		return
	}
	switch {
	case p.raw:
		p.w.Write(m.Payload)
		p.err = p.w.WriteByte('\n')
	case p.json:
		r := Record{
			ID: m.ID.String(), Topic: m.Topic, Partition: m.Partition, Sequence: m.ID.Sequence,
			TimestampNS: m.TimestampNS, Headers: m.Headers,
		}
		if m.TimestampNS != 0 {
			r.Time = time.Unix(0, m.TimestampNS+p.wallOffsetNS).Format(time.RFC3339Nano)
		}
		if m.Key != nil {
			if utf8.Valid(m.Key) {
				k := string(m.Key)
				r.Key = &k
			} else {
				r.KeyBase64 = base64.StdEncoding.EncodeToString(m.Key)
			}
		}
		if utf8.Valid(m.Payload) {
			s := string(m.Payload)
			r.Payload = &s
		} else {
			r.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
		}
		b, err := json.Marshal(r)
		if err != nil {
			p.err = err
			return
		}
		p.w.Write(b)
		p.err = p.w.WriteByte('\n')
	default:
		b := p.scratch[:0]
		b = append(b, m.ID.String()...)
		b = append(b, "  "...)
		if m.TimestampNS != 0 {
			b = time.Unix(0, m.TimestampNS+p.wallOffsetNS).AppendFormat(b, "15:04:05.000000")
		} else {
			b = append(b, "-"...)
		}
		b = append(b, "  "...)
		if len(m.Headers) > 0 {
			b = append(b, '[')
			for i, k := range slices.Sorted(maps.Keys(m.Headers)) {
				if i > 0 {
					b = append(b, ' ')
				}
				b = append(b, k...)
				b = append(b, '=')
				b = append(b, m.Headers[k]...)
			}
			b = append(b, "]  "...)
		}
		if printable(m.Payload) {
			b = append(b, m.Payload...)
		} else {
			b = strconv.AppendQuote(b, string(m.Payload))
		}
		b = append(b, '\n')
		p.scratch = b
		_, p.err = p.w.Write(b)
	}
}

// printable reports whether b is valid UTF-8 without control characters
// (tab allowed), so it can be printed on one line as is.
func printable(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if r != '\t' && unicode.IsControl(r) {
			return false
		}
		b = b[n:]
	}
	return true
}
