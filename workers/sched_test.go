package workers

import (
	"testing"

	"pgregory.net/rapid"
)

// TestSchedProperties drives the scheduler with random pushes and pops
// and checks, against plain bookkeeping:
//   - pop returns a task exactly when one is queued, and respects depth;
//   - tasks of one level come out in the order they went in (FIFO);
//   - a level that stays backlogged waits at most
//     (S - 2^p) + (2^levels - 2^(p+1)) other picks between its tasks,
//     S = 2^levels - 1 (no starvation; the bound in sched.go).
func TestSchedProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		levels := rapid.IntRange(1, 5).Draw(t, "levels")
		depth := rapid.IntRange(1, 8).Draw(t, "depth")
		s := newSched(levels, depth)
		fifo := make([][]int, levels) // model: ids queued per level
		waited := make([]int, levels) // picks of other levels since this level's last pick while backlogged
		next := 0
		var got int
		S := 1<<levels - 1
		for range rapid.IntRange(1, 300).Draw(t, "ops") {
			if rapid.IntRange(0, 2).Draw(t, "op") < 2 { // push (more pushes than pops keeps levels backlogged)
				l := rapid.IntRange(0, levels-1).Draw(t, "level")
				id := next
				next++
				ok := s.push(l, func() { got = id })
				if ok != (len(fifo[l]) < depth) {
					t.Fatalf("push level %d with %d queued of %d: ok=%v", l, len(fifo[l]), depth, ok)
				}
				if ok {
					fifo[l] = append(fifo[l], id)
				}
				continue
			}
			total := 0
			for _, q := range fifo {
				total += len(q)
			}
			task, l := s.pop()
			if (task != nil) != (total > 0) {
				t.Fatalf("pop with %d queued: task %v", total, task != nil)
			}
			if task == nil {
				continue
			}
			task()
			if len(fifo[l]) == 0 || fifo[l][0] != got {
				t.Fatalf("level %d gave task %d, FIFO head %v", l, got, fifo[l])
			}
			fifo[l] = fifo[l][1:]
			for p := range levels {
				switch {
				case p == l:
					waited[p] = 0
				case len(fifo[p]) > 0:
					waited[p]++
					if bound := (S - 1<<p) + (1<<levels - 1<<(p+1)); waited[p] > bound {
						t.Fatalf("level %d backlogged waited %d picks, bound %d", p, waited[p], bound)
					}
				default:
					waited[p] = 0
				}
			}
			if s.pending != total-1 {
				t.Fatalf("pending %d, want %d", s.pending, total-1)
			}
		}
	})
}

// TestSchedShares: with every level backlogged, each cycle of S picks
// gives level p exactly 2^p of them, higher levels first.
func TestSchedShares(t *testing.T) {
	for levels := 1; levels <= 4; levels++ {
		s := newSched(levels, 1000)
		for l := range levels {
			for range 1000 {
				s.push(l, func() {})
			}
		}
		S := 1<<levels - 1
		for cycle := range 10 {
			count := make([]int, levels)
			var order []int
			for range S {
				_, l := s.pop()
				count[l]++
				order = append(order, l)
			}
			for l := range levels {
				if count[l] != 1<<l {
					t.Fatalf("levels %d cycle %d: level %d got %d picks, want %d (order %v)", levels, cycle, l, count[l], 1<<l, order)
				}
			}
			for i := 1; i < len(order); i++ {
				if order[i] > order[i-1] {
					t.Fatalf("levels %d cycle %d: order %v not highest first", levels, cycle, order)
				}
			}
		}
	}
}

// TestSchedWorkConserving: a lone backlogged level takes every pick.
func TestSchedWorkConserving(t *testing.T) {
	s := newSched(3, 100)
	for range 50 {
		s.push(0, func() {})
	}
	for i := range 50 {
		if task, l := s.pop(); task == nil || l != 0 {
			t.Fatalf("pick %d: %v level %d", i, task != nil, l)
		}
	}
	if task, _ := s.pop(); task != nil {
		t.Fatal("pop from empty")
	}
}
