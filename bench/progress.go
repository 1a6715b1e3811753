package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress is a one-line progress bar over a run's cases, redrawn in
// place with a carriage return. Safe for concurrent use.
type Progress struct {
	mu          sync.Mutex
	w           io.Writer
	total, done int
	start       time.Time
	width       int
	plain       bool // one line per step (not a terminal)
}

// NewProgress writes a bar to w (typically os.Stderr).
func NewProgress(w io.Writer) *Progress {
	p := &Progress{w: w, start: time.Now(), width: 30}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			p.plain = true
		}
	}
	return p
}

// Add adds n cases to the total.
func (p *Progress) Add(n int) {
	p.mu.Lock()
	p.total += n
	p.mu.Unlock()
}

// Step marks the start of the next case, named what.
func (p *Progress) Step(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if p.plain {
		fmt.Fprintln(p.w, p.line(what))
		return
	}
	fmt.Fprint(p.w, "\r\033[K"+p.line(what))
}

func (p *Progress) line(what string) string {
	total := max(p.total, 1)
	fill := min(max(p.width*(p.done-1)/total, 0), p.width) // a step past the total must not panic
	return fmt.Sprintf("[%s%s] %d/%d %s %s", strings.Repeat("=", fill), strings.Repeat(" ", p.width-fill), p.done, p.total,
		time.Since(p.start).Round(time.Second), what)
}

// Done ends the bar's line.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K[%s] %d/%d %s\n", strings.Repeat("=", p.width), p.done, p.total, time.Since(p.start).Round(time.Second))
}
