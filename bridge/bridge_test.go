package bridge_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kaelix-io/kaelix/bridge"
	"github.com/kaelix-io/kaelix/client"
)

// records is how many records the throughput tests carry: 50k (5k
// under -race), or KAELIX_BRIDGE_RECORDS (the 1M:
// KAELIX_BRIDGE_RECORDS=1000000 go test -run TestBridgeAcross ./bridge/).
func records(t *testing.T) int {
	if s := os.Getenv("KAELIX_BRIDGE_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("KAELIX_BRIDGE_RECORDS=%q", s)
		}
		return n
	}
	if raceEnabled {
		return 5_000
	}
	return 50_000
}

// TestBridgeAcross: records published on host A arrive on host B's topic
// in order per partition, checksums and headers intact, exactly once, in
// both modes.
func TestBridgeAcross(t *testing.T) {
	for _, mode := range []string{bridge.Core, bridge.JetStream} {
		t.Run(mode, func(t *testing.T) {
			ns, a, b := twoHosts(t, "feed.prices")
			ctx := context.Background()
			col, stop := collect(ctx, t, b, "feed.prices", "hosta")
			defer stop()
			in := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "feed.prices", Mode: mode}))
			out := runBridge(t, bridgeConfig(a, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.Out, Topic: "feed.prices", Mode: mode}))
			waitRunning(t, in, "in-feed.prices")
			waitRunning(t, out, "out-feed.prices")
			if mode == bridge.Core {
				time.Sleep(200 * time.Millisecond) // the inbound subscription reaches the server
			}
			n := records(t)
			start := time.Now()
			// Core NATS has no flow control: pace the publisher so that a
			// loaded machine does not make nats.go drop (that is the
			// restart test's subject).
			every, pause := 0, time.Duration(0)
			if mode == bridge.Core {
				every, pause = 500, time.Millisecond
			}
			publishN(ctx, t, a, "feed.prices", 0, n, every, pause)
			last := time.Now()
			waitFor(t, 120*time.Second+time.Duration(n/2000)*time.Second, "every record on host B", func() bool {
				d, _, _ := col.summary()
				if testing.Verbose() && time.Since(last) > time.Second {
					last = time.Now()
					so, si := ruleStatus(out, "out-feed.prices"), ruleStatus(in, "in-feed.prices")
					t.Logf("B has %d; out fwd %d acked %d lag %d/%dB; in fwd %d lag %d", d, so.Forwarded, so.Acked, so.LagRecords, so.LagBytes, si.Forwarded, si.LagRecords)
				}
				return d >= n
			})
			elapsed := time.Since(start)
			time.Sleep(100 * time.Millisecond) // let duplicates, if any, arrive
			d, dups := col.result(t)
			if d != n || dups != 0 {
				t.Errorf("host B: %d distinct records of %d, %d duplicates", d, n, dups)
			}
			so, si := ruleStatus(out, "out-feed.prices"), ruleStatus(in, "in-feed.prices")
			if so.LostTotal != 0 || si.LostTotal != 0 {
				t.Errorf("losses counted: out %v, in %v", so.Lost, si.Lost)
			}
			if so.Forwarded != uint64(n) || si.Forwarded != uint64(n) {
				t.Errorf("forwarded: out %d, in %d, want %d", so.Forwarded, si.Forwarded, n)
			}
			if mode == bridge.JetStream && so.Acked != uint64(n) {
				t.Errorf("out acked %d, want %d", so.Acked, n)
			}
			t.Logf("%s: %d records A->B in %v (%.0f records/s)", mode, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
		})
	}
}

