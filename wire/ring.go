package wire

import "github.com/kaelix-io/kaelix/ringbuf"

// The one mapping between a topic's spec and its rings. The daemon makes
// every partition's ring with TopicSpec.RingConfig, its config loader
// checks declared topics with it, and a ring found at restart is read
// back into a spec with KindOf and PolicyOf: nothing else translates a
// Kind or a Policy.

// kinds and policies are the table both directions read.
var (
	kinds = [...]struct {
		name Kind
		ring ringbuf.Kind
	}{{KindSPSC, ringbuf.SPSC}, {KindMPMC, ringbuf.MPMC}}
	policies = [...]struct {
		name Policy
		ring ringbuf.Policy
	}{{PolicyBlock, ringbuf.PolicyBlock}, {PolicyDropOldest, ringbuf.PolicyDropOldest}, {PolicyReject, ringbuf.PolicyReject}}
)

// Ring returns k's ring kind. Errors: a *Error with CodeInvalidSpec for
// anything but KindSPSC and KindMPMC ("" included: normalize first).
func (k Kind) Ring() (ringbuf.Kind, error) {
	for _, e := range kinds {
		if e.name == k {
			return e.ring, nil
		}
	}
	return 0, Errorf(CodeInvalidSpec, "kind %q: want spsc or mpmc", k)
}

// Ring returns p's ring policy. Errors: a *Error with CodeInvalidSpec for
// anything but PolicyBlock, PolicyDropOldest and PolicyReject.
func (p Policy) Ring() (ringbuf.Policy, error) {
	for _, e := range policies {
		if e.name == p {
			return e.ring, nil
		}
	}
	return 0, Errorf(CodeInvalidSpec, "policy %q: want block, drop-oldest or reject", p)
}

// KindOf is the Kind of a ring's kind, "" for a kind this build does not
// know (a spec with it is refused by RingConfig).
func KindOf(k ringbuf.Kind) Kind {
	for _, e := range kinds {
		if e.ring == k {
			return e.name
		}
	}
	return ""
}

// PolicyOf is the Policy of a ring's policy, "" for one this build does
// not know.
func PolicyOf(p ringbuf.Policy) Policy {
	for _, e := range policies {
		if e.ring == p {
			return e.name
		}
	}
	return ""
}

// RingConfig returns the ring configuration of each of the topic's
// partitions, s normalized first (Normalize), and checks it
// (ringbuf.Config.Validate: power-of-two capacity, message size against
// capacity, slot counts). An SPSC topic has no queue-group slots.
// Errors: a *Error with CodeInvalidSpec saying what is out of range (the
// caller names the topic); an unknown kind or policy is refused, never
// defaulted.
func (s TopicSpec) RingConfig() (ringbuf.Config, error) {
	s = s.Normalize()
	kind, err := s.Kind.Ring()
	if err != nil {
		return ringbuf.Config{}, err
	}
	policy, err := s.Policy.Ring()
	if err != nil {
		return ringbuf.Config{}, err
	}
	c := ringbuf.DefaultConfig(kind)
	c.Policy = policy
	c.CapacityBytes = s.CapacityBytes
	c.MaxPayloadBytes = s.MaxMessageBytes
	c.MaxPublishers, c.MaxSubscribers, c.MaxGroups = s.MaxPublishers, s.MaxSubscribers, s.MaxGroups
	if kind == ringbuf.SPSC {
		c.MaxGroups = 0
	}
	if err := c.Validate(); err != nil {
		return ringbuf.Config{}, Errorf(CodeInvalidSpec, "%v", err)
	}
	return c, nil
}
