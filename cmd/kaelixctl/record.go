package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/recfile"
)

// RecordCmd is `kaelixctl record TOPIC -o FILE`: subscribes and appends
// every record (payload, headers, partition, sequence, publish and receive
// timestamps) to FILE in the recfile format (package recfile, version 1),
// until --count, --for or Ctrl-C. The file is a stream of frames appended
// in order and flushed whenever no record is waiting, so a crash leaves a
// complete prefix and at most one torn frame, which replay skips.
type RecordCmd struct {
	Topic  string `arg:"" help:"Topic to record." predictor:"topic"`
	Output string `name:"output" required:"" help:"File to write (- for stdout); an existing file is replaced. After record, -o means --output (a recording has no text or JSON form)." placeholder:"FILE"`
	consumeOpts
}

// Run records.
func (cmd *RecordCmd) Run(g *Globals) error {
	var out io.Writer = g.stdout
	var f *os.File
	if cmd.Output != "-" {
		var err error
		if f, err = os.Create(cmd.Output); err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	w, err := recfile.NewWriter(bw, time.Now().UnixNano())
	if err != nil {
		return err
	}
	var scratch recfile.Record
	n, lost, err := cmd.consume(g, cmd.Topic, 0, func(m *client.Message) error {
		scratch = recfile.Record{Partition: m.Partition, Sequence: m.ID.Sequence, TimestampNS: m.TimestampNS,
			ReceivedNS: client.MonotonicNS(), Key: m.Key, Headers: m.Headers, Payload: m.Payload}
		return w.Write(scratch)
	}, bw.Flush)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	fmt.Fprintf(g.stderr, "recorded %d records (%d bytes) from %s to %s\n", n, w.Offset(), cmd.Topic, cmd.Output)
	if lost > 0 {
		fmt.Fprintf(g.stderr, "lost %d records (overrun under drop-oldest)\n", lost)
	}
	return err
}

// recordArgs rewrites "-o" after the record verb to "--output", so that
// `kaelixctl record TOPIC -o FILE` works although -o is the global
// --format elsewhere.
func recordArgs(args []string) []string {
	verb := -1
	for i, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			if i > 0 && (args[i-1] == "--socket" || args[i-1] == "-o" || args[i-1] == "--format" || args[i-1] == "--timeout") {
				continue // a global flag's value
			}
			if a == "record" {
				verb = i
			}
			break
		}
	}
	if verb < 0 {
		return args
	}
	out := append([]string(nil), args...)
	for i := verb + 1; i < len(out); i++ {
		switch {
		case out[i] == "--":
			return out
		case out[i] == "-o":
			out[i] = "--output"
		case strings.HasPrefix(out[i], "-o") && !strings.HasPrefix(out[i], "--"):
			out[i] = "--output=" + strings.TrimPrefix(strings.TrimPrefix(out[i], "-o"), "=")
		}
	}
	return out
}

// negativeValues joins a long flag and a following negative number
// ("--node", "-1") into "--node=-1": the parser would otherwise take "-1"
// for a short flag and say "expected value". Nothing in kaelixctl's
// grammar is a short flag made of digits, and no positional argument is
// a negative number.
func negativeValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "--") && !strings.Contains(a, "=") && i+1 < len(args) {
			if n := args[i+1]; len(n) > 1 && n[0] == '-' && n[1] >= '0' && n[1] <= '9' {
				out = append(out, a+"="+n)
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
