package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/nats-io/nats.go"
)

// Tx publishes records on one end of a link. A Tx is used by one goroutine.
// Send returns once the transport has accepted p (copied it, written it to
// the socket, or stored it in shared memory); the caller may reuse p.
type Tx interface {
	Send(p []byte) error
	// SendBatch publishes ps in order, batched where the transport can
	// (one writev for stream sockets); it returns once all were accepted.
	SendBatch(ps [][]byte) error
	Close() error
}

// Rx receives records on one end of a link. An Rx is used by one goroutine.
// Recv waits, as the link's wait strategy says, until at least one record
// is there, then passes up to limit records to h in order and returns how
// many. p is valid only during h (it may alias shared memory).
type Rx interface {
	Recv(h func(p []byte), limit int) (int, error)
	Close() error
}

// linkSpec describes one directed link of a run: made by the parent
// (transport.newLink), it travels to child processes as JSON, and each
// process opens its ends with transport.openTx / openRx.
type linkSpec struct {
	ID        string `json:"id"`
	Transport string `json:"transport"`
	Size      int    `json:"size"`  // payload bytes of every record
	Pubs      int    `json:"pubs"`  // publisher ends
	Subs      int    `json:"subs"`  // subscriber ends
	Batch     int    `json:"batch"` // records per SendBatch; > 1 also buffers stream reads
	Wait      string `json:"wait,omitempty"`
	Path      string `json:"path,omitempty"`   // floors: the shared file
	Addr      string `json:"addr,omitempty"`   // sockets: where to connect
	Topic     string `json:"topic,omitempty"`  // kaelix topic
	Socket    string `json:"socket,omitempty"` // kaelixd control socket
	Group     bool   `json:"group,omitempty"`  // kaelix-queue: subscribers join one queue group
	Mode      string `json:"mode,omitempty"`   // the run's mode (copy-floor publishes lazily in throughput)
}

// transport is one way of moving records. Modes it cannot serve are
// skipped with a note.
type transport struct {
	name string
	// modes the transport serves; nil means every mode.
	modes []string
	// kaelix transports take the --wait strategies; the others have one
	// inherent strategy, reported in the wait column (or none).
	kaelix       bool
	inherentWait string
	// inProcess: the other side is a goroutine of this process (chan).
	inProcess bool
	// multiPub / multiSub: one link takes several publishers (fan-in) or
	// subscribers that each see every record (broadcast fan-out); shareSub:
	// several subscribers share the records (queue group).
	multiPub, multiSub, shareSub bool
	newLink                      func(r *runEnv, l *linkSpec) error
	openTx                       func(e *procEnv, l *linkSpec, end int) (Tx, error)
	openRx                       func(e *procEnv, l *linkSpec, end int) (Rx, error)
	// futexCalls, if set, returns the futex calls made on the link so far,
	// read by the parent from shared counters (Kaelix rings).
	futexCalls func(r *runEnv, l *linkSpec) uint64
	// method says, for the report, how syscalls are counted.
	method string
}

func (t *transport) serves(mode string) bool {
	return t.modes == nil || slices.Contains(t.modes, mode)
}

var transports = map[string]*transport{}

func register(t *transport) { transports[t.name] = t }

// TransportNames lists the transports built into this binary, in the
// order of the list.
func TransportNames() []string {
	order := []string{"floor", "futex-floor", "copy-floor", "kaelix-spsc", "kaelix-mpmc", "kaelix-queue", "uds", "uds-seqpacket", "tcp", "nats", "shmipc-go", "chan"}
	var out []string
	for _, n := range order {
		if _, ok := transports[n]; ok {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range transports {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func lookupTransport(name string) (*transport, error) {
	t, ok := transports[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (have %v)", ErrUnknownTransport, name, TransportNames())
	}
	return t, nil
}

// procEnv is what a process (parent or child) needs to open link ends.
type procEnv struct {
	ctx    context.Context
	parent bool
	run    *runEnv // parent only: resources the parent holds (listeners, chans)
	kaelix *kaelixClient
	nats   map[string]*nats.Conn
}

func (e *procEnv) close() {
	if e.kaelix != nil {
		e.kaelix.close()
	}
	for _, nc := range e.nats {
		nc.Close()
	}
	e.nats = nil
}

// spinCheck is how many polls a spinning loop makes between checks of its
// context.
const spinCheck = 1 << 12
