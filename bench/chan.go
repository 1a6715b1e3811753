package bench

// chan: Go channels in one process; the other side is a goroutine pinned
// to its own CPU. Buffers rotate through a pool one channel capacity plus
// two deep, so no record is overwritten before its receiver is done with
// it and nothing is allocated per record.

import (
	"context"
	"fmt"
)

const chanCapacity = 1024

func init() {
	register(&transport{
		name: "chan", inProcess: true, multiPub: true,
		newLink: func(r *runEnv, l *linkSpec) error {
			r.chans[l.ID] = make(chan []byte, chanCapacity)
			return nil
		},
		openTx: func(e *procEnv, l *linkSpec, _ int) (Tx, error) {
			ch, err := e.chanOf(l)
			if err != nil {
				return nil, err
			}
			t := &chanTx{ctx: e.ctx, ch: ch, pool: make([][]byte, chanCapacity+2)}
			for i := range t.pool {
				t.pool[i] = make([]byte, l.Size)
			}
			return t, nil
		},
		openRx: func(e *procEnv, l *linkSpec, _ int) (Rx, error) {
			ch, err := e.chanOf(l)
			if err != nil {
				return nil, err
			}
			return &chanRx{ctx: e.ctx, ch: ch}, nil
		},
		method: "none made by the transport (the Go runtime's futex calls are not counted); /proc/PID/io read+write counts",
	})
}

func (e *procEnv) chanOf(l *linkSpec) (chan []byte, error) {
	if e.run == nil {
		return nil, fmt.Errorf("bench: chan link %s outside its process", l.ID)
	}
	ch, ok := e.run.chans[l.ID]
	if !ok {
		return nil, fmt.Errorf("bench: no chan for link %s", l.ID)
	}
	return ch, nil
}

type chanTx struct {
	ctx  context.Context
	ch   chan []byte
	pool [][]byte
	next int
}

func (t *chanTx) Send(p []byte) error {
	b := t.pool[t.next]
	if t.next++; t.next == len(t.pool) {
		t.next = 0
	}
	copy(b, p)
	select {
	case t.ch <- b:
		return nil
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
}

func (t *chanTx) SendBatch(ps [][]byte) error {
	for _, p := range ps {
		if err := t.Send(p); err != nil {
			return err
		}
	}
	return nil
}

func (t *chanTx) Close() error { return nil }

type chanRx struct {
	ctx context.Context
	ch  chan []byte
}

func (r *chanRx) Recv(h func([]byte), limit int) (int, error) {
	select {
	case p := <-r.ch:
		h(p)
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	}
	n := 1
	for n < limit {
		select {
		case p := <-r.ch:
			h(p)
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (r *chanRx) Close() error { return nil }
