package ringbuf

import (
	"runtime"
	"time"
)

// WaitStrategy is how a consumer waits for records, in the vocabulary of
// the LMAX Disruptor and Aeron idle strategies.
type WaitStrategy int

const (
	// BusySpin polls in a tight loop: lowest latency, one core at 100%.
	BusySpin WaitStrategy = iota
	// Yield polls and yields the processor between polls.
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

// PollWait is Poll that waits, with the subscriber's wait strategy, until
// at least one record is delivered, an error occurs, or timeout passes
// (then it returns 0 and ErrTimeout). A sleeping subscriber is counted in
// the ring's waiter count before it re-checks the ring and sleeps, so a
// publisher's commit can never fall between the check and the sleep
// unnoticed (no lost wakeup).
func (s *Subscriber) PollWait(h Handler, limit int, timeout time.Duration) (int, error) {
	deadline := nanotime() + int64(timeout)
	for i := 0; ; i++ {
		n, err := s.Poll(h, limit)
		if n > 0 || err != nil {
			return n, err
		}
		if i&63 == 0 && nanotime() >= deadline {
			return 0, ErrTimeout
		}
		switch s.opts.Wait {
		case BusySpin:
		case Yield:
			runtime.Gosched()
		case Backoff:
			switch {
			case i < s.opts.SpinBudget:
			case i < s.opts.SpinBudget+s.opts.YieldBudget:
				runtime.Gosched()
			default:
				if err := s.park(deadline); err != nil {
					return 0, err
				}
			}
		case Blocking:
			if err := s.park(deadline); err != nil {
				return 0, err
			}
		}
	}
}

// park sleeps on the data doorbell until a publisher rings it, the
// deadline, or a quarter of the unblock timeout (so stalled claims are
// still checked).
func (s *Subscriber) park(deadline int64) error {
	r := s.r
	waiters := r.m.u32(dataWaitersOffset)
	bell := r.m.u32(dataBellOffset)
	waiters.Add(1) // announce before the re-check
	v := bell.Load()
	heavyFence() // publishers' plain commit stores are visible past this point
	if s.ready() {
		waiters.Add(^uint32(0))
		return nil
	}
	now := nanotime()
	if now >= deadline {
		waiters.Add(^uint32(0))
		return nil
	}
	d := time.Duration(deadline - now)
	if q := r.unblockTimeout / 4; d > q {
		d = q
	}
	s.count(subWaitsOffset)
	futexSleep(r.m.futexAddr(dataBellOffset), v, d, &s.ts)
	waiters.Add(^uint32(0))
	return s.checkStuck(true)
}
