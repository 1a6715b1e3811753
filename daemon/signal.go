package daemon

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// signalTable is kaelixd's one place for signals: signal -> action.
//
//	SIGINT, SIGTERM  stop: cancel Run's context (clean shutdown)
//	SIGHUP           reload the configuration (Reload); a failure is
//	                 logged and counted, and the daemon keeps running
//	SIGUSR1          write every goroutine's stack to stderr (DumpStacks),
//	                 for a daemon that seems stuck or leaks goroutines; it
//	                 keeps running
var signalTable = map[os.Signal]string{
	syscall.SIGINT:  "stop",
	syscall.SIGTERM: "stop",
	syscall.SIGHUP:  "reload",
	syscall.SIGUSR1: "dump",
}

// DumpStacks writes the stacks of all goroutines to stderr, framed by a
// "goroutine dump begins/ends" log line each (with the goroutine count),
// so a reader can cut the dump out of the daemon's log. It pauses the
// program for the time runtime.Stack takes (about a millisecond for a few
// hundred goroutines). Safe to call from any goroutine.
func (d *Daemon) DumpStacks() {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	d.log.Info("goroutine dump begins", "goroutines", runtime.NumGoroutine())
	os.Stderr.Write(buf)
	d.log.Info("goroutine dump ends")
}

// HandleSignals applies the signal table to this process until release is
// called (or ctx ends): stop calls the stop function given, reload calls
// Reload. release undoes signal.Notify and waits for the handling
// goroutine. For kaelixd's main and for programs that want kaelixd's
// signal behaviour; an embedding program with its own signal handling
// calls Reload itself.
func (d *Daemon) HandleSignals(ctx context.Context, stop func()) (release func()) {
	ch := make(chan os.Signal, 4)
	sigs := make([]os.Signal, 0, len(signalTable))
	for s := range signalTable {
		sigs = append(sigs, s)
	}
	signal.Notify(ch, sigs...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				switch signalTable[s] {
				case "stop":
					d.log.Info("signal: stopping", "signal", s.String())
					stop()
				case "reload":
					d.log.Info("signal: reloading the configuration", "signal", s.String())
					d.reload("signal", false)
				case "dump":
					d.DumpStacks()
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}
