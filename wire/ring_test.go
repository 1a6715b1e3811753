package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/ringbuf"
)

// TestRingConfig pins the one spec-to-ring mapping: every kind and policy
// maps to its ring value and back, defaults apply, an SPSC topic has no
// group slots, and an unknown kind or policy is refused with
// CodeInvalidSpec (never defaulted).
func TestRingConfig(t *testing.T) {
	for _, k := range []Kind{KindSPSC, KindMPMC} {
		for _, p := range []Policy{PolicyBlock, PolicyDropOldest, PolicyReject} {
			rc, err := TopicSpec{Name: "t", Kind: k, Policy: p}.RingConfig()
			if err != nil {
				t.Fatalf("%s/%s: %v", k, p, err)
			}
			if KindOf(rc.Kind) != k || PolicyOf(rc.Policy) != p {
				t.Fatalf("%s/%s: ring config has %v/%v, maps back to %q/%q", k, p, rc.Kind, rc.Policy, KindOf(rc.Kind), PolicyOf(rc.Policy))
			}
			if k == KindSPSC && (rc.MaxGroups != 0 || rc.MaxPublishers != 1 || rc.MaxSubscribers != 1) {
				t.Fatalf("spsc: %d publishers, %d subscribers, %d groups; want 1, 1, 0", rc.MaxPublishers, rc.MaxSubscribers, rc.MaxGroups)
			}
			if rc.CapacityBytes != 1<<20 || rc.MaxPayloadBytes != 4096 {
				t.Fatalf("defaults: capacity %d, max payload %d", rc.CapacityBytes, rc.MaxPayloadBytes)
			}
		}
	}
	for _, tc := range []struct {
		spec TopicSpec
		want string
	}{
		{TopicSpec{Name: "t", Kind: "ring"}, `kind "ring": want spsc or mpmc`},
		{TopicSpec{Name: "t", Policy: "drop"}, `policy "drop": want block, drop-oldest or reject`},
		{TopicSpec{Name: "t", CapacityBytes: 5000}, `ringbuf: invalid config: capacity 5000`},
	} {
		_, err := tc.spec.RingConfig()
		var we *Error
		if !errors.As(err, &we) || we.Code != CodeInvalidSpec || !strings.HasPrefix(we.Message, tc.want) {
			t.Errorf("%+v: got %v, want CodeInvalidSpec %q", tc.spec, err, tc.want)
		}
	}
	if KindOf(ringbuf.Kind(99)) != "" || PolicyOf(ringbuf.Policy(99)) != "" {
		t.Error("an unknown ring kind or policy maps to a named one")
	}
}
