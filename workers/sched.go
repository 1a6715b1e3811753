package workers

// sched picks which priority level a worker serves next: weighted round
// robin over the levels that have tasks.
//
// Level p (0 lowest, levels-1 highest) has weight 2^p. A cycle gives every
// level credits equal to its weight; each pick takes the highest level
// that has both a queued task and a credit left, and spends one credit.
// When no level with tasks has credit, a new cycle starts. So:
//
//   - while several levels are backlogged, a higher one is served first
//     within each cycle, and over a cycle level p gets exactly 2^p of the
//     S = 2^levels - 1 picks (with three levels: 4 of 7 to level 2, 2 to
//     level 1, 1 to level 0);
//   - no level starves: a backlogged level p waits at most
//     (S - 2^p) + (2^levels - 2^(p+1)) picks between two of its tasks (the
//     rest of a cycle, then the higher levels of the next);
//   - idle levels' credits are not carried over (no bursts after idling),
//     and a lone backlogged level takes every pick (work conserving);
//   - tasks of one level run in the order they were spawned (FIFO).
//
// sched is not safe for concurrent use; Pool guards it with its mutex.
type sched struct {
	queues  []taskRing
	credits []int
	pending int // tasks queued in all levels
}

// taskRing is a fixed-capacity FIFO of tasks.
type taskRing struct {
	buf        []func()
	head, size int
}

func newSched(levels, depth int) *sched {
	s := &sched{queues: make([]taskRing, levels), credits: make([]int, levels)}
	for i := range s.queues {
		s.queues[i].buf = make([]func(), depth)
	}
	s.refill()
	return s
}

func weight(level int) int { return 1 << level }

func (s *sched) refill() {
	for i := range s.credits {
		s.credits[i] = weight(i)
	}
}

// push queues task at level; false if that level's queue is full.
func (s *sched) push(level int, task func()) bool {
	q := &s.queues[level]
	if q.size == len(q.buf) {
		return false
	}
	q.buf[(q.head+q.size)%len(q.buf)] = task
	q.size++
	s.pending++
	return true
}

// pop returns the next task and its level, or nil, -1 if none is queued.
func (s *sched) pop() (func(), int) {
	if s.pending == 0 {
		return nil, -1
	}
	for round := 0; round < 2; round++ {
		for l := len(s.queues) - 1; l >= 0; l-- {
			q := &s.queues[l]
			if q.size == 0 || s.credits[l] == 0 {
				continue
			}
			s.credits[l]--
			t := q.buf[q.head]
			q.buf[q.head] = nil
			q.head = (q.head + 1) % len(q.buf)
			q.size--
			s.pending--
			return t, l
		}
		s.refill() // every level with tasks spent its credit: next cycle
	}
	panic("workers: sched: tasks pending but none found") // unreachable: refill gives every level credit
}

// queued returns the tasks queued at level.
func (s *sched) queued(level int) int { return s.queues[level].size }
