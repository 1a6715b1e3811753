package processor_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/processor"
	"github.com/kaelix-io/kaelix/processor/builtin"
	"github.com/kaelix-io/kaelix/workers"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runHelper(role))
	}
	goleak.VerifyTestMain(m)
}

// stages builds a registry of built-ins: kind, then its config (nil: none).
func stages(t testing.TB, specs ...any) *processor.Registry {
	t.Helper()
	r := processor.NewRegistry(nil)
	for i := 0; i < len(specs); i += 2 {
		kind := specs[i].(string)
		var cfg processor.Config
		if specs[i+1] != nil {
			cfg = specs[i+1].(processor.Config)
		}
		p, err := builtin.New(kind)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Register(fmt.Sprintf("%s%d", kind, i/2), p, processor.StageOptions{Config: cfg, Permissions: processor.Permissions{CanReadConfig: true}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func publish(t *testing.T, pub *client.Publisher, payload string, hs ...string) {
	t.Helper()
	var opts []client.MessageOption
	for i := 0; i < len(hs); i += 2 {
		opts = append(opts, client.WithHeader(hs[i], hs[i+1]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, client.NewMessage([]byte(payload), opts...)); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineChainOfThree: stamp -> filter -> sample; the output is what
// the three, applied in turn, leave.
func TestPipelineChainOfThree(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "in"}, client.TopicConfig{Name: "out"})
	ctx := context.Background()
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{
		Input: "in", Outputs: []string{"out"},
		Stages: stages(t,
			"stamp", nil,
			"filter", processor.Config{"header": "kind", "equals": []string{"keep"}},
			"sample", processor.Config{"every": 2}),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Subscribe(ctx, "out", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	runPipeline(t, p)
	pub, err := c.NewPublisher(ctx, "in", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 40
	var want []string
	kept := 0
	before := time.Now().UnixNano()
	for i := range n {
		kind := "skip"
		if i%2 == 0 {
			kind = "keep"
			if kept%2 == 0 {
				want = append(want, "rec-"+strconv.Itoa(i))
			}
			kept++
		}
		publish(t, pub, "rec-"+strconv.Itoa(i), "kind", kind)
	}
	got := receiveN(t, out, len(want), 10*time.Second)
	for i, m := range got {
		if string(m.Payload) != want[i] {
			t.Fatalf("record %d: %q, want %q", i, m.Payload, want[i])
		}
		ts, err := strconv.ParseInt(m.Headers["processed_at"], 10, 64)
		if err != nil || ts < before || ts > time.Now().UnixNano() {
			t.Fatalf("record %d: processed_at %q not a wall-clock ns in the test's span", i, m.Headers["processed_at"])
		}
		if m.Headers["kind"] != "keep" {
			t.Fatalf("record %d: kind %q", i, m.Headers["kind"])
		}
	}
	expectNothing(t, out, 200*time.Millisecond)
	st := p.Stats()
	if st.In != n || st.Out != uint64(len(want)) || st.Dropped != n-uint64(len(want)) || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if f := st.Stages[1]; f.In != n || f.Dropped != n/2 {
		t.Fatalf("filter stats %+v", f)
	}
}

// TestPipelineRouteTwoTopics: route by a header to two topics; a value
// with no route is dropped.
func TestPipelineRouteTwoTopics(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "ticks"}, client.TopicConfig{Name: "ticks.a"}, client.TopicConfig{Name: "ticks.b", Partitions: 2})
	ctx := context.Background()
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{
		Input: "ticks",
		Stages: stages(t, "route", processor.Config{
			"header": "sym", "routes": map[string]any{"A": "ticks.a", "B": "ticks.b"}, "unmatched": "drop"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	subA, _ := c.Subscribe(ctx, "ticks.a", client.SubscribeOptions{})
	subB, _ := c.Subscribe(ctx, "ticks.b", client.SubscribeOptions{})
	defer subA.Close()
	defer subB.Close()
	runPipeline(t, p)
	pub, _ := c.NewPublisher(ctx, "ticks", client.PublisherOptions{})
	defer pub.Close()
	var wantA, wantB []string
	for i := range 30 {
		sym := string(rune('A' + i%3))
		payload := fmt.Sprintf("%s-%d", sym, i)
		switch sym {
		case "A":
			wantA = append(wantA, payload)
		case "B":
			wantB = append(wantB, payload)
		}
		publish(t, pub, payload, "sym", sym)
	}
	for _, c := range []struct {
		sub  *client.Subscriber
		want []string
	}{{subA, wantA}, {subB, wantB}} {
		got := receiveN(t, c.sub, len(c.want), 10*time.Second)
		for i, m := range got {
			if string(m.Payload) != c.want[i] {
				t.Fatalf("%s record %d: %q, want %q", c.sub.Topic(), i, m.Payload, c.want[i])
			}
		}
		expectNothing(t, c.sub, 100*time.Millisecond)
	}
	if st := p.Stats(); st.In != 30 || st.Out != 20 || st.Dropped != 10 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPipelineRouteByRecordKey: route by = "key" routes by the key the
// publisher gave (client.Message.Key travels in the record), and the key
// goes on with the record to its output.
func TestPipelineRouteByRecordKey(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "keyed"}, client.TopicConfig{Name: "keyed.a"}, client.TopicConfig{Name: "keyed.b"})
	ctx := context.Background()
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{
		Input: "keyed",
		Stages: stages(t, "route", processor.Config{
			"by": "key", "routes": map[string]any{"A": "keyed.a", "B": "keyed.b"}, "unmatched": "drop"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	subA, _ := c.Subscribe(ctx, "keyed.a", client.SubscribeOptions{})
	subB, _ := c.Subscribe(ctx, "keyed.b", client.SubscribeOptions{})
	defer subA.Close()
	defer subB.Close()
	runPipeline(t, p)
	pub, _ := c.NewPublisher(ctx, "keyed", client.PublisherOptions{})
	defer pub.Close()
	var wantA, wantB []string
	for i := range 30 {
		key := string(rune('A' + i%3))
		payload := fmt.Sprintf("%s-%d", key, i)
		switch key {
		case "A":
			wantA = append(wantA, payload)
		case "B":
			wantB = append(wantB, payload)
		}
		if err := pub.Publish(ctx, client.NewMessage([]byte(payload), client.WithKey([]byte(key)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		sub  *client.Subscriber
		key  string
		want []string
	}{{subA, "A", wantA}, {subB, "B", wantB}} {
		got := receiveN(t, c.sub, len(c.want), 10*time.Second)
		for i, m := range got {
			if string(m.Payload) != c.want[i] || string(m.Key) != c.key {
				t.Fatalf("%s record %d: %q key %q, want %q key %q", c.sub.Topic(), i, m.Payload, m.Key, c.want[i], c.key)
			}
		}
		expectNothing(t, c.sub, 100*time.Millisecond)
	}
	if st := p.Stats(); st.In != 30 || st.Out != 20 || st.Dropped != 10 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPipelineZeroAllocs: input ring -> stages -> output ring allocates
// nothing per record when no stage changes the payload: a pass-through
// chain, and stamp (which adds a header). The output is drop-oldest with
// no subscriber, so that reading it does not count.
func TestPipelineZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("exact allocation counts need a build without -race")
	}
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "in"}, client.TopicConfig{Name: "out", Policy: client.PolicyDropOldest})
	ctx := context.Background()
	for _, name := range []string{"passthrough", "stamp"} {
		reg := processor.NewRegistry(nil)
		reg.Register("pass", &passthrough{}, processor.StageOptions{})
		if name == "stamp" {
			s, _ := builtin.New("stamp")
			reg.Register("stamp", s, processor.StageOptions{})
		}
		p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "in", Outputs: []string{"out"}, Stages: reg})
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := c.NewPublisher(ctx, "in", client.PublisherOptions{})
		msg := client.NewMessage([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
		step := func() {
			if err := pub.TryPublish(msg); err != nil {
				t.Fatal(err)
			}
			if n, err := p.PollOnce(ctx); n != 1 || err != nil {
				t.Fatalf("PollOnce = %d, %v", n, err)
			}
		}
		if a := testing.AllocsPerRun(1000, step); a != 0 {
			t.Errorf("%s: %.2f allocs per record", name, a)
		}
		if n := mallocs(10000, step); n > 5 {
			t.Errorf("%s: %d allocations in 10000 records", name, n)
		}
		if st := p.Stats(); st.In != st.Out || st.In < 11000 {
			t.Errorf("%s: stats %+v", name, st)
		}
		pub.Close()
		p.Close()
	}
}

// TestPipelineBadConfig: each mistake gives an error naming the pipeline
// and what is wrong, leaves nothing attached, and a good pipeline still
// works afterwards on the same client.
func TestPipelineBadConfig(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "in"}, client.TopicConfig{Name: "out"})
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  processor.PipelineConfig
		want []string
		is   error
	}{
		{"missing-input", processor.PipelineConfig{Input: "nope", Outputs: []string{"out"}, Stages: stages(t, "stamp", nil)}, []string{`"missing-input"`, `input "nope"`}, client.ErrTopicNotFound},
		{"missing-output", processor.PipelineConfig{Input: "in", Outputs: []string{"gone"}, Stages: stages(t, "stamp", nil)}, []string{`output "gone"`}, client.ErrTopicNotFound},
		{"cycle", processor.PipelineConfig{Input: "in", Outputs: []string{"out", "in"}, Stages: stages(t, "stamp", nil)}, []string{"cycle"}, nil},
		{"route-cycle", processor.PipelineConfig{Input: "in", Stages: stages(t, "route", processor.Config{"header": "h", "routes": map[string]any{"x": "in"}})}, []string{"route target", "cycle"}, nil},
		{"init-fails", processor.PipelineConfig{Input: "in", Outputs: []string{"out"}, Stages: stages(t, "stamp", nil, "filter", nil)}, []string{`stage "filter1"`, "init"}, processor.ErrBadConfig},
		{"unknown-key", processor.PipelineConfig{Input: "in", Outputs: []string{"out"}, Stages: stages(t, "sample", processor.Config{"evry": 3})}, []string{`stage "sample0"`, "evry"}, processor.ErrBadConfig},
		{"no-input", processor.PipelineConfig{Stages: stages(t, "stamp", nil)}, []string{"no input"}, nil},
	}
	for _, tc := range cases {
		tc.cfg.Name = tc.name
		_, err := processor.NewPipeline(ctx, c, tc.cfg)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range append(tc.want, `"`+tc.name+`"`) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v is not %v", tc.name, err, tc.is)
		}
	}
	if _, err := builtin.New("nosuch"); !errors.Is(err, builtin.ErrUnknownKind) || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("unknown plugin: %v", err)
	}
	// Nothing stayed attached: the topics have no publisher or subscriber.
	for _, name := range []string{"in", "out"} {
		info, err := c.TopicInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Publishers != 0 || info.Subscribers != 0 {
			t.Errorf("%s: %d publishers, %d subscribers left attached", name, info.Publishers, info.Subscribers)
		}
	}
	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "in", Outputs: []string{"out"}, Stages: stages(t, "stamp", nil)})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := c.Subscribe(ctx, "out", client.SubscribeOptions{})
	defer out.Close()
	runPipeline(t, p)
	pub, _ := c.NewPublisher(ctx, "in", client.PublisherOptions{})
	defer pub.Close()
	publish(t, pub, "ok")
	if m := receiveN(t, out, 1, 10*time.Second)[0]; string(m.Payload) != "ok" {
		t.Fatalf("got %q", m.Payload)
	}
}

// TestQueueGroupTwoProcesses: two pipeline processes in one queue group
// split one input: every record comes out exactly once, both did work,
// and their input counts add up to the records published.
//
// The split is forced, not left to the scheduler (on a loaded machine one
// member could otherwise drain the whole input before the other is ever
// scheduled): each member joins the group (Subscribe returns after the
// join, before the member says ready) and holds, inside Process, the
// record after its first n/2 until the test closes its stdin. Members take
// one record per claim and claim the next only after Process returns, so
// the member that reaches its quota first holds one claimed record and the
// other must take all the rest: the test sees n-1 records come out before
// it releases the holder.
func TestQueueGroupTwoProcesses(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "work", CapacityBytes: 64 << 10}, client.TopicConfig{Name: "done"})
	ctx := context.Background()
	done, err := c.Subscribe(ctx, "done", client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer done.Close()
	n := 3000
	if raceEnabled {
		n = 600
	}
	quota := n / 2
	var kids []*exec.Cmd
	var outs []*bufio.Scanner
	var releases []io.Closer
	for id := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), roleEnv+"=group-member", socketEnv+"="+e.socket, idEnv+"="+strconv.Itoa(id),
			quotaEnv+"="+strconv.Itoa(quota))
		cmd.Stderr = os.Stderr
		so, _ := cmd.StdoutPipe()
		si, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, cmd)
		releases = append(releases, si)
		sc := bufio.NewScanner(so)
		if !sc.Scan() || sc.Text() != "ready" {
			t.Fatalf("member %d: %q, want ready", id, sc.Text())
		}
		outs = append(outs, sc)
	}
	release := func() {
		for _, r := range releases {
			r.Close()
		}
		releases = nil
	}
	defer func() {
		release()
		for _, k := range kids {
			k.Process.Kill()
			k.Wait()
		}
	}()
	pub, err := c.NewPublisher(ctx, "work", client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range n {
		publish(t, pub, "job-"+strconv.Itoa(i))
	}
	// One member holds one record; the other must have done the rest.
	got := receiveN(t, done, n-1, 60*time.Second)
	release()
	got = append(got, receiveN(t, done, 1, 60*time.Second)...)
	seen := make(map[string]int, n)
	byWorker := map[string]int{}
	for _, m := range got {
		seen[string(m.Payload)]++
		byWorker[m.Headers["worker"]]++
	}
	for i := range n {
		if k := "job-" + strconv.Itoa(i); seen[k] != 1 {
			t.Fatalf("%s came out %d times", k, seen[k])
		}
	}
	expectNothing(t, done, 300*time.Millisecond)
	if byWorker["0"] == 0 || byWorker["1"] == 0 || byWorker["0"]+byWorker["1"] != n {
		t.Fatalf("records per worker %v: want both > 0, summing to %d", byWorker, n)
	}
	if hi := max(byWorker["0"], byWorker["1"]); hi != quota+1 {
		t.Fatalf("records per worker %v: the holder should have done %d (quota + the held one)", byWorker, quota+1)
	}
	total := 0
	for i, k := range kids {
		k.Process.Signal(syscall.SIGTERM)
		if !outs[i].Scan() {
			t.Fatalf("member %d: no stats line", i)
		}
		in, err := strconv.Atoi(strings.TrimPrefix(outs[i].Text(), "in="))
		if err != nil {
			t.Fatalf("member %d: %q", i, outs[i].Text())
		}
		if in != byWorker[strconv.Itoa(i)] {
			t.Errorf("member %d read %d, stamped %d", i, in, byWorker[strconv.Itoa(i)])
		}
		total += in
		if err := k.Wait(); err != nil {
			t.Errorf("member %d: %v", i, err)
		}
	}
	kids = nil
	if total != n {
		t.Fatalf("members read %d records in all, want %d", total, n)
	}
	t.Logf("split: %v", byWorker)
}

