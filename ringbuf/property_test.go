package ringbuf

// Property tests: a rapid state machine drives one ring (single goroutine)
// through random offers, batches, claims, polls, reads and subscriber and
// queue-group churn, and after every action compares the ring with a plain
// model: the list of everything ever claimed (records, aborted claims,
// wrap padding, outstanding claims) by position, and a cursor per
// broadcast subscriber and per queue group.
//
// The model decides back-pressure from first principles: a claim ending
// at end is refused iff some consumer exists and end > (slowest consumer
// position) + capacity, where a record that would cross the end of the
// data area is preceded by a separate padding claim (which may succeed
// while the record after it is refused). Under PolicyDropOldest a consumer
// whose next position was overwritten (tail > position + capacity)
// resumes at the first record at or after tail - capacity/2 (else the
// oldest at or after tail - capacity) and loses exactly the sequence
// numbers in between; a lap that loses records reports ErrLapped, unless
// it only widens a gap no record has been delivered after yet.
//
// The run length follows rapid's flags (-rapid.checks, -rapid.steps).

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestRingProperties(t *testing.T) {
	for _, kind := range []Kind{SPSC, MPMC} {
		for _, pol := range []Policy{PolicyBlock, PolicyDropOldest, PolicyReject} {
			t.Run(fmt.Sprintf("%v/%v", kind, pol), func(t *testing.T) {
				c := propConfig(kind, pol)
				size, err := sizeIn(c)
				if err != nil {
					t.Fatal(err)
				}
				// One mapping per configuration: Create rewrites every
				// header, table and state word of it for each check.
				b, _ := sharedMapping(t, size)
				rapid.Check(t, func(rt *rapid.T) {
					m := newPropMachine(rt, b, c)
					defer m.close()
					// Laps need more steps than rapid's default 30: run
					// propRounds state machines back to back on the same ring.
					for i := 0; i < propRounds; i++ {
						rt.Repeat(m.actions())
					}
				})
			})
		}
	}
}

// propRounds multiplies rapid's -rapid.steps (default 30) so that a check
// runs several laps of the ring; -rapid.checks (default 100) sets how many
// checks run. About 1 s per configuration under -race on two cores.
const propRounds = 20

func propConfig(kind Kind, pol Policy) Config {
	c := DefaultConfig(kind)
	c.Policy = pol
	c.CapacityBytes = 4096
	c.MaxPayloadBytes = 300
	c.UnblockTimeout = time.Hour // no stall handling in a single-goroutine model
	if kind == MPMC {
		c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = 2, 4, 2
	}
	return c
}

type propKind int

const (
	propRecord propKind = iota
	propSkip
	propPadding
	propClaimed
)

type propEntry struct {
	kind    propKind
	pos     uint64
	span    uint64
	seq     uint64 // records and skips
	pub     int
	typ     uint16
	payload []byte
}

type propPub struct {
	p     *Publisher
	slot  int
	typ   uint16
	ts    bool
	claim int // entry index of the outstanding claim, or -1
}

// propCursor is a consumer's next position and the sequence it expects
// there (unknownSeq: learned from the first record).
type propCursor struct{ pos, expect uint64 }

const unknownSeq = ^uint64(0)

type propGroup struct {
	id      uint32
	slot    int
	cur     propCursor
	members int
	lost    uint64
}

type propSub struct {
	s          *Subscriber
	slot       int
	g          *propGroup // nil: broadcast
	cur        propCursor // broadcast only
	lapPending bool       // the ring owes an ErrLapped
	gap        bool       // broadcast: records lost since the last delivery (a further lap widens the same gap)
	consumed   uint64
	lost       uint64
}

type propMachine struct {
	t *rapid.T
	r *Ring
	c Config

	pubs   []*propPub
	subs   []*propSub
	groups []*propGroup // by group slot, nil = free

	tail, seq  uint64
	entries    []propEntry
	byPos      map[uint64]int
	bp, reject uint64
	slotCons   []uint64 // consumed counter of each subscriber slot
	slotLost   []uint64
	slotMember []bool   // the slot's last owner joined a queue group
	groupLost  []uint64 // lost counter of each queue-group slot
}

