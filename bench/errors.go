package bench

import "errors"

var (
	// ErrUnknownTransport: a --transports name the harness does not know
	// (nats is not implemented yet). The message lists the known ones.
	ErrUnknownTransport = errors.New("bench: unknown transport")
	// ErrUnknownMode: the mode is not pingpong, oneway, throughput, fanout
	// or fanin.
	ErrUnknownMode = errors.New("bench: unknown mode")
	// ErrUnknownWait: a --wait value other than busy-spin, yield, backoff
	// or blocking.
	ErrUnknownWait = errors.New("bench: unknown wait strategy")
	// ErrOptions: a flag value out of range; the message names it.
	ErrOptions = errors.New("bench: invalid options")
	// ErrPeer: a peer process failed or broke the harness protocol; the
	// message carries its stderr tail.
	ErrPeer = errors.New("bench: peer failed")
	// ErrBadHistogram: an encoded histogram from a peer did not decode.
	ErrBadHistogram = errors.New("bench: bad histogram encoding")
	// ErrBadReport: a results.json that does not parse or lacks fields.
	ErrBadReport = errors.New("bench: bad report")
)