// TestBridgeKillResume: the outbound bridge, a child process, is
// SIGKILLed mid-stream and restarted several times in JetStream mode;
// host B sees every record exactly once, in order. Host A's topic is
// drop-oldest and large enough to hold what is published while the
// bridge is down, so the restarted bridge finds the records after its
// committed position in the ring.
func TestBridgeKillResume(t *testing.T) {
	kills, n := 6, 30_000
	if raceEnabled {
		kills, n = 4, 8_000
	}
	ns := startNATS(t)
	a, b := startHost(t, "hosta"), startHost(t, "hostb")
	a.topic(t, "feed.orders", "drop-oldest", 8<<20)
	b.topic(t, "feed.orders", "block", 1<<20)
	ctx := context.Background()
	col, stop := collect(ctx, t, b, "feed.orders", "hosta")
	defer stop()
	in := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "feed.orders", Mode: bridge.JetStream}))
	waitRunning(t, in, "in-feed.orders")
	outCfg := bridgeConfig(a, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.Out, Topic: "feed.orders", Mode: bridge.JetStream, From: "oldest"})
	outCfg.CommitInterval = bridge.Duration(20 * time.Millisecond)
	cfgPath := writeConfig(t, outCfg)
	proc := startBridgeProc(t, cfgPath)
	waitFor(t, 30*time.Second, "the outbound stream", func() bool { return ruleStatus(in, "in-feed.orders").State == bridge.StateRunning })
	publishWhileKilling(ctx, t, a, "feed.orders", n, col, proc, cfgPath, kills)
	d, dups := col.result(t)
	if d != n || dups != 0 {
		t.Errorf("host B after %d kills: %d distinct of %d, %d duplicates", kills, d, n, dups)
	}
	si := ruleStatus(in, "in-feed.orders")
	t.Logf("%d kills: %d records, inbound: forwarded %d duplicates dropped %d redelivered %d lost %v",
		kills, n, si.Forwarded, si.Duplicates, si.Redelivered, si.Lost)
	if si.LostTotal != 0 {
		t.Errorf("inbound counted losses: %v", si.Lost)
	}
}

// TestNATSRestart: the NATS server is restarted mid-stream. JetStream:
// every record arrives once, nothing counted lost. Core: what host B
// received plus the gaps it counted is exactly what was published, and
// losses are counted.
func TestNATSRestart(t *testing.T) {
	n := 20_000
	if raceEnabled {
		n = 6_000
	}
	for _, mode := range []string{bridge.Core, bridge.JetStream} {
		t.Run(mode, func(t *testing.T) {
			ns := startNATS(t)
			a, b := hostsWithTopic(t, "feed.ticks")
			ctx := context.Background()
			col, stop := collect(ctx, t, b, "feed.ticks", "hosta")
			defer stop()
			in := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "feed.ticks", Mode: mode}))
			out := runBridge(t, bridgeConfig(a, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.Out, Topic: "feed.ticks", Mode: mode}))
			waitRunning(t, in, "in-feed.ticks")
			waitRunning(t, out, "out-feed.ticks")
			time.Sleep(200 * time.Millisecond)
			// The last quarter is published only after the restart, so
			// that records flow before, during and after it.
			pubDone, restarted := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(pubDone)
				publishN(ctx, t, a, "feed.ticks", 0, 3*n/4, 100, 2*time.Millisecond)
				<-restarted
				publishN(ctx, t, a, "feed.ticks", 3*n/4, n, 100, 2*time.Millisecond)
			}()
			waitFor(t, 60*time.Second, "traffic", func() bool { d, _, _ := col.summary(); return d > n/4 })
			ns.stop()
			waitFor(t, 10*time.Second, "health degraded", func() bool { return !out.Status().Healthy && !in.Status().Healthy })
			time.Sleep(300 * time.Millisecond)
			ns.start()
			waitRunning(t, out, "out-feed.ticks")
			waitRunning(t, in, "in-feed.ticks")
			time.Sleep(200 * time.Millisecond) // the inbound subscription is back on the server
			close(restarted)
			<-pubDone
			so := ruleStatus(out, "out-feed.ticks")
			if so.Reconnects == 0 {
				t.Errorf("no reconnect counted: %+v", so)
			}
			if mode == bridge.JetStream {
				waitFor(t, 60*time.Second, "every record on host B", func() bool { d, _, _ := col.summary(); return d >= n })
				time.Sleep(200 * time.Millisecond)
				d, dups := col.result(t)
				so, si := ruleStatus(out, "out-feed.ticks"), ruleStatus(in, "in-feed.ticks")
				if d != n || dups != 0 || so.LostTotal != 0 || si.LostTotal != 0 {
					t.Errorf("jetstream across a NATS restart: %d distinct of %d, %d duplicates, lost out %v in %v", d, n, dups, so.Lost, si.Lost)
				}
				t.Logf("jetstream: out redelivered %d, in duplicates dropped %d", so.Redelivered, si.Duplicates)
				return
			}
			// Core: the last records arrive after the restart, so B's gap
			// count covers everything in between.
			waitFor(t, 60*time.Second, "the last record on host B", func() bool { return col.sawLast(n) })
			time.Sleep(200 * time.Millisecond)
			d, dups := col.result(t)
			so, si := ruleStatus(out, "out-feed.ticks"), ruleStatus(in, "in-feed.ticks")
			if dups != 0 {
				t.Errorf("core: %d duplicates", dups)
			}
			if got := uint64(d) + si.Lost[bridge.LostGap]; got != uint64(n) {
				t.Errorf("core: received %d + gaps counted %d = %d, want %d", d, si.Lost[bridge.LostGap], got, n)
			}
			if d == n || so.LostTotal == 0 && si.LostTotal == 0 {
				t.Errorf("core: a NATS restart mid-stream lost nothing (received %d of %d, lost out %v in %v)?", d, n, so.Lost, si.Lost)
			}
			if so.Forwarded+so.LostTotal != uint64(n) {
				t.Errorf("core out: forwarded %d + lost %d != %d published", so.Forwarded, so.LostTotal, n)
			}
			t.Logf("core: received %d of %d; out lost %v; in gaps %d", d, n, so.Lost, si.Lost[bridge.LostGap])
		})
	}
}

