package ringbuf

// Waiting for records: the data doorbell protocol.
//
// Each ring has one data doorbell (a 32-bit futex word, dataBellOffset)
// and a count of subscribers asleep on it (dataWaitersOffset), both in the
// consumer area. Invariants:
//   - A publisher commits a record (the store of its state word), then
//     loads the waiter count; only if it is non-zero does it bump the
//     doorbell and FUTEX_WAKE (Ring.notifyData). Nothing else, so with no
//     sleeper a commit makes no syscall.
//   - A sleeper (WaitSet.park) increments the waiter count of every ring it
//     will sleep on, reads each doorbell, runs one membarrier (heavyFence,
//     see proc.go), and only then re-checks the rings and sleeps with the
//     values it read. It decrements the counts only when it stops sleeping.
//
// No lost wakeup: take a record R committed on ring k after the sleeper's
// re-check found nothing there. The membarrier made every registered
// thread run a full barrier, so R's publisher either had R's store
// visible before the barrier (then the re-check, which comes after it,
// would have seen R: contradiction) or loads the waiter count after the
// barrier, and then sees the sleeper's increment, which stays in place
// until the sleeper stops sleeping: it bumps doorbell k, which then no
// longer holds the value the sleeper read, so the sleeper's futex wait
// returns at once or is woken. (Processes that could not register for
// membarrier commit with a fenced store instead, which orders the pair
// from their side.) The argument holds for every sleep the sleeper makes
// while it stays announced with the same doorbell values, not just the
// first: so a sleeper whose sleep merely timed out (to look for a dead
// publisher's claim) sleeps again with no new membarrier, and an idle
// subscriber makes one futex call about every idleParkCap and no
// membarrier at all. A 32-bit doorbell that advances exactly 2^32 times
// between the read and the wait would pass for unchanged; at one bump per
// commit that takes billions of records within one sleep, and the sleep
// is bounded anyway.
//
// The IPIs of a membarrier go to every CPU running a registered thread,
// publishers included, so a sleeper fences once per park (once per
// record at worst, when records arrive just slower than it parks), never
// per idle wakeup.

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// WaitStrategy is how a consumer waits for records, in the vocabulary of
// the LMAX Disruptor and Aeron idle strategies.
type WaitStrategy int

const (
	// BusySpin polls in a tight loop: lowest latency, one core at 100%.
	BusySpin WaitStrategy = iota
	// Yield polls and gives the processor to another runnable thread
	// between polls (sched_yield(2)); with none runnable, it polls on.
	Yield
	// Backoff spins for SpinBudget polls, then yields for YieldBudget
	// polls, then parks on the ring's futex doorbell.
	Backoff
	// Blocking parks on the futex doorbell as soon as nothing is ready.
	Blocking
)

func (w WaitStrategy) String() string {
	switch w {
	case BusySpin:
		return "busy-spin"
	case Yield:
		return "yield"
	case Backoff:
		return "backoff"
	case Blocking:
		return "blocking"
	}
	return "unknown"
}

// ParseWaitStrategy parses "busy-spin", "yield", "backoff" or "blocking".
func ParseWaitStrategy(s string) (WaitStrategy, bool) {
	for w := BusySpin; w <= Blocking; w++ {
		if w.String() == s {
			return w, true
		}
	}
	return 0, false
}

// idleParkCap bounds one sleep of a parked consumer, so that it still
// looks for dead publishers' claims and notices what rings no doorbell
// (a cursor moved by another process). With a claim in flight at a
// consumer's position, the bound is a quarter of that ring's unblock
// timeout instead, if shorter, so a dead claimant is found in time. A
// variable only so that tests can take the bound away (a lost wakeup
// then hangs instead of costing 100 ms).
var idleParkCap = 100 * time.Millisecond

// fallbackSlice bounds each sleep on one doorbell when a WaitSet of
// several rings cannot use futex_waitv (a kernel before 5.16, or more
// than 128 rings): it takes turns over the doorbells.
const fallbackSlice = 2 * time.Millisecond

// PollWait is Poll that waits, with the subscriber's wait strategy, until
// at least one record is delivered, an error occurs, or timeout passes
// (then it returns 0 and ErrTimeout). Parking follows the doorbell
// protocol described in wait.go: a publisher's commit can never fall
// between the subscriber's last check and its sleep unnoticed (no lost
// wakeup). To wait on several rings at once, use a WaitSet.
func (s *Subscriber) PollWait(h Handler, limit int, timeout time.Duration) (int, error) {
	deadline := nanotime() + int64(timeout)
	for i := 0; ; i++ {
		n, err := s.Poll(h, limit)
		if n > 0 || err != nil {
			return n, err
		}
		if err := s.self.Idle(i, deadline, nil); err != nil {
			return 0, err
		}
	}
}

// WaitSet waits for records on several subscribers at once, for one
// goroutine that polls them all in turn (a client subscriber reading many
// partitions): a park sleeps on every ring's data doorbell in one
// futex_waitv(2) call, so an idle reader of N rings costs what an idle
// reader of one does (about ten futex calls a second, no membarrier).
// On kernels without futex_waitv (before Linux 5.16) and for more than
// 128 subscribers it takes turns sleeping on each doorbell for at most
// 2 ms, still without a lost wakeup, at the cost of more wakeups.
//
// The set waits with the first subscriber's wait strategy and budgets
// (SubscriberOptions.Wait, SpinBudget, YieldBudget). Its sleeps and
// membarrier calls are counted once each, in the first subscriber's slot
// (Counters.Waits and Counters.Fences), so sums over the rings count
// syscalls exactly. A WaitSet is used by the goroutine that polls its
// subscribers, under the same rule as they are; it must not outlive
// them (it holds no slot of its own, and Close needs nothing).
type WaitSet struct {
	subs  []*Subscriber
	bells []uint32      // each doorbell as read before the fence of a park
	vec   []futexWaiter // the same, for futex_waitv; nil if not usable
	turn  int           // fallback: the doorbell slept on next
	ts    unix.Timespec
}