func newPropMachine(t *rapid.T, b []byte, c Config) *propMachine {
	starts := []struct{ pos, seq uint64 }{
		{0, 0},
		{1<<32 - 3*4096 - 40, 1<<31 - 5},
		{1<<63 - 2*4096 - 24, 1 << 62},
	}
	st := starts[rapid.IntRange(0, len(starts)-1).Draw(t, "start")]
	var r *Ring
	var err error
	if st.pos == 0 {
		r, err = createIn(b, c)
	} else {
		r, err = createAt(b, c, st.pos, st.seq)
	}
	if err != nil {
		t.Fatal(err)
	}
	m := &propMachine{
		t: t, r: r, c: c,
		groups:     make([]*propGroup, c.MaxGroups),
		groupLost:  make([]uint64, c.MaxGroups),
		tail:       st.pos,
		seq:        st.seq,
		byPos:      map[uint64]int{},
		slotCons:   make([]uint64, c.MaxSubscribers),
		slotLost:   make([]uint64, c.MaxSubscribers),
		slotMember: make([]bool, c.MaxSubscribers),
	}
	for i := 0; i < c.MaxPublishers; i++ {
		pp := &propPub{typ: uint16(10 + i), ts: i == 1, claim: -1}
		p, err := r.NewPublisher(PublisherOptions{RecordType: pp.typ, Timestamps: pp.ts})
		if err != nil {
			t.Fatal(err)
		}
		pp.p, pp.slot = p, p.slot
		m.pubs = append(m.pubs, pp)
	}
	return m
}

func (m *propMachine) close() {
	for _, s := range m.subs {
		s.s.Close()
	}
	for _, p := range m.pubs {
		p.p.Close()
	}
}

func (m *propMachine) actions() map[string]func(*rapid.T) {
	a := map[string]func(*rapid.T){
		"":          func(*rapid.T) { m.check() },
		"offer":     func(t *rapid.T) { m.offer(t, m.pickPub(t)) },
		"offerMany": m.offerMany,
		"offerBatch": func(t *rapid.T) {
			m.offerBatch(t, m.pickPub(t))
		},
		"claimCommit": func(t *rapid.T) { m.claim(t, m.pickPub(t), 1) },
		"claimAbort":  func(t *rapid.T) { m.claim(t, m.pickPub(t), 2) },
		"claimHold":   func(t *rapid.T) { m.claim(t, m.pickPub(t), 0) },
		"resolveHeld": m.resolveHeld,
		"poll":        m.poll,
		"pollMore":    m.poll,
		"read":        m.read,
		"subscribe":   m.subscribe,
		"unsubscribe": m.unsubscribe,
	}
	return a
}

func (m *propMachine) pickPub(t *rapid.T) *propPub {
	return m.pubs[rapid.IntRange(0, len(m.pubs)-1).Draw(t, "pub")]
}

// propBytes fills n bytes from seed.
func propBytes(seed uint64, n int) []byte {
	p := make([]byte, n)
	x := seed | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x >> 24)
	}
	return p
}

func (m *propMachine) drawPayload(t *rapid.T, label string) []byte {
	max := int(m.c.MaxPayloadBytes)
	n := rapid.IntRange(0, max).Draw(t, label+"Size")
	if rapid.IntRange(0, 19).Draw(t, label+"Oversize") == 0 {
		n = max + rapid.IntRange(1, 8).Draw(t, label+"Over")
	}
	return propBytes(rapid.Uint64().Draw(t, label+"Seed"), n)
}

// ---- model of the ring ----

func (m *propMachine) add(e propEntry) int {
	m.entries = append(m.entries, e)
	m.byPos[e.pos] = len(m.entries) - 1
	return len(m.entries) - 1
}

// consumerMin is the slowest consumer's position, as publishers see it.
func (m *propMachine) consumerMin(except *propSub) (uint64, bool) {
	min, any := ^uint64(0), false
	for _, s := range m.subs {
		if s != except && s.g == nil {
			min, any = minU64(min, s.cur.pos), true
		}
	}
	for _, g := range m.groups {
		if g != nil {
			min, any = minU64(min, g.cur.pos), true
		}
	}
	return min, any
}

func minU64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

