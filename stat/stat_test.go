package stat_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kaelix-io/kaelix/client"
	"github.com/kaelix-io/kaelix/internal/testdaemon"
	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

// TestFromRegistryMatchesDaemon: the registry route (state dir + region
// directories, no daemon asked) finds exactly the files the daemon lists,
// and both give the same counters and slots: a broadcast subscriber that
// reads nothing is as many records behind as were published, and a queue
// group and its member show with their roles.
func TestFromRegistryMatchesDaemon(t *testing.T) {
	d := testdaemon.Start(t)
	dir, shmName := d.StateDir(), d.Config.Shm.DirName
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	c, err := client.Connect(cctx, client.Options{SocketPath: d.SocketPath(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const topic = "stat.t"
	if _, err := c.CreateTopic(cctx, client.TopicConfig{Name: topic, Partitions: 2, CapacityBytes: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(cctx, topic, client.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	member, err := c.Subscribe(cctx, topic, client.SubscribeOptions{Group: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	pub, err := c.NewPublisher(cctx, topic, client.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 7
	for i := 0; i < n; i++ {
		if err := pub.Publish(cctx, client.Message{Partition: 0, Payload: []byte("0123456789")}); err != nil {
			t.Fatal(err)
		}
	}

	list, err := c.Topics(cctx)
	if err != nil {
		t.Fatal(err)
	}
	// FromTopics reads the protocol's form of the list (the daemon's
	// reply); the client's types carry the same JSON.
	var wl []wire.TopicInfo
	if b, err := json.Marshal(list); err != nil || json.Unmarshal(b, &wl) != nil {
		t.Fatalf("topic list does not round-trip to wire.TopicInfo: %v", err)
	}
	fromDaemon := stat.FromTopics(wl, topic)
	reg, err := stat.ReadRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromReg, err := stat.FromRegistry(reg, stat.Dirs("", "", shmName), topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromDaemon) != 2 || len(fromReg) != 2 {
		t.Fatalf("partitions: %d from the daemon, %d from the registry, want 2", len(fromDaemon), len(fromReg))
	}
	for i := range fromReg {
		a, b := fromDaemon[i], fromReg[i]
		if a.DataPath != b.DataPath || a.ConsumerPath != b.ConsumerPath || !slices.Equal(a.SlotPaths, b.SlotPaths) {
			t.Errorf("partition %d: daemon lists %+v, registry route found %+v", i, a, b)
		}
	}

	var rd stat.CounterReader
	defer rd.Close()
	cnt, err := rd.Read(fromReg[0])
	if err != nil {
		t.Fatal(err)
	}
	if cnt.Published != n || cnt.Subscribers != 2 || cnt.Publishers != 1 {
		t.Errorf("counters %+v, want %d published, 2 subscribers, 1 publisher", cnt, n)
	}
	slots, err := rd.Slots(fromReg[0])
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]stat.SlotStat{}
	for _, s := range slots {
		roles[s.Role] = s
	}
	for _, role := range []string{stat.RoleSubscriber, stat.RoleGroupMember, stat.RoleGroup} {
		s, ok := roles[role]
		if !ok {
			t.Errorf("no %s slot in %+v", role, slots)
			continue
		}
		if s.LagRecords != n || s.LagBytes == 0 || s.Topic != topic || s.Partition != 0 {
			t.Errorf("%s slot %+v, want %d records behind", role, s, n)
		}
		if role != stat.RoleGroup && (s.PID != os.Getpid() || s.State != stat.StateLive || s.Process == "") {
			t.Errorf("%s slot %+v, want this live process", role, s)
		}
	}
	if g := roles[stat.RoleGroup]; g.GroupID != wire.GroupID("workers") || g.Members != 1 || g.State != stat.StateGroup {
		t.Errorf("group slot %+v, want id %d with 1 member", g, wire.GroupID("workers"))
	}
	if m := roles[stat.RoleGroupMember]; m.Group != roles[stat.RoleGroup].Slot {
		t.Errorf("member's group %d, group slot %d", m.Group, roles[stat.RoleGroup].Slot)
	}

	// Reading after the subscriber caught up: no lag, consumed counted.
	for i := 0; i < n; i++ {
		if _, err := sub.Receive(cctx); err != nil {
			t.Fatal(err)
		}
	}
	slots, _ = rd.Slots(fromReg[0])
	for _, s := range slots {
		if s.Role == stat.RoleSubscriber && (s.LagRecords != 0 || s.LagBytes != 0 || s.Consumed != n || s.ConsumedBytes != 10*n) {
			t.Errorf("subscriber after reading: %+v", s)
		}
	}

	hb, err := stat.ReadHeartbeat(dir)
	if err != nil || hb.PID != os.Getpid() || hb.Counter == 0 || time.Since(hb.Time) > time.Minute {
		t.Errorf("heartbeat %+v %v", hb, err)
	}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	dir := t.TempDir()
	b := make([]byte, stat.HeartbeatBytes)
	now := time.Unix(1700000000, 123)
	stat.EncodeHeartbeat(b, 4242, 17, now)
	if err := os.WriteFile(filepath.Join(dir, stat.HeartbeatFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	hb, err := stat.ReadHeartbeat(dir)
	if err != nil || hb.PID != 4242 || hb.Counter != 17 || !hb.Time.Equal(now) {
		t.Errorf("heartbeat %+v %v", hb, err)
	}
	os.WriteFile(filepath.Join(dir, stat.HeartbeatFile), b[:10], 0o644)
	if _, err := stat.ReadHeartbeat(dir); err == nil {
		t.Error("a short heartbeat file was accepted")
	}
}

func TestReadRegistryErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := stat.ReadRegistry(dir); !os.IsNotExist(err) {
		t.Errorf("no registry: %v", err)
	}
	os.WriteFile(filepath.Join(dir, stat.RegistryFileName), []byte(`{"version": 9, "topics": []}`), 0o644)
	if _, err := stat.ReadRegistry(dir); err == nil {
		t.Error("version 9 accepted")
	}
	os.WriteFile(filepath.Join(dir, stat.RegistryFileName), []byte(`{"version": 2, "topics": [`), 0o644)
	if _, err := stat.ReadRegistry(dir); err == nil {
		t.Error("truncated JSON accepted")
	}
	reg := stat.Registry{Version: 2, Topics: []stat.RegistryTopic{{Spec: wire.TopicSpec{Name: "gone"}, Regions: []string{"gone.p0"}, ConsumerRegions: []string{"gone.p0.c"}}}}
	parts, err := stat.FromRegistry(reg, []string{dir}, "")
	if len(parts) != 0 || err == nil {
		t.Errorf("missing regions: %v %v", parts, err)
	}
}
