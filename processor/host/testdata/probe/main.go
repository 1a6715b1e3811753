// Command probe is a kaelixd command processor for the daemon's limit
// tests (daemon/processors_test.go). It waits for the start gate, runs one
// probe, writes what it saw to the file its last argument names (written
// whole, then renamed into place), then, if kaelixd gave it an input
// topic, runs a pipeline (a stamp stage) from it to its outputs and keeps
// the counters region kaelixd gave it (host.ExportStats), until SIGTERM.
//
//	probe fds RESULT        open /dev/null until an error: "opened N: ERRNO"
//	probe connect ADDR RESULT  dial tcp ADDR: "connected" or "error: ..."
//	probe spin RESULT       busy-loop on every CPU ("spinning") forever
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/supervise"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
	"github.com/kaelix-io/kaelix/processor/host"
)

func main() {
	if err := supervise.WaitGate(); err != nil {
		fmt.Fprintln(os.Stderr, "gate:", err)
		os.Exit(1)
	}
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: probe fds|connect ADDR|spin RESULT")
		os.Exit(2)
	}
	result := os.Args[len(os.Args)-1]
	switch os.Args[1] {
	case "fds":
		var fds []int
		var err error
		for {
			var fd int
			if fd, err = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				break
			}
			fds = append(fds, fd)
		}
		name := err.Error()
		if errors.Is(err, unix.EMFILE) {
			name = "EMFILE"
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		write(result, fmt.Sprintf("opened %d: %s", len(fds), name))
	case "connect":
		c, err := net.DialTimeout("tcp", os.Args[2], 5*time.Second)
		if err != nil {
			write(result, "error: "+err.Error())
		} else {
			c.Close()
			write(result, "connected")
		}
	case "spin":
		for range runtime.GOMAXPROCS(0) {
			go func() {
				for {
				}
			}()
		}
		write(result, "spinning")
	default:
		fmt.Fprintln(os.Stderr, "unknown probe", os.Args[1])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if os.Getenv("KAELIX_INPUT") == "" {
		<-ctx.Done()
		return
	}
	if err := pipeline(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// pipeline runs KAELIX_INPUT -> stamp -> KAELIX_OUTPUTS and exports its
// counts to KAELIX_COUNTERS until ctx is done.
func pipeline(ctx context.Context) error {
	c, err := client.Connect(ctx, client.Options{SocketPath: os.Getenv("KAELIX_SOCKET")})
	if err != nil {
		return err
	}
	defer c.Close()
	reg := processor.NewRegistry(nil)
	s, err := builtin.New("stamp")
	if err != nil {
		return err
	}
	if err := reg.Register("stamp", s, processor.StageOptions{}); err != nil {
		return err
	}
	var outs []string
	if o := os.Getenv("KAELIX_OUTPUTS"); o != "" {
		outs = strings.Split(o, ",")
	}
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Name: os.Getenv("KAELIX_PROCESSOR"),
		Input: os.Getenv("KAELIX_INPUT"), Group: os.Getenv("KAELIX_GROUP"), Outputs: outs, Stages: reg})
	if err != nil {
		return err
	}
	defer p.Close()
	exported := make(chan error, 1)
	go func() {
		exported <- host.ExportStats(ctx, os.Getenv(host.CountersEnv), func() []processor.Stats { return []processor.Stats{p.Stats()} })
	}()
	if err := p.Run(ctx); err != nil {
		return err
	}
	return <-exported
}

func write(path, s string) {
	if err := os.WriteFile(path+".tmp", []byte(s), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
