package bridge

import (
	"sync"
	"sync/atomic"

	"github.com/kaelix-io/kaelix/bridge/bridgestat"
)

// Loss reasons: why a record was counted lost. Each is a label value of
// kaelix_bridge_lost_total and a key of RuleStatus.Lost.
const (
	// LostDisconnected (outbound core): NATS was not connected when the
	// record was read, so the publish was refused (no reconnect buffer:
	// a record is either sent or counted).
	LostDisconnected = "disconnected"
	// LostPublishError (outbound core): nats.go refused the publish for
	// another reason (the error is logged).
	LostPublishError = "publish-error"
	// LostTooLarge: the record does not fit the NATS server's max
	// payload (outbound) or the local topic's message limit (inbound).
	LostTooLarge = "too-large"
	// LostGap: sequence numbers that never reached the bridge. Outbound:
	// ring records it did not read (overwritten under drop-oldest before
	// it read them, published while it was not running, or aborted
	// claims). Inbound: origin sequences that never arrived from NATS (in
	// core mode: dropped by the far bridge, by a NATS restart, or by
	// nats.go as a slow consumer while the local ring was full).
	LostGap = "gap"
	// LostMalformed (inbound): a NATS message whose Kaelix headers do not
	// parse; acknowledged and dropped.
	LostMalformed = "malformed"
)

var lossReasons = []string{LostDisconnected, LostPublishError, LostTooLarge, LostGap, LostMalformed}

// ruleMetrics are one rule's counters. Written by the rule's goroutine,
// read by Status at any time.
type ruleMetrics struct {
	forwarded   atomic.Uint64 // out: published to NATS; in: written to the local ring
	acked       atomic.Uint64 // out jetstream: records acknowledged by the stream (each once, a republished one too); in jetstream: messages whose stream position was committed
	redelivered atomic.Uint64 // out: republished after a failed or unconfirmed publish
	duplicates  atomic.Uint64 // in: records already written, dropped (redeliveries after a restart, replays)
	skipped     atomic.Uint64 // out: records bridged in (carry Kaelix-Origin), not sent back; in: records from this host
	lost        [5]atomic.Uint64
	dropped     atomic.Uint64 // in core: messages nats.go dropped (slow consumer; also counted as gap when identified)
	lagBytes    atomic.Int64  // out: local ring bytes not read yet
	lagRecords  atomic.Int64  // out: published, not acknowledged; in jetstream: stream messages not read yet
}

func (m *ruleMetrics) lose(reason string, n uint64) {
	for i, r := range lossReasons {
		if r == reason {
			m.lost[i].Add(n)
			return
		}
	}
}

// ruleState text values (RuleStatus.State).
const (
	StateStarting = "starting" // setting up (topic, stream, consumer)
	StateRunning  = "running"
	StateWaiting  = "waiting" // NATS not connected
	StateFailed   = "failed"  // set-up or run failed; retried with backoff (Error says why)
	StateInvalid  = "invalid" // the rule's configuration is invalid; never run
	StateStopped  = "stopped"
)

// ruleHealth is a rule's state and last error, guarded by mu.
type ruleHealth struct {
	mu     sync.Mutex
	state  string
	err    string
	starts int
}

func (h *ruleHealth) set(state string, err error) {
	h.mu.Lock()
	h.state = state
	if err != nil {
		h.err = err.Error()
	} else if state == StateRunning {
		h.err = ""
	}
	h.mu.Unlock()
}

// RuleStatus is one rule's state and counters (see ruleMetrics for what
// each counts). Defined in package bridgestat, which programs that read a
// bridge's status import instead of this package (no NATS, metrics or
// HTTP dependencies).
type RuleStatus = bridgestat.RuleStatus

// Status is the bridge's state: the NATS connection and every rule
// (bridgestat.Status).
type Status = bridgestat.Status
