package daemon

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/kaelix-io/kaelix/wire"
)

// Ring identity across daemon restarts. Every region header carries the
// instance id of the daemon that created it (shm Header.Instance; each
// Daemon draws a random one at New) and its creation time. A client
// resuming attachments after a reconnect sends its rings' ids
// (wire.Resume.Rings); a ring this daemon adopted keeps its id, a topic
// re-created under the same name (after an --ephemeral restart removed
// the old files, or after the old files were removed from outside) has
// new ones. An attachment whose rings do not match is not resumed: the
// hello reply lists it as stale and the client tells the handle's owner
// (client.ErrTopicRecreated), instead of letting it exchange records
// through rings no daemon knows.

// staleResume returns why r's rings are not t's (wire.StaleMissing when
// t is nil, wire.StaleRecreated when a ring id differs), or "" when they
// are, or when r carries no ring ids (a client that predates them).
// d.mu held.
func staleResume(t *topic, r wire.Resume) string {
	if len(r.Rings) == 0 {
		return ""
	}
	if t == nil {
		return wire.StaleMissing
	}
	for k, i := range r.Partitions {
		if k >= len(r.Rings) || i < 0 || i >= len(t.parts) {
			continue
		}
		if ringID(t.parts[i]) != r.Rings[k] {
			return wire.StaleRecreated
		}
	}
	return ""
}

// ringID is the identity of a partition's ring (its data region's header).
func ringID(p *partition) wire.RingID {
	h := p.region.Header()
	return wire.RingID{Instance: h.Instance, CreatedNS: h.CreatedNS}
}

// newInstanceID returns a random non-zero daemon instance id.
func newInstanceID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err == nil {
			if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
				return id
			}
		}
	}
}
