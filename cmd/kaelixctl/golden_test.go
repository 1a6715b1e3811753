package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kaelix-io/kaelix/stat"
	"github.com/kaelix-io/kaelix/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name (go test -update rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func statFixture() StatSample {
	return StatSample{
		TimeNS: 1700000000000000000, Source: "registry",
		Daemon: DaemonState{State: "stopped", PID: 4242, HeartbeatCounter: 17, HeartbeatAgeNS: 2e9,
			Message: "kaelixd is not answering: pid 4242 is stopped (SIGSTOP or a debugger; `kill -CONT 4242` resumes it), last heartbeat 2s ago; figures read from shared memory"},
		Partitions: []PartitionStats{
			{Topic: "orders", Partition: 0, RatePerSec: 1234.5, Counters: wire.Counters{Published: 5000, Consumed: 9000, Lost: 0, BackPressure: 3, Publishers: 1, Subscribers: 2, SlowestLagBytes: 56000}},
			{Topic: "orders", Partition: 1, RatePerSec: -1, Counters: wire.Counters{Published: 10, Consumed: 20, Publishers: 1, Subscribers: 2}},
		},
		Slots: []stat.SlotStat{
			{Topic: "orders", Partition: 0, Slot: 0, Role: stat.RoleSubscriber, Group: -1, PID: 100, Process: "risk", State: stat.StateLive, Position: 280000, Consumed: 5000},
			{Topic: "orders", Partition: 0, Slot: 1, Role: stat.RoleSubscriber, Group: -1, PID: 101, Process: "audit", State: stat.StateStopped, Position: 224000, LagBytes: 56000, LagRecords: 1000, Consumed: 4000},
			{Topic: "orders", Partition: 0, Slot: 2, Role: stat.RoleGroupMember, Group: 0, PID: 102, Process: "worker", State: stat.StateDead, Position: 0, LagBytes: 280000, LagRecords: -1, Consumed: 0, Lost: 7},
			{Topic: "orders", Partition: 0, Slot: 0, Role: stat.RoleGroup, Group: 0, GroupID: 99, Members: 1, State: stat.StateGroup, Position: 0, LagBytes: 280000, LagRecords: -1, Lost: 7},
		},
		Errors: []string{"orders partition 2: open /dev/shm/kaelix/orders.p2: no such file or directory"},
	}
}

// TestStatGolden: stat's text output (daemon line, counters, slot table,
// errors) against its golden file, and its JSON object's keys against the
// schema the README documents.
func TestStatGolden(t *testing.T) {
	var out bytes.Buffer
	cmd := &StatCmd{Slots: true}
	if err := cmd.printText(&out, statFixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "stat.txt", out.Bytes())

	b, err := json.Marshal(statFixture())
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	json.Unmarshal(b, &obj)
	keys := func(m map[string]json.RawMessage) []string {
		var k []string
		for name := range m {
			k = append(k, name)
		}
		slices.Sort(k)
		return k
	}
	if got, want := keys(obj), []string{"daemon", "errors", "partitions", "slots", "source", "time_ns"}; !slices.Equal(got, want) {
		t.Errorf("stat JSON keys %v, want %v", got, want)
	}
	var slots []map[string]json.RawMessage
	json.Unmarshal(obj["slots"], &slots)
	want := []string{"consumed", "consumed_bytes", "group", "lag_bytes", "lag_records", "lost", "partition", "pid", "position", "process", "role", "slot", "state", "topic"}
	if got := keys(slots[0]); !slices.Equal(got, want) {
		t.Errorf("slot JSON keys %v, want %v", got, want)
	}
	var d map[string]json.RawMessage
	json.Unmarshal(obj["daemon"], &d)
	if got := keys(d); !slices.Equal(got, []string{"heartbeat_age_ns", "heartbeat_counter", "message", "pid", "state"}) {
		t.Errorf("daemon JSON keys %v", got)
	}
}