// NewWaitSet returns a WaitSet over subs (not copied: the caller must not
// change the slice). Errors: ErrConfig if subs is empty or holds a
// nil subscriber.
func NewWaitSet(subs []*Subscriber) (*WaitSet, error) {
	if len(subs) == 0 {
		return nil, fmt.Errorf("%w: a wait set needs at least one subscriber", ErrConfig)
	}
	for _, s := range subs {
		if s == nil {
			return nil, fmt.Errorf("%w: nil subscriber in a wait set", ErrConfig)
		}
	}
	return newWaitSet(subs), nil
}

func newWaitSet(subs []*Subscriber) *WaitSet {
	w := &WaitSet{subs: subs, bells: make([]uint32, len(subs))}
	if len(subs) > 1 && len(subs) <= futexWaitvMax {
		w.vec = make([]futexWaiter, len(subs))
		for i, s := range subs {
			w.vec[i] = futexWaiter{uaddr: s.r.m.futexWord(dataBellOffset), flags: futex2SizeU32}
		}
	}
	return w
}

// Idle waits once, with the set's wait strategy, after the i-th
// consecutive round of empty polls of its subscribers (i counts from 0
// and restarts when a poll delivers): busy-spin returns at once, yield
// gives the processor away, backoff spins for SpinBudget rounds, yields
// for YieldBudget rounds and then parks, blocking parks. A park returns
// when a record may be ready on one of the rings (the caller polls them
// all), when deadline passes, or when done is closed (nil: never), and
// otherwise sleeps on: done is looked at only when a sleep ends, at
// least every 100 ms. deadline is in MonotonicNS units.
//
// Errors: ErrTimeout once deadline has passed (looked at every 64 rounds
// while spinning or yielding, before every park); after a sleep, what
// Poll's stall check reports on one of the rings (ErrStalled, ErrDeleted,
// a *CorruptError), any other error before ErrStalled. No allocation.
func (w *WaitSet) Idle(i int, deadline int64, done <-chan struct{}) error {
	o := &w.subs[0].opts
	park := false
	switch o.Wait {
	case BusySpin:
	case Yield:
		osYield()
	case Backoff:
		switch {
		case i < o.SpinBudget:
		case i < o.SpinBudget+o.YieldBudget:
			osYield()
		default:
			park = true
		}
	default:
		park = true
	}
	if !park {
		if i&63 == 0 && nanotime() >= deadline {
			return ErrTimeout
		}
		return nil
	}
	if nanotime() >= deadline {
		return ErrTimeout
	}
	return w.park(deadline, done)
}

// park announces the sleeper on every ring, fences once, and sleeps
// until a doorbell rings, a record is ready, the deadline passes or done
// is closed, re-sleeping after timeouts without a new fence (see the
// argument at the top of this file).
func (w *WaitSet) park(deadline int64, done <-chan struct{}) error {
	for i, s := range w.subs {
		s.r.m.cu32(dataWaitersOffset).Add(1) // announce before the re-check
		w.bells[i] = s.r.m.cu32(dataBellOffset).Load()
		if w.vec != nil {
			w.vec[i].val = uint64(w.bells[i])
		}
	}
	heavyFence() // publishers' plain commit stores are visible past this point
	w.subs[0].count(subFencesOffset)
	err := w.sleep(deadline, done)
	for _, s := range w.subs {
		s.r.m.cu32(dataWaitersOffset).Add(^uint32(0))
	}
	return err
}

// sleep is park's loop, while announced.
func (w *WaitSet) sleep(deadline int64, done <-chan struct{}) error {
	for {
		for _, s := range w.subs {
			if s.ready() {
				return nil
			}
		}
		now := nanotime()
		if now >= deadline || closed(done) {
			return nil
		}
		until := min(deadline, now+int64(w.sleepCap()))
		w.subs[0].count(subWaitsOffset)
		w.wait(now, until)
		rang := w.rang()
		err := w.checkStuck()
		if rang || err != nil {
			return err
		}
	}
}

// sleepCap is how long one sleep may last (see idleParkCap).
func (w *WaitSet) sleepCap() time.Duration {
	d := idleParkCap
	for _, s := range w.subs {
		if r := s.r; r.TailPosition() > s.Position() {
			d = min(d, r.unblockTimeout/4)
		}
	}
	return d
}

// wait makes one sleep on the doorbells, until at most until.
func (w *WaitSet) wait(now, until int64) {
	if w.vec != nil && futexWaitv(w.vec, until, &w.ts) {
		return
	}
	i := 0
	d := time.Duration(until - now)
	if len(w.subs) > 1 {
		i = w.turn % len(w.subs)
		w.turn++
		d = min(d, fallbackSlice)
	}
	futexSleep(w.subs[i].r.m.futexAddr(dataBellOffset), w.bells[i], d, &w.ts)
}

// rang reports whether some doorbell moved since the park read it.
func (w *WaitSet) rang() bool {
	for i, s := range w.subs {
		if s.r.m.cu32(dataBellOffset).Load() != w.bells[i] {
			return true
		}
	}
	return false
}

// checkStuck runs every subscriber's forced stall check and returns the
// most telling outcome: any error but ErrStalled first.
func (w *WaitSet) checkStuck() error {
	var stalled error
	for _, s := range w.subs {
		switch err := s.checkStuck(true); err {
		case nil:
		case ErrStalled:
			stalled = err
		default:
			return err
		}
	}
	return stalled
}

// closed reports whether done is closed; a nil done never is.
func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