// reserve models Publisher.reserve for span bytes: it adds any padding
// claim and reports the back-pressure error, counting it.
func (m *propMachine) reserve(span uint64) error {
	capacity := m.c.CapacityBytes
	for {
		off := m.tail & (capacity - 1)
		pad := off+span > capacity
		need := span
		if pad {
			need = capacity - off
		}
		end := m.tail + need
		// No claim ends past the slowest consumer (block, reject) or any
		// claim still held by a publisher (every policy) plus capacity.
		min, any := uint64(0), false
		if m.c.Policy != PolicyDropOldest {
			min, any = m.consumerMin(nil)
		}
		if !any {
			min = m.tail
		}
		for _, p := range m.pubs {
			if p.claim >= 0 {
				min = minU64(min, m.entries[p.claim].pos)
			}
		}
		if end > min+capacity {
			m.bp++
			if m.c.Policy == PolicyReject {
				m.reject++
				return ErrFull
			}
			return ErrBackPressured
		}
		if !pad {
			return nil
		}
		m.add(propEntry{kind: propPadding, pos: m.tail, span: need})
		m.tail = end
	}
}

// oldest models Ring.oldestIntact: the first non-padding entry at or
// after tail - capacity, if it is readable.
func (m *propMachine) oldest() (int, bool) { return m.intactFrom(m.c.CapacityBytes) }

// resumePoint models Ring.resumePoint: the first non-padding entry at or
// after tail - capacity/2, else the oldest.
func (m *propMachine) resumePoint() (int, bool) {
	if i, ok := m.intactFrom(m.c.CapacityBytes / 2); ok {
		return i, ok
	}
	return m.oldest()
}

// intactFrom models Ring.intactFrom: the first non-padding entry at or
// after tail - back, if it is readable.
func (m *propMachine) intactFrom(back uint64) (int, bool) {
	lo := uint64(0)
	if m.tail > back {
		lo = m.tail - back
	}
	// The ring scans at most one maximal record past lo (and past each
	// padding it follows) for a boundary. Real histories always have one
	// there; a ring made by createAt has none before its start position.
	limit := lo + spanOf(uint64(m.c.MaxPayloadBytes)) + RecordAlignment
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].pos >= lo })
	for ; i < len(m.entries); i++ {
		e := m.entries[i]
		if e.pos > limit {
			return 0, false
		}
		switch e.kind {
		case propPadding:
			limit = e.pos + e.span + spanOf(uint64(m.c.MaxPayloadBytes)) + RecordAlignment
			continue
		case propClaimed:
			return 0, false
		}
		return i, true
	}
	return 0, false
}

// next models Subscriber.next: it moves c over padding, skips and laps
// and returns the entry of the next record, or -1.
func (m *propMachine) next(c *propCursor) (idx int, lapped bool, lost uint64) {
	capacity := m.c.CapacityBytes
	for steps := 0; ; steps++ {
		if steps > 100000 {
			m.t.Fatalf("model: no progress at %d", c.pos)
		}
		if c.pos >= m.tail {
			return -1, lapped, lost
		}
		i, known := m.byPos[c.pos]
		if m.c.Policy == PolicyDropOldest && m.tail > c.pos+capacity {
			// Overwritten. The ring believes no word at a lapped
			// position, not even a wrap padding word that survived the
			// lap (a newer lap's padding starts before it, so nothing
			// landed on it): a newer record's payload can leave the same
			// word there (TestRegressionLappedWordNamesPosition). It
			// resyncs (resumePoint), or stays put until a resume point is
			// provable.
			q, ok := m.resumePoint()
			if !ok {
				return -1, lapped, lost
			}
			e := m.entries[q]
			if c.expect != unknownSeq && e.seq > c.expect {
				lost += e.seq - c.expect
			}
			lapped = true
			c.pos, c.expect = e.pos, e.seq
			continue
		}
		if !known {
			m.t.Fatalf("model: consumer at %d, which is no entry", c.pos)
		}
		e := m.entries[i]
		switch e.kind {
		case propClaimed:
			return -1, lapped, lost
		case propPadding:
			c.pos += e.span
			continue
		case propSkip:
			c.pos, c.expect = e.pos+e.span, e.seq+1
			continue
		}
		if c.expect == unknownSeq {
			c.expect = e.seq
		}
		return i, lapped, lost
	}
}

// opensGap reports whether losing lost records reports a lap
// (ErrLapped, Counters.Lapped): only if it loses some, and for a broadcast
// subscriber only if no gap is open already (gap: records were lost since
// its last delivery).
func (s *propSub) opensGap(gap bool, lost uint64) bool {
	return lost > 0 && (s.g != nil || !gap)
}

