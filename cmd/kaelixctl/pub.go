package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
)

// PubCmd is `kaelixctl pub TOPIC [MSG...]`.
//
// Messages come from the arguments; else from --file (a path, or - for
// stdin); else from stdin, one message per line (the newline, and a
// carriage return before it, removed). Each line is published as soon as
// it is read, so `tail -f app.log | kaelixctl pub logs.app` streams live;
// pub exits at end of input, after --count messages, or on SIGINT/SIGTERM
// (exit 0). With arguments and --count N, the arguments are published in
// turn until N messages went out.
//
// Under policy block, pub waits while the slowest subscriber lags a full
// ring behind; after a second of waiting it prints on stderr who holds it
// back (the subscriber's pid, process name, running or stopped, and lag),
// again every 10 s while it stays blocked, and goes on waiting, or fails
// once --block-timeout has passed (exit 10).
//
// A block topic keeps nothing for absent subscribers: pub says so (once,
// unless --quiet) when a message reaches none, and with
// --wait-subscribers N it first waits (at most --wait-timeout, else exit
// 9) until N subscribers are able to receive on the partition it
// publishes to (every partition with --key), so that they get every
// message.
type PubCmd struct {
	Topic     string            `arg:"" help:"Topic to publish to." predictor:"topic"`
	Messages  []string          `arg:"" optional:"" help:"Messages to publish; none: read lines from stdin (or --file)."`
	File      string            `short:"f" help:"Read messages from this file, one per line (- for stdin)." placeholder:"PATH"`
	Rate      rate              `help:"Publish at most this many messages per second (e.g. 100 or 100/s; 0: unlimited)." placeholder:"N/s"`
	Count     int               `short:"n" help:"Stop after this many messages (0: all input; with arguments and --count N, repeat them; with arguments and --rate, repeat them until Ctrl-C)." placeholder:"N"`
	Header    map[string]string `short:"H" mapsep:"none" help:"Header KEY=VALUE added to every message; repeatable." placeholder:"KEY=VALUE"`
	Key       string            `help:"Route every message by the hash of this key (else partition --partition)." placeholder:"KEY"`
	Partition int               `help:"Partition to publish to when no --key is given." default:"0"`
	Quiet     bool              `short:"q" help:"Do not print the summary on stderr."`

	WaitSubscribers int           `help:"Before publishing, wait until this many subscribers can receive (on --partition; with --key on every partition)." placeholder:"N"`
	WaitTimeout     time.Duration `help:"Give up --wait-subscribers after this long (exit 9)." default:"30s"`
	BlockTimeout    time.Duration `help:"Fail (exit 10) once a message has been back-pressured this long; 0: wait as long as it takes." default:"0s"`

	warnedUnheard bool // said once that a message reached no subscriber
}

// blockReportAfter is how long pub waits on back-pressure before it says
// who holds it back; blockReportEvery how often it says it again.
const (
	blockReportAfter = time.Second
	blockReportEvery = 10 * time.Second
)

// rate is a --rate value in messages per second.
type rate float64

// UnmarshalText parses "100", "100/s", "2.5/s".
func (r *rate) UnmarshalText(text []byte) error {
	s := strings.TrimSuffix(strings.TrimSpace(string(text)), "/s")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a rate (want e.g. 100 or 100/s)", text)
	}
	*r = rate(v)
	return nil
}