// TestFacingBridges: two hosts, each bridging the same topic out and in;
// no record loops: each side receives the other's records exactly once,
// and NATS carries each record once.
func TestFacingBridges(t *testing.T) {
	for _, mode := range []string{bridge.Core, bridge.JetStream} {
		t.Run(mode, func(t *testing.T) {
			ns := startNATS(t)
			a, b := hostsWithTopic(t, "shared.events")
			rules := []bridge.Rule{{Direction: bridge.Out, Topic: "shared.events", Mode: mode}, {Direction: bridge.In, Topic: "shared.events", Mode: mode}}
			ctx := context.Background()
			colA, stopA := collect(ctx, t, a, "shared.events", "hostb", true)
			defer stopA()
			colB, stopB := collect(ctx, t, b, "shared.events", "hosta", true)
			defer stopB()
			ba := runBridge(t, bridgeConfig(a, ns.url(), t.TempDir(), rules...))
			bb := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), rules...))
			for _, br := range []*bridge.Bridge{ba, bb} {
				waitRunning(t, br, "out-shared.events", "in-shared.events")
			}
			time.Sleep(200 * time.Millisecond)
			n := 2000
			if raceEnabled {
				n = 1000
			}
			done := make(chan struct{})
			go func() { defer close(done); publishN(ctx, t, a, "shared.events", 0, n, 100, time.Millisecond) }()
			publishN(ctx, t, b, "shared.events", n, 2*n, 100, time.Millisecond)
			<-done
			// A's collector sees its own n records and B's n; B's likewise.
			defer func() {
				if t.Failed() {
					da, _, _ := colA.summary()
					db, _, _ := colB.summary()
					t.Logf("A has %d, B has %d\nA: %+v\nB: %+v", da, db, ba.Status(), bb.Status())
				}
			}()
			waitFor(t, 60*time.Second, "both directions", func() bool {
				da, _, _ := colA.summary()
				db, _, _ := colB.summary()
				return da >= 2*n && db >= 2*n
			})
			time.Sleep(time.Second) // a loop would show up as more records by now
			for name, col := range map[string]*collector{"A": colA, "B": colB} {
				col.mu.Lock()
				if col.count != 2*n {
					t.Errorf("host %s: %d records, want %d (n local + n bridged)", name, col.count, 2*n)
				}
				for _, e := range col.errs {
					t.Errorf("host %s: %s", name, e)
				}
				col.mu.Unlock()
			}
			for _, br := range []*bridge.Bridge{ba, bb} {
				so, si := ruleStatus(br, "out-shared.events"), ruleStatus(br, "in-shared.events")
				if so.Forwarded != uint64(n) || so.Skipped != uint64(n) || si.Forwarded != uint64(n) {
					t.Errorf("%s: out forwarded %d skipped %d, in forwarded %d; want %d each", br.Status().Host, so.Forwarded, so.Skipped, si.Forwarded, n)
				}
			}
		})
	}
}