// cursorOf returns the cursor a subscriber reads through.
func (s *propSub) cursor() *propCursor {
	if s.g != nil {
		return &s.g.cur
	}
	return &s.cur
}

func (m *propMachine) deliver(s *propSub, i int) {
	e := m.entries[i]
	c := s.cursor()
	c.pos, c.expect = e.pos+e.span, e.seq+1
	s.consumed++
	m.slotCons[s.slot]++
}

func (m *propMachine) noteLap(s *propSub, lapped bool, lost uint64) {
	if lapped {
		s.lapPending = true
	}
	s.lost += lost
	if s.g == nil { // a member's losses are its group's
		m.slotLost[s.slot] += lost
	}
	if s.g != nil {
		s.g.lost += lost
		m.groupLost[s.g.slot] += lost
	}
}

// ---- actions ----

func (m *propMachine) offer(t *rapid.T, p *propPub) {
	payload := m.drawPayload(t, "payload")
	span := spanOf(uint64(len(payload)))
	err := p.p.Offer(payload)
	switch {
	case p.claim >= 0:
		if !errors.Is(err, ErrClaimOutstanding) {
			t.Fatalf("offer with a claim outstanding: %v", err)
		}
		return
	case len(payload) > int(m.c.MaxPayloadBytes):
		var se *SizeError
		if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) || se.PayloadBytes != len(payload) || se.MaxPayloadBytes != int(m.c.MaxPayloadBytes) {
			t.Fatalf("offer of %d bytes: %v", len(payload), err)
		}
		return
	}
	want := m.reserve(span)
	if err != want {
		t.Fatalf("offer of %d bytes at tail %d: err %v, model says %v (consumers at %v)", len(payload), m.tail, err, want, m.consumerPositions())
	}
	if err != nil {
		return
	}
	m.add(propEntry{kind: propRecord, pos: m.tail, span: span, seq: m.seq, pub: p.slot, typ: p.typ, payload: payload})
	m.tail += span
	m.seq++
}

func (m *propMachine) offerMany(t *rapid.T) {
	n := rapid.IntRange(1, 12).Draw(t, "count")
	for i := 0; i < n; i++ {
		p := m.pickPub(t)
		if p.claim >= 0 {
			return
		}
		m.offer(t, p)
	}
}

func (m *propMachine) offerBatch(t *rapid.T, p *propPub) {
	n := rapid.IntRange(1, 6).Draw(t, "batch")
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = m.drawPayload(t, "batchPayload")
	}
	// Model OfferBatch's choice of k: up to a quarter of the capacity,
	// stopping before an oversized payload.
	k, span := 0, uint64(0)
	for _, pl := range payloads {
		if len(pl) > int(m.c.MaxPayloadBytes) {
			break
		}
		s := spanOf(uint64(len(pl)))
		if k > 0 && span+s > m.c.CapacityBytes/4 {
			break
		}
		span += s
		k++
	}
	got, err := p.p.OfferBatch(payloads)
	switch {
	case p.claim >= 0:
		if got != 0 || !errors.Is(err, ErrClaimOutstanding) {
			t.Fatalf("batch with a claim outstanding: %d, %v", got, err)
		}
		return
	case k == 0:
		if got != 0 || !errors.Is(err, ErrTooLarge) {
			t.Fatalf("batch starting with %d bytes: %d, %v", len(payloads[0]), got, err)
		}
		return
	}
	want := m.reserve(span)
	if err != want {
		t.Fatalf("batch of %d (%d bytes) at tail %d: %d, %v; model says %v (consumers at %v)", k, span, m.tail, got, err, want, m.consumerPositions())
	}
	if err != nil {
		if got != 0 {
			t.Fatalf("failed batch reports %d published", got)
		}
		return
	}
	if got != k {
		t.Fatalf("batch published %d, model says %d", got, k)
	}
	for _, pl := range payloads[:k] {
		s := spanOf(uint64(len(pl)))
		m.add(propEntry{kind: propRecord, pos: m.tail, span: s, seq: m.seq, pub: p.slot, typ: p.typ, payload: pl})
		m.tail += s
		m.seq++
	}
}

