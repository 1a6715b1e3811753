package daemon

import (
	"fmt"

	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/wire"
)

// Topic spec checks (the spec-to-ring-config mapping is wire.TopicSpec.RingConfig).

// checkSpec validates a normalized spec.
func checkSpec(s wire.TopicSpec) (ringbuf.Config, error) {
	if err := validateTopicName(s.Name); err != nil {
		return ringbuf.Config{}, err
	}
	if s.Partitions < 1 || s.Partitions > wire.MaxPartitions {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: partitions = %d: want 1 to %d", s.Name, s.Partitions, wire.MaxPartitions)
	}
	if s.BindNode && s.Node < 0 {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: node = %d: want >= 0", s.Name, s.Node)
	}
	if s.Mode&^0o777 != 0 {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: mode = %#o: permission bits only", s.Name, s.Mode)
	}
	// A publisher gets every region of every partition in one attach.
	if n := s.Partitions * (wire.RegionDescriptors + s.MaxSubscribers + s.MaxGroups); n > wire.MaxFDs {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: partitions x (2 + max_subscribers + max_groups) = %d region files, over the %d one attach can carry: lower max_subscribers, max_groups or partitions", s.Name, n, wire.MaxFDs)
	}
	return ringConfig(s)
}

// ringConfig is s.RingConfig (the one spec-to-ring mapping) with the
// topic named in the error.
func ringConfig(s wire.TopicSpec) (ringbuf.Config, error) {
	rc, err := s.RingConfig()
	if err != nil {
		return ringbuf.Config{}, wire.Errorf(wire.CodeInvalidSpec, "topic %q: %v", s.Name, err)
	}
	return rc, nil
}

// specDiff names the first field in which two normalized specs differ.
func specDiff(have, want wire.TopicSpec) string {
	type f struct {
		name       string
		have, want any
	}
	for _, x := range []f{
		{"partitions", have.Partitions, want.Partitions},
		{"kind", have.Kind, want.Kind},
		{"capacity_bytes", have.CapacityBytes, want.CapacityBytes},
		{"max_message_bytes", have.MaxMessageBytes, want.MaxMessageBytes},
		{"policy", have.Policy, want.Policy},
		{"bind_node", have.BindNode, want.BindNode},
		{"node", have.Node, want.Node},
		{"mode", fmt.Sprintf("%#o", have.Mode), fmt.Sprintf("%#o", want.Mode)},
		{"gid", have.GID, want.GID},
		{"max_publishers", have.MaxPublishers, want.MaxPublishers},
		{"max_subscribers", have.MaxSubscribers, want.MaxSubscribers},
		{"max_groups", have.MaxGroups, want.MaxGroups},
	} {
		if x.have != x.want {
			return fmt.Sprintf("%s: existing %v, requested %v", x.name, x.have, x.want)
		}
	}
	return ""
}