// holdStage passes records on; the one after its first quota it holds in
// Process until release is closed (the test closes the member's stdin) or
// ctx is done.
type holdStage struct {
	quota, seen int
	release     <-chan struct{}
	ctx         context.Context
}

func (h *holdStage) Name() string                 { return "hold" }
func (h *holdStage) Version() string              { return "test" }
func (h *holdStage) Init(processor.Context) error { return nil }
func (h *holdStage) Close() error                 { return nil }
func (h *holdStage) Process(*processor.Message) processor.Action {
	h.seen++
	if h.seen == h.quota+1 {
		select {
		case <-h.release:
		case <-h.ctx.Done():
		}
	}
	return processor.Continue
}

// runHelper is a helper process's main.
func runHelper(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch role {
	case "group-member":
		c, err := client.Connect(ctx, client.Options{SocketPath: os.Getenv(socketEnv)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer c.Close()
		reg := processor.NewRegistry(nil)
		if q, err := strconv.Atoi(os.Getenv(quotaEnv)); err == nil {
			release := make(chan struct{})
			go func() { io.Copy(io.Discard, os.Stdin); close(release) }()
			reg.Register("hold", &holdStage{quota: q, release: release, ctx: ctx}, processor.StageOptions{})
		}
		s, _ := builtin.New("stamp")
		reg.Register("stamp", s, processor.StageOptions{
			Config:      processor.Config{"header": "worker", "value": os.Getenv(idEnv)},
			Permissions: processor.Permissions{CanReadConfig: true},
		})
		p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: "work", Group: "members", Outputs: []string{"done"}, Stages: reg})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		if err := p.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("in=%d\n", p.Stats().In)
		p.Close()
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// TestPipelinesOnWorkers: two pipelines share one pinned worker through
// the priority runtime; both move every record.
func TestPipelinesOnWorkers(t *testing.T) {
	e := newEnv(t)
	startDaemon(t, e)
	c := connect(t, e.socket)
	createTopics(t, c, client.TopicConfig{Name: "in0"}, client.TopicConfig{Name: "out0"}, client.TopicConfig{Name: "in1"}, client.TopicConfig{Name: "out1"})
	pool, err := workers.New(workers.Config{WorkerThreads: 1, PriorityLevels: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ran sync.WaitGroup
	var subs []*client.Subscriber
	var pubs []*client.Publisher
	for i, prio := range []int{0, 2} {
		in, out := fmt.Sprintf("in%d", i), fmt.Sprintf("out%d", i)
		p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{Input: in, Outputs: []string{out}, Stages: stages(t, "stamp", nil)})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		sub, _ := c.Subscribe(ctx, out, client.SubscribeOptions{})
		defer sub.Close()
		subs = append(subs, sub)
		pub, _ := c.NewPublisher(ctx, in, client.PublisherOptions{})
		defer pub.Close()
		pubs = append(pubs, pub)
		ran.Add(1)
		go func() {
			defer ran.Done()
			if err := p.RunOn(ctx, pool, prio); err != nil {
				t.Errorf("RunOn: %v", err)
			}
		}()
	}
	defer func() { cancel(); ran.Wait() }() // before the deferred Closes
	const n = 300
	for i := range n {
		for j, pub := range pubs {
			publish(t, pub, fmt.Sprintf("%d-%d", j, i))
		}
	}
	for j, sub := range subs {
		got := receiveN(t, sub, n, 30*time.Second)
		for i, m := range got {
			if string(m.Payload) != fmt.Sprintf("%d-%d", j, i) || m.Headers["processed_at"] == "" {
				t.Fatalf("out%d record %d: %q %v", j, i, m.Payload, m.Headers)
			}
		}
	}
	if st := pool.Stats(); st.Ran[0] == 0 || st.Ran[2] == 0 {
		t.Fatalf("pool ran %v: both priorities should have run steps", st.Ran)
	}
}