// claim does TryClaim and then commits (how 1), aborts (2) or holds (0).
func (m *propMachine) claim(t *rapid.T, p *propPub, how int) {
	payload := m.drawPayload(t, "claim")
	span := spanOf(uint64(len(payload)))
	buf, err := p.p.TryClaim(len(payload))
	switch {
	case p.claim >= 0:
		if buf != nil || !errors.Is(err, ErrClaimOutstanding) {
			t.Fatalf("second claim: %v", err)
		}
		return
	case len(payload) > int(m.c.MaxPayloadBytes):
		if buf != nil || !errors.Is(err, ErrTooLarge) {
			t.Fatalf("claim of %d bytes: %v", len(payload), err)
		}
		return
	}
	want := m.reserve(span)
	if err != want {
		t.Fatalf("claim of %d bytes at tail %d: %v, model says %v", len(payload), m.tail, err, want)
	}
	if err != nil {
		return
	}
	if len(buf) != len(payload) || cap(buf) != len(payload) {
		t.Fatalf("claim of %d bytes returned len %d cap %d", len(payload), len(buf), cap(buf))
	}
	copy(buf, payload)
	i := m.add(propEntry{kind: propClaimed, pos: m.tail, span: span, seq: m.seq, pub: p.slot, typ: p.typ, payload: payload})
	m.tail += span
	m.seq++
	p.claim = i
	if how != 0 {
		m.resolve(t, p, how == 1)
	}
}

