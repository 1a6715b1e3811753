package daemon

import (
	"os"
	"testing"

	"github.com/kaelix-io/kaelix/daemon/config"
	"github.com/kaelix-io/kaelix/wire"
)

func TestAccessRules(t *testing.T) {
	rules := []config.AccessRule{
		{Topics: "sensors.*", Publish: config.Principals{UIDs: []int{1000}}, Subscribe: config.Principals{GIDs: []int{100}}, Admin: config.Principals{UIDs: []int{1000}}},
		{Topics: "*", Subscribe: config.Principals{UIDs: []int{2000}}},
	}
	cases := []struct {
		uid           int
		gids          []int
		topic         string
		act           action
		matched, want bool
	}{
		{1000, []int{1000}, "sensors.temp", actPublish, true, true},
		{1001, []int{1001}, "sensors.temp", actPublish, true, false},
		{1001, []int{1001, 100}, "sensors.temp", actSubscribe, true, true}, // supplementary group
		{1000, []int{1000}, "sensors.temp", actSubscribe, true, false},
		{1001, []int{1001}, "sensors.temp", actAdmin, true, false},
		{2000, []int{2000}, "other", actSubscribe, true, true},         // second rule
		{2000, []int{2000}, "sensors.temp", actSubscribe, true, false}, // first match wins
		{1000, []int{1000}, "other", actPublish, true, false},
	}
	for _, c := range cases {
		m, ok := ruleDecides(rules, c.uid, c.gids, c.topic, c.act)
		if m != c.matched || ok != c.want {
			t.Errorf("uid %d gids %v %s %s: matched %v ok %v, want %v %v", c.uid, c.gids, c.act, c.topic, m, ok, c.matched, c.want)
		}
	}
	if m, _ := ruleDecides(rules[:1], 1, nil, "plain", actPublish); m {
		t.Error("unmatched topic decided by a rule")
	}
}

// TestAllowedUsesRules checks the daemon's attach and admin decisions for
// an unprivileged peer: a matching rule decides, else the topic's mode.
func TestAllowedUsesRules(t *testing.T) {
	cfg := Default()
	cfg.Security.Access = []config.AccessRule{{Topics: "locked.*", Subscribe: config.Principals{GIDs: []int{77}}}}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid() + 12345
	p := &peer{uid: uid, gid: 50, gids: []int{50, 77}}
	locked := &topic{spec: wire.TopicSpec{Name: "locked.a", Mode: 0o666, GID: -1}}
	open := &topic{spec: wire.TopicSpec{Name: "open.a", Mode: 0o604, GID: -1}}
	if !d.allowed(p, locked, wire.RoleSubscriber) || d.allowed(p, locked, wire.RolePublisher) {
		t.Error("rule not applied to locked.a (subscribe by gid 77 only; mode 0666 must not grant publish)")
	}
	if !d.allowed(p, open, wire.RoleSubscriber) || d.allowed(p, open, wire.RolePublisher) {
		t.Error("mode 0604 not applied to open.a")
	}
	if d.mayAdmin(p, "locked.b") == nil || d.mayAdmin(p, "open.b") != nil {
		t.Error("admin rule")
	}
	root := &peer{uid: 0}
	if !d.allowed(root, locked, wire.RolePublisher) || d.mayAdmin(root, "locked.b") != nil {
		t.Error("root refused")
	}
}
