package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/recfile"
)

// ReplayCmd is `kaelixctl replay FILE --topic T`: publishes a recording
// made by `kaelixctl record` to topic T, each record to its recorded
// partition (or --partition) with its headers and payload. At --speed 1x
// the records keep their recorded spacing (from their publish timestamps,
// else their receive timestamps; records less than 100 µs apart go out
// together, at most that early), 2x halves it, max publishes as fast as
// the topic takes them. Pacing runs from the first record replayed, so a
// late wake-up delays the records due meanwhile and does not add up. --from and --to select by time since the first
// record. A torn tail (the recorder crashed) is skipped and reported; a
// corrupt frame stops the replay with its offset (exit 5), after the
// records before it.
type ReplayCmd struct {
	File      string        `arg:"" help:"Recording to replay (- for stdin)." type:"existingfile"`
	Topic     string        `required:"" help:"Topic to publish to." predictor:"topic"`
	Speed     speed         `help:"1x keeps the recorded spacing, 2x halves it, 0.5x doubles it; max: no pacing." default:"1x"`
	From      time.Duration `help:"Skip records earlier than this, from the first record's time." placeholder:"D"`
	To        time.Duration `help:"Stop at records later than this, from the first record's time (0: the end)." placeholder:"D"`
	Partition int           `help:"Publish every record to this partition (-1: each to its recorded one)." default:"-1"`
	Quiet     bool          `short:"q" help:"Do not print the summary on stderr."`
}

// replayCoalesce: records due sooner than this are published without
// waiting, so --speed 1x sends a record at most this early and keeps
// every spacing longer than it.
const replayCoalesce = 100 * time.Microsecond

// speed is a --speed value: a factor, 0 for max.
type speed float64

// UnmarshalText parses "1x", "2x", "0.5x", "1", "max".
func (s *speed) UnmarshalText(text []byte) error {
	t := strings.TrimSpace(strings.ToLower(string(text)))
	if t == "max" {
		*s = 0
		return nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "x"), 64)
	if err != nil || v <= 0 || v > 1e6 {
		return fmt.Errorf("%q is not a speed (want 1x, 2x, 0.5x or max)", text)
	}
	*s = speed(v)
	return nil
}

// Run replays.
func (cmd *ReplayCmd) Run(g *Globals) error {
	if err := client.ValidateTopicName(cmd.Topic); err != nil {
		return err
	}
	var in io.Reader = g.stdin
	if cmd.File != "-" {
		f, err := os.Open(cmd.File)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	rd, err := recfile.NewReader(bufio.NewReaderSize(in, 256<<10))
	if err != nil {
		return invalidf("%s: %v", cmd.File, err)
	}
	pub, done, err := g.publisher(cmd.Topic)
	if err != nil {
		return err
	}
	defer done()

	var (
		n, skipped int
		keyless    int   // records whose key was not sent: it routes elsewhere
		first      int64 // recorded time of the first record, ns
		started    time.Time
		base       time.Duration // rel of the first record replayed
		haveFirst  bool
		timer      *time.Timer
	)
	for {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, recfile.ErrCorrupt) {
				return invalidf("%s: %v (published the %d records before it)", cmd.File, err, n)
			}
			return err
		}
		at := r.TimestampNS
		if at == 0 {
			at = r.ReceivedNS
		}
		if !haveFirst {
			first, haveFirst = at, true
		}
		rel := time.Duration(at - first)
		if rel < cmd.From {
			skipped++
			continue
		}
		if cmd.To > 0 && rel > cmd.To {
			break
		}
		if started.IsZero() {
			started, base = time.Now(), rel // the first record replayed goes out at once
		}
		if cmd.Speed > 0 {
			due := started.Add(time.Duration(float64(rel-base) / float64(cmd.Speed)))
			// A record due within replayCoalesce goes out now: a sleep that
			// short overshoots anyway (timer and scheduler latency), and one
			// per record costs more than the publish, so a dense recording
			// would fall behind on a busy host.
			if d := time.Until(due); d > replayCoalesce {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-g.ctx.Done():
					return cmd.summary(g, n, skipped, keyless, rd)
				case <-timer.C:
				}
			}
		}
		part := r.Partition
		if cmd.Partition >= 0 {
			part = cmd.Partition
		}
		if part >= pub.Partitions() {
			return invalidf("record %d is for partition %d, topic %q has %d partitions (use --partition)", n+skipped, part, cmd.Topic, pub.Partitions())
		}
		// The recorded partition wins: a key goes along when it routes
		// there (same partition count, no --partition), else it is not sent.
		m := client.Message{Partition: part, Headers: r.Headers, Payload: r.Payload}
		if r.Key != nil {
			if client.PartitionOf(r.Key, pub.Partitions()) == part {
				m.Key = r.Key
			} else {
				keyless++
			}
		}
		if err := pub.Publish(g.ctx, m); err != nil {
			if g.interrupted(err) {
				break
			}
			return err
		}
		n++
	}
	return cmd.summary(g, n, skipped, keyless, rd)
}

func (cmd *ReplayCmd) summary(g *Globals, n, skipped, keyless int, rd *recfile.Reader) error {
	if cmd.Quiet {
		return nil
	}
	fmt.Fprintf(g.stderr, "replayed %d records to %s", n, cmd.Topic)
	if skipped > 0 {
		fmt.Fprintf(g.stderr, " (%d before --from skipped)", skipped)
	}
	fmt.Fprintln(g.stderr)
	if keyless > 0 {
		fmt.Fprintf(g.stderr, "%d records went without their key: it routes to another partition of %s than the one replayed into\n", keyless, cmd.Topic)
	}
	if t := rd.Torn(); t > 0 {
		fmt.Fprintf(g.stderr, "the recording ends in a torn frame (%d bytes, the recorder stopped mid-write): skipped\n", t)
	}
	return nil
}