func (m *propMachine) resolve(t *rapid.T, p *propPub, commit bool) {
	var err error
	if commit {
		err = p.p.Commit()
	} else {
		err = p.p.Abort()
	}
	if p.claim < 0 {
		if !errors.Is(err, ErrNoClaim) {
			t.Fatalf("commit/abort without a claim: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("commit=%v: %v", commit, err)
	}
	if commit {
		m.entries[p.claim].kind = propRecord
	} else {
		m.entries[p.claim].kind = propSkip
	}
	p.claim = -1
}

func (m *propMachine) resolveHeld(t *rapid.T) {
	m.resolve(t, m.pickPub(t), rapid.Bool().Draw(t, "commit"))
}

func (m *propMachine) pickSub(t *rapid.T) *propSub {
	if len(m.subs) == 0 {
		t.Skip("no subscribers")
	}
	return m.subs[rapid.IntRange(0, len(m.subs)-1).Draw(t, "sub")]
}

func (m *propMachine) checkRecord(where string, got Record, data []byte, i int) {
	e := m.entries[i]
	if got.Position != e.pos || got.Sequence != e.seq || got.Type != e.typ || int(got.Publisher) != e.pub || !bytes.Equal(data, e.payload) {
		m.t.Fatalf("%s: got record pos %d seq %d type %d pub %d (%d bytes), model has pos %d seq %d type %d pub %d (%d bytes, equal=%v)",
			where, got.Position, got.Sequence, got.Type, got.Publisher, len(data), e.pos, e.seq, e.typ, e.pub, len(e.payload), bytes.Equal(data, e.payload))
	}
	if stamped := got.TimestampNS != 0; stamped != m.pubs[e.pub].ts {
		m.t.Fatalf("%s: record seq %d timestamp %d, publisher stamps: %v", where, e.seq, got.TimestampNS, m.pubs[e.pub].ts)
	}
}

func (m *propMachine) poll(t *rapid.T) {
	s := m.pickSub(t)
	limit := rapid.IntRange(0, 8).Draw(t, "limit")
	var want []int
	lapped, lost := false, uint64(0)
	cur := *s.cursor() // dry run first: next may skip the action
	c := &cur
	gap := s.gap
	for len(want) < limit {
		i, _, n := m.next(c)
		lapped, gap, lost = lapped || s.opensGap(gap, n), gap || n > 0, lost+n
		if i < 0 {
			break
		}
		want = append(want, i)
		gap = false
		e := m.entries[i]
		c.pos, c.expect = e.pos+e.span, e.seq+1
	}
	*s.cursor() = cur
	s.gap = gap
	k := 0
	n, err := s.s.Poll(func(rec Record) {
		if k >= len(want) {
			t.Fatalf("poll delivered record %d (seq %d), model expects only %d", k, rec.Sequence, len(want))
		}
		m.checkRecord(fmt.Sprintf("poll record %d", k), rec, rec.Payload, want[k])
		k++
	}, limit)
	for range want {
		s.consumed++
		m.slotCons[s.slot]++
	}
	m.noteLap(s, lapped, lost)
	var wantErr error
	if s.lapPending {
		wantErr = ErrLapped
		s.lapPending = false
	}
	if n != len(want) || k != n || err != wantErr {
		t.Fatalf("poll(limit %d): %d delivered (%d to handler), err %v; model: %d, %v", limit, n, k, err, len(want), wantErr)
	}
}

func (m *propMachine) read(t *rapid.T) {
	s := m.pickSub(t)
	size := int(m.c.MaxPayloadBytes)
	// A too-small buffer leaves the record unread, for broadcast
	// subscribers and queue-group members alike.
	if rapid.Bool().Draw(t, "short") {
		size = rapid.IntRange(0, size).Draw(t, "bufSize")
	}
	buf := make([]byte, size)
	cur := *s.cursor() // dry run first: next may skip the action
	i, _, lost := m.next(&cur)
	*s.cursor() = cur
	lapped := s.opensGap(s.gap, lost)
	s.gap = s.gap || lost > 0
	m.noteLap(s, lapped, lost)
	n, rec, err := s.s.Read(buf)
	switch {
	case i < 0:
		var wantErr error
		if s.lapPending {
			wantErr, s.lapPending = ErrLapped, false
		}
		if n != 0 || err != wantErr || rec.Position != 0 || rec.Payload != nil {
			t.Fatalf("read with nothing to read: %d, %+v, %v; want %v", n, rec, err, wantErr)
		}
	case len(m.entries[i].payload) > size:
		if n != 0 || !errors.Is(err, ErrShortBuffer) {
			t.Fatalf("read of %d bytes into %d: %d, %v", len(m.entries[i].payload), size, n, err)
		}
	default:
		// A record read right after a lap comes with ErrLapped.
		var wantErr error
		if s.lapPending {
			wantErr, s.lapPending = ErrLapped, false
		}
		if err != wantErr || n != len(m.entries[i].payload) || n > 0 && &rec.Payload[0] != &buf[0] {
			t.Fatalf("read: %d, %v; model: %d bytes, %v", n, err, len(m.entries[i].payload), wantErr)
		}
		m.checkRecord("read", rec, buf[:n], i)
		m.deliver(s, i)
		s.gap = false
	}
}

func (m *propMachine) consumerPositions() []uint64 {
	var ps []uint64
	for _, s := range m.subs {
		ps = append(ps, s.cursor().pos)
	}
	return ps
}

func (m *propMachine) subscribe(t *rapid.T) {
	var o SubscriberOptions
	if m.c.Kind == MPMC && rapid.Bool().Draw(t, "group") {
		o.Group = uint32(rapid.IntRange(1, 3).Draw(t, "groupID"))
	} else if rapid.Bool().Draw(t, "fromOldest") {
		o.From = FromOldest
	}
	// Model the start first: oldest may skip the action.
	start := propCursor{m.tail, m.seq}
	if o.Group == 0 && o.From == FromOldest {
		if m.c.Policy == PolicyDropOldest {
			if i, ok := m.oldest(); ok {
				start = propCursor{m.entries[i].pos, m.entries[i].seq}
			}
		} else if min, any := m.consumerMin(nil); any && min < m.tail {
			start = propCursor{min, unknownSeq}
		}
	}
	s, err := m.r.NewSubscriber(o)

	slot := -1
	taken := make([]bool, m.c.MaxSubscribers)
	for _, ps := range m.subs {
		taken[ps.slot] = true
	}
	for i, used := range taken {
		if !used {
			slot = i
			break
		}
	}
	if slot < 0 {
		if s != nil || !errors.Is(err, ErrNoSlot) {
			t.Fatalf("subscribe with all %d slots taken: %v", m.c.MaxSubscribers, err)
		}
		return
	}
	// The slot's counters are cumulative across its owners.
	m.slotMember[slot] = false
	ps := &propSub{slot: slot}
	if o.Group != 0 {
		var g *propGroup
		free := -1
		for i, gg := range m.groups {
			if gg != nil && gg.id == o.Group {
				g = gg
			}
			if gg == nil && free < 0 {
				free = i
			}
		}
		if g == nil && free < 0 {
			if s != nil || !errors.Is(err, ErrNoSlot) {
				t.Fatalf("join group %d with all group slots taken: %v", o.Group, err)
			}
			return
		}
		if g == nil {
			// The slot's lost count carries over from its earlier groups.
			g = &propGroup{id: o.Group, slot: free, cur: propCursor{m.tail, m.seq}, lost: m.groupLost[free]}
			m.groups[free] = g
		}
		g.members++
		ps.g = g
		m.slotMember[slot] = true
	} else {
		ps.cur = start
	}
	if err != nil {
		t.Fatalf("subscribe %+v: %v", o, err)
	}
	ps.s = s
	if s.slot != slot || (ps.g != nil && s.groupSlot() != ps.g.slot) {
		t.Fatalf("subscriber took slot %d (group slot %d), model says %d", s.slot, s.groupSlot(), slot)
	}
	m.subs = append(m.subs, ps)
}

func (m *propMachine) unsubscribe(t *rapid.T) {
	s := m.pickSub(t)
	if err := s.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if n, err := s.s.Poll(func(Record) {}, 1); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("poll after close: %d, %v", n, err)
	}
	for i, x := range m.subs {
		if x == s {
			m.subs = append(m.subs[:i], m.subs[i+1:]...)
			break
		}
	}
	if g := s.g; g != nil {
		g.members--
		if g.members == 0 {
			m.groups[g.slot] = nil
		}
	}
}

// check compares counters and per-subscriber state with the model.
func (m *propMachine) check() {
	t := m.t
	c := m.r.Counters()
	var consumed, lost, groupLost uint64
	for i := range m.slotCons {
		consumed += m.slotCons[i]
		lost += m.slotLost[i]
	}
	for _, l := range m.groupLost {
		groupLost += l
	}
	if c.Published != m.seq || c.TailPosition != m.tail || c.BackPressure != m.bp || c.Rejected != m.reject || c.Consumed != consumed {
		t.Fatalf("counters: published %d tail %d back-pressure %d rejected %d consumed %d; model %d %d %d %d %d",
			c.Published, c.TailPosition, c.BackPressure, c.Rejected, c.Consumed, m.seq, m.tail, m.bp, m.reject, consumed)
	}
	if c.Lost != lost+groupLost {
		t.Fatalf("counters: lost %d, model %d (%d of them by queue groups)", c.Lost, lost+groupLost, groupLost)
	}
	if c.Wakeups != 0 || c.Waits != 0 || c.Unblocked != 0 || c.Reaped != 0 {
		t.Fatalf("counters: wakeups %d waits %d unblocked %d reaped %d with nobody asleep or dead", c.Wakeups, c.Waits, c.Unblocked, c.Reaped)
	}
	if c.Subscribers != len(m.subs) || c.Publishers != len(m.pubs) {
		t.Fatalf("counters: %d subscribers %d publishers, model %d %d", c.Subscribers, c.Publishers, len(m.subs), len(m.pubs))
	}
	if min, any := m.consumerMin(nil); any && c.SlowestLag != m.tail-min || !any && c.SlowestLag != 0 {
		t.Fatalf("counters: slowest lag %d, model tail %d min %d (%v)", c.SlowestLag, m.tail, min, any)
	}
	if m.r.TailPosition() != m.tail {
		t.Fatalf("tail %d, model %d", m.r.TailPosition(), m.tail)
	}
	for _, s := range m.subs {
		if p := s.s.Position(); p != s.cursor().pos {
			t.Fatalf("subscriber in slot %d at %d, model %d", s.slot, p, s.cursor().pos)
		}
		if s.s.Lost() != s.lost || s.s.Consumed() != s.consumed {
			t.Fatalf("subscriber in slot %d: lost %d consumed %d, model %d %d", s.slot, s.s.Lost(), s.s.Consumed(), s.lost, s.consumed)
		}
		if s.g != nil && s.s.groupLost() != s.g.lost {
			t.Fatalf("group %d lost %d, model %d", s.g.id, s.s.groupLost(), s.g.lost)
		}
		if m.c.Policy != PolicyDropOldest && m.tail-s.cursor().pos > m.c.CapacityBytes {
			t.Fatalf("block/reject: a consumer fell %d bytes behind", m.tail-s.cursor().pos)
		}
	}
}
