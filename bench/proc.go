package bench

// Child processes. The parent re-executes its own binary (os.Executable)
// with the hidden argument "__child" and KAELIX_BENCH_CHILD=1 in the
// environment; the child reads one JSON sidePlan line from stdin, opens its
// ends, prints "ready", waits for a "go" line, runs its side pinned to its
// CPU, and prints one JSON sideResult line. Closing its stdin cancels it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// ChildEnv is the environment variable that marks a child process.
const ChildEnv = "KAELIX_BENCH_CHILD"

// ChildArg is the hidden argument children are started with, so that they
// are recognizable in ps.
const ChildArg = "__child"

// IsChild reports whether this process was started by the harness as the
// other side of a run. Programs (and test binaries) that run the harness
// call it first thing and, if true, exit with ChildMain's status.
func IsChild() bool { return os.Getenv(ChildEnv) == "1" }

// ChildMain runs this process as a child: stdin carries the plan, stdout
// the handshake and result. It returns the exit status.
func ChildMain() int {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "kaelix-bench child: no plan:", err)
		return 2
	}
	var p sidePlan
	if err := json.Unmarshal(line, &p); err != nil {
		fmt.Fprintln(os.Stderr, "kaelix-bench child: bad plan:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := &procEnv{ctx: ctx}
	defer env.close()
	fail := func(err error) int {
		b, _ := json.Marshal(sideResult{Err: err.Error()})
		os.Stdout.Write(append(b, '\n'))
		return 1
	}
	s, err := openSide(env, p)
	if err != nil {
		fmt.Println("error")
		return fail(err)
	}
	defer s.close()
	fmt.Println("ready")
	if g, err := in.ReadString('\n'); err != nil || strings.TrimSpace(g) != "go" {
		return fail(fmt.Errorf("bench: child: no go line: %q %v", g, err))
	}
	// The parent closing stdin (or dying) cancels the run.
	go func() {
		io.Copy(io.Discard, in)
		cancel()
	}()
	res, err := s.run()
	if err != nil {
		return fail(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fail(err)
	}
	os.Stdout.Write(append(b, '\n'))
	return 0
}

// peer is the other side of a run: a child process or a goroutine.
type peer interface {
	waitReady() error
	start() error
	result() (sideResult, error)
	kill()
}

type childPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
	waited bool
}

// startChild starts a child for plan p.
func startChild(p sidePlan) (*childPeer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, ChildArg)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	c := &childPeer{cmd: cmd, stderr: &tailBuffer{max: 4096}}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewReaderSize(stdout, 64<<10)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrPeer, exe, err)
	}
	b, _ := json.Marshal(p)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.kill()
		return nil, fmt.Errorf("%w: send plan: %w", ErrPeer, err)
	}
	return c, nil
}

func (c *childPeer) fail(what string, err error) error {
	c.kill()
	return fmt.Errorf("%w: %s: %v; stderr: %s", ErrPeer, what, err, strings.TrimSpace(c.stderr.String()))
}

func (c *childPeer) waitReady() error {
	line, err := c.out.ReadString('\n')
	if err != nil {
		return c.fail("no ready line", err)
	}
	if strings.TrimSpace(line) != "ready" {
		res, rerr := c.readResult()
		if rerr == nil && res.Err != "" {
			rerr = fmt.Errorf("%s", res.Err)
		}
		return c.fail("not ready", rerr)
	}
	return nil
}

func (c *childPeer) start() error {
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		return c.fail("send go", err)
	}
	return nil
}

func (c *childPeer) readResult() (sideResult, error) {
	var res sideResult
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(line, &res); err != nil {
		return res, fmt.Errorf("bad result line: %w", err)
	}
	return res, nil
}

func (c *childPeer) result() (sideResult, error) {
	res, err := c.readResult()
	c.stdin.Close()
	if err != nil {
		return res, c.fail("no result", err)
	}
	c.waited = true
	if werr := c.cmd.Wait(); werr != nil && res.Err == "" {
		return res, fmt.Errorf("%w: exit: %v; stderr: %s", ErrPeer, werr, strings.TrimSpace(c.stderr.String()))
	}
	if res.Err != "" {
		return res, fmt.Errorf("%w: %s", ErrPeer, res.Err)
	}
	return res, nil
}

func (c *childPeer) kill() {
	if c.waited {
		return
	}
	c.waited = true
	c.cmd.Process.Kill()
	c.stdin.Close()
	c.cmd.Wait()
}

func (lp *localPeer) waitReady() error { return <-lp.ready }
func (lp *localPeer) start() error     { close(lp.goCh); return nil }
func (lp *localPeer) result() (sideResult, error) {
	<-lp.done
	return lp.res, lp.err
}
func (lp *localPeer) kill() {}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