// Run publishes until the input ends.
func (cmd *PubCmd) Run(g *Globals) error {
	if err := client.ValidateTopicName(cmd.Topic); err != nil {
		return err
	}
	if len(cmd.Messages) > 0 && cmd.File != "" {
		return invalidf("give messages as arguments or with --file, not both")
	}
	pub, done, err := g.publisher(cmd.Topic)
	if err != nil {
		return err
	}
	defer done()
	if cmd.WaitSubscribers > 0 {
		if err := cmd.waitSubscribers(g, pub); err != nil {
			return err
		}
	}

	var opts []client.MessageOption
	if len(cmd.Header) > 0 {
		opts = append(opts, client.WithHeaders(cmd.Header))
	}
	if cmd.Key != "" {
		opts = append(opts, client.WithKey([]byte(cmd.Key)))
	} else {
		opts = append(opts, client.WithPartition(cmd.Partition))
	}

	lines := make(chan []byte)
	readErr := make(chan error, 1)
	switch {
	case len(cmd.Messages) > 0:
		go cmd.repeatArgs(g.ctx, lines)
		readErr <- nil
	default:
		in := g.stdin
		if cmd.File != "" && cmd.File != "-" {
			f, err := os.Open(cmd.File)
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
		go readLines(g.ctx, in, pub.MaxMessageBytes(), lines, readErr, g.stderr)
	}

	var interval time.Duration
	if cmd.Rate > 0 {
		interval = time.Duration(float64(time.Second) / float64(cmd.Rate))
	}
	start := time.Now()
	n := 0
	for cmd.Count == 0 || n < cmd.Count {
		var line []byte
		var ok bool
		select {
		case <-g.ctx.Done():
			return cmd.done(g, n, nil)
		case line, ok = <-lines:
		}
		if !ok {
			if err := <-readErr; err != nil {
				return cmd.done(g, n, fmt.Errorf("read input after %d messages: %w", n, err))
			}
			break
		}
		if interval > 0 {
			if err := sleepUntil(g.ctx, start.Add(time.Duration(n)*interval)); err != nil {
				return cmd.done(g, n, nil)
			}
		}
		if err := cmd.publish(g, pub, client.NewMessage(line, opts...)); err != nil {
			if g.interrupted(err) {
				return cmd.done(g, n, nil)
			}
			return cmd.done(g, n, fmt.Errorf("message %d: %w", n+1, err))
		}
		n++
	}
	return cmd.done(g, n, nil)
}

// errNoSubscribers and errBlocked are --wait-subscribers and
// --block-timeout expiring (exit codes 9 and 10).
var (
	errNoSubscribers = errors.New("not enough subscribers")
	errBlocked       = errors.New("blocked")
)

// waitSubscribers waits for --wait-subscribers subscribers.
func (cmd *PubCmd) waitSubscribers(g *Globals, pub *client.Publisher) error {
	part := cmd.Partition
	if cmd.Key != "" {
		part = -1
	}
	ctx, cancel := context.WithTimeout(g.ctx, cmd.WaitTimeout)
	defer cancel()
	err := pub.WaitSubscribers(ctx, part, cmd.WaitSubscribers)
	if err == nil || g.interrupted(err) {
		return err
	}
	var we *client.WaitSubscribersError
	if errors.As(err, &we) {
		return fmt.Errorf("%w: waited %v for %d subscriber(s) of %s on partition(s) %v, have %v (--wait-subscribers, --wait-timeout)",
			errNoSubscribers, cmd.WaitTimeout, cmd.WaitSubscribers, cmd.Topic, we.Partitions, we.Have)
	}
	return err
}

// publish publishes m, waiting while it is back-pressured: after
// blockReportAfter (then every blockReportEvery) it prints who holds it
// back, and it fails once --block-timeout has passed.
func (cmd *PubCmd) publish(g *Globals, pub *client.Publisher, m client.Message) error {
	err := pub.TryPublish(m)
	if err != client.ErrBackPressured && err != client.ErrNotConnected {
		return err
	}
	if err == client.ErrNotConnected && !cmd.warnedUnheard && !cmd.Quiet {
		cmd.warnedUnheard = true
		where := fmt.Sprintf("partition %d", m.Partition)
		if m.Key != nil {
			where = fmt.Sprintf("the partition of key %q", m.Key)
		}
		fmt.Fprintf(g.stderr, "kaelixctl: no subscriber can receive on %s of %s, a block topic, which keeps nothing for absent subscribers: "+
			"publishing anyway (start sub first, or pass --wait-subscribers N)\n", where, cmd.Topic)
	}
	// Back-pressured, or no subscriber (a block topic keeps nothing for
	// absent ones; Publish publishes anyway, and waits if a joining
	// subscriber holds the ring).
	start := time.Now()
	wait := blockReportAfter
	for {
		if cmd.BlockTimeout > 0 {
			wait = min(wait, cmd.BlockTimeout-time.Since(start))
		}
		ctx, cancel := context.WithTimeout(g.ctx, wait)
		err := pub.Publish(ctx, m)
		cancel()
		var be *client.BlockedError
		if err == nil || g.ctx.Err() != nil || !errors.As(err, &be) {
			return err
		}
		blocked := time.Since(start).Round(100 * time.Millisecond)
		if cmd.BlockTimeout > 0 && time.Since(start) >= cmd.BlockTimeout {
			return fmt.Errorf("%w for %v (--block-timeout): %s", errBlocked, blocked, be.Reason())
		}
		fmt.Fprintf(g.stderr, "kaelixctl: blocked for %v: %s\n", blocked, be.Reason())
		wait = blockReportEvery
	}
}

// done prints the summary (unless --quiet) and returns err.
func (cmd *PubCmd) done(g *Globals, n int, err error) error {
	if !cmd.Quiet {
		s := "s"
		if n == 1 {
			s = ""
		}
		fmt.Fprintf(g.stderr, "published %d message%s to %s\n", n, s, cmd.Topic)
	}
	return err
}

// repeatArgs sends the arguments in turn: once (neither --count nor
// --rate), --count messages, or with --rate and no --count until the
// consumer stops taking them (Ctrl-C), then closes out.
func (cmd *PubCmd) repeatArgs(ctx context.Context, out chan<- []byte) {
	defer close(out)
	for i := 0; cmd.Count > 0 || cmd.Rate > 0 || i < len(cmd.Messages); i++ {
		select {
		case out <- []byte(cmd.Messages[i%len(cmd.Messages)]):
		case <-ctx.Done():
			return
		}
		if cmd.Count > 0 && i+1 >= cmd.Count {
			return
		}
	}
}

// readLines sends each line of r (without its line ending) as soon as it is
// read, then closes out and reports on errc: nil at EOF, the read error, or,
// if some lines were longer than maxBytes, an error counting them. A line
// that is too long is reported on warn and skipped; the lines after it are
// still published, so one long line does not stop a stream like
// `tail -f app.log | kaelixctl pub logs.app`.
func readLines(ctx context.Context, r io.Reader, maxBytes int, out chan<- []byte, errc chan<- error, warn io.Writer) {
	defer close(out)
	br := bufio.NewReaderSize(r, min(maxBytes+2, 64<<10))
	var line []byte
	n, skipped := 0, 0
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxBytes+2 { // keep at most what can be sent
			line = append(line, chunk...)
		} else {
			line = append(line[:0], make([]byte, maxBytes+3)...) // marks "too long"
		}
		if err == bufio.ErrBufferFull {
			continue // the line goes on
		}
		if len(chunk) > 0 || len(line) > 0 {
			n++
			msg := line
			if len(msg) > 0 && msg[len(msg)-1] == '\n' {
				msg = msg[:len(msg)-1]
				if len(msg) > 0 && msg[len(msg)-1] == '\r' {
					msg = msg[:len(msg)-1]
				}
			}
			if len(msg) > maxBytes {
				skipped++
				fmt.Fprintf(warn, "kaelixctl: line %d skipped: longer than the topic's max message of %d bytes\n", n, maxBytes)
			} else {
				select {
				case out <- append([]byte(nil), msg...):
				case <-ctx.Done():
					errc <- nil
					return
				}
			}
			line = line[:0]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			errc <- fmt.Errorf("line %d: %w", n+1, err)
			return
		}
	}
	if skipped > 0 {
		errc <- invalidf("%d line(s) longer than the topic's max message of %d bytes were skipped", skipped, maxBytes)
		return
	}
	errc <- nil
}

// sleepUntil waits until t or ctx is done (then ctx's error).
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