// TestBridgeKillInbound: the inbound bridge, a child process, is
// SIGKILLed mid-stream and restarted in JetStream mode: host B gets every
// record, in order; a kill between a local write and the save of the
// applied positions may write at most one batch (Window records) again.
func TestBridgeKillInbound(t *testing.T) {
	kills, n, window := 4, 20_000, 64
	if raceEnabled {
		kills, n = 3, 6_000
	}
	ns := startNATS(t)
	a, b := hostsWithTopic(t, "feed.fills")
	ctx := context.Background()
	col, stop := collect(ctx, t, b, "feed.fills", "hosta")
	defer stop()
	out := runBridge(t, bridgeConfig(a, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.Out, Topic: "feed.fills", Mode: bridge.JetStream}))
	waitRunning(t, out, "out-feed.fills")
	inCfg := bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "feed.fills", Mode: bridge.JetStream, Window: window})
	cfgPath := writeConfig(t, inCfg)
	proc := startBridgeProc(t, cfgPath)
	publishWhileKilling(ctx, t, a, "feed.fills", n, col, proc, cfgPath, kills)
	d, dups := col.result(t)
	if d != n || dups > kills*window {
		t.Errorf("host B after %d inbound kills: %d distinct of %d, %d duplicates (at most %d allowed)", kills, d, n, dups, kills*window)
	}
	t.Logf("%d inbound kills: %d records, %d written twice", kills, n, dups)
}

// TestRecordIdentity: each record's identity arrives intact, in both
// modes: on the NATS message (Kaelix-Rec holding host, topic, partition,
// sequence and timestamp equal to the record's on host A, Nats-Msg-Id in
// jetstream mode, the record's headers verbatim or in Kaelix-Headers-B64,
// the payload as the data), and on host B's record (payload, headers,
// partition, and Kaelix-Origin equal to A's identity and the subject).
func TestRecordIdentity(t *testing.T) {
	const n = 200
	for _, mode := range []string{bridge.Core, bridge.JetStream} {
		t.Run(mode, func(t *testing.T) {
			ns, a, b := twoHosts(t, "feed.ids")
			ctx := context.Background()
			// What host A's ring assigned: index -> identity.
			type ident struct {
				part      int
				seq       uint64
				ts        int64
				payload   []byte
				nats, loc bool
			}
			var mu sync.Mutex
			ids := map[int]*ident{}
			subA, err := a.c.Subscribe(ctx, "feed.ids", client.SubscribeOptions{Wait: client.WaitBackoff})
			if err != nil {
				t.Fatal(err)
			}
			defer subA.Close()
			nc := natsConn(t, ns.url())
			var natsMsgs []*nats.Msg
			raw, err := nc.Subscribe("kaelix.hosta.feed.ids.*", func(m *nats.Msg) { mu.Lock(); natsMsgs = append(natsMsgs, m); mu.Unlock() })
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Unsubscribe()
			nc.Flush()
			subB, err := b.c.Subscribe(ctx, "feed.ids", client.SubscribeOptions{Wait: client.WaitBackoff})
			if err != nil {
				t.Fatal(err)
			}
			defer subB.Close()
			in := runBridge(t, bridgeConfig(b, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.In, Topic: "feed.ids", Mode: mode}))
			out := runBridge(t, bridgeConfig(a, ns.url(), t.TempDir(), bridge.Rule{Direction: bridge.Out, Topic: "feed.ids", Mode: mode}))
			waitRunning(t, in, "in-feed.ids")
			waitRunning(t, out, "out-feed.ids")
			time.Sleep(200 * time.Millisecond) // the subscriptions reach the server
			// Every fourth record is routed by a key, which must travel.
			keyOf := func(i int) []byte {
				if i%4 != 0 {
					return nil
				}
				return []byte("key\x00" + strconv.Itoa(i))
			}
			pubA, err := a.c.NewPublisher(ctx, "feed.ids", client.PublisherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				m := client.NewMessage(payload(i, 64), client.WithHeaders(userHeaders(i)), client.WithPartition(i%2))
				if k := keyOf(i); k != nil {
					m.Key = k
				}
				if err := pubA.Publish(ctx, m); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			pubA.Close()
			for _, m := range receiveN(t, subA, n, "host A's own subscriber") {
				i, err := checkPayload(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = &ident{part: m.Partition, seq: m.ID.Sequence, ts: m.TimestampNS, payload: m.Payload}
			}
			got := receiveN(t, subB, n, "host B")
			for _, m := range got {
				i, err := checkPayload(m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				id := ids[i]
				if id == nil || id.loc {
					t.Fatalf("record %d on host B: unknown or twice", i)
				}
				id.loc = true
				if !bytes.Equal(m.Payload, id.payload) || m.Partition != id.part {
					t.Errorf("record %d: payload or partition %d differs (want %d)", i, m.Partition, id.part)
				}
				if k := keyOf(i); !bytes.Equal(m.Key, k) || (m.Key == nil) != (k == nil) {
					t.Errorf("record %d on host B: key %q, want %q", i, m.Key, k)
				}
				want := userHeaders(i)
				want[bridge.HdrOrigin] = "hosta feed.ids " + strconv.Itoa(id.part) + " " + strconv.FormatUint(id.seq, 10) + " " +
					strconv.FormatInt(id.ts, 10) + " kaelix.hosta.feed.ids." + strconv.Itoa(id.part)
				if len(m.Headers) != len(want) {
					t.Errorf("record %d: headers %v, want %v", i, m.Headers, want)
				}
				for k, v := range want {
					if m.Headers[k] != v {
						t.Errorf("record %d: header %q = %q, want %q", i, k, m.Headers[k], v)
					}
				}
			}
			waitFor(t, 30*time.Second, "every record on the NATS subject", func() bool { mu.Lock(); defer mu.Unlock(); return len(natsMsgs) >= n })
			mu.Lock()
			defer mu.Unlock()
			for _, m := range natsMsgs {
				i, err := checkPayload(m.Data)
				if err != nil {
					t.Fatal(err)
				}
				id := ids[i]
				if id.nats {
					t.Fatalf("record %d twice on NATS", i)
				}
				id.nats = true
				p, seq := strconv.Itoa(id.part), strconv.FormatUint(id.seq, 10)
				want := map[string]string{
					bridge.HdrRecord: "hosta feed.ids " + p + " " + seq + " " + strconv.FormatInt(id.ts, 10),
					"src":            "test", "idx": strconv.Itoa(i),
				}
				if mode == bridge.JetStream {
					want[bridge.HdrMsgID] = "hosta/feed.ids/" + p + "/" + seq
				}
				if k := keyOf(i); k != nil {
					want[bridge.HdrKey] = base64.StdEncoding.EncodeToString(k)
				} else if len(m.Header[bridge.HdrKey]) != 0 {
					t.Errorf("NATS message of record %d: %s %q for a record without a key", i, bridge.HdrKey, m.Header[bridge.HdrKey])
				}
				for k, v := range want {
					if vs := m.Header[k]; len(vs) != 1 || vs[0] != v {
						t.Errorf("NATS message of record %d: header %q = %q, want %q", i, k, vs, v)
					}
				}
				if len(m.Header[bridge.HdrHeaders64]) != 1 { // "Nats-Msg-Id" and "bin:key" travel encoded
					t.Errorf("NATS message of record %d: no %s header: %v", i, bridge.HdrHeaders64, m.Header)
				}
				if m.Subject != "kaelix.hosta.feed.ids."+p {
					t.Errorf("NATS message of record %d on %s", i, m.Subject)
				}
			}
		})
	}
}

// receiveN receives n records (copies) from sub, each within 30s.
func receiveN(t *testing.T, sub *client.Subscriber, n int, who string) []client.Message {
	t.Helper()
	var got []client.Message
	for len(got) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		m, err := sub.Receive(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s after %d records: %v", who, len(got), err)
		}
		got = append(got, m)
	}
	return got
}
