package stat

import (
	"os"

	"github.com/kaelix-io/kaelix/internal/proc"
	"github.com/kaelix-io/kaelix/ringbuf"
	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// RingView is one partition's ring mapped read-only (data, consumer and
// every slot region present), to read its counters and slots from shared
// memory without attaching as a client. Ring must not be used to publish
// or subscribe. Close unmaps.
type RingView struct {
	regions []*shm.Region
	Ring    *ringbuf.Ring
}

// Close unmaps its regions.
func (v *RingView) Close() error {
	for _, r := range v.regions {
		r.Close()
	}
	v.regions = nil
	return nil
}

// OpenRingView maps a partition's data, consumer and slot region files
// PROT_READ (opened O_RDONLY, so read permission is enough) and attaches
// their ring. slotPaths has one entry per subscriber slot then per
// queue-group slot; a "" entry, or a file that no longer exists, is a slot
// not read. Errors: an open or attach error of the data or consumer
// region, an attach error of a slot region, or shm.ErrFault if a region
// is truncated.
func OpenRingView(dataPath, consumerPath string, slotPaths []string) (*RingView, error) {
	open := func(path string) (*shm.Region, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return shm.AttachFile(f, shm.AttachOptions{ReadOnly: true})
	}
	v := &RingView{}
	data, err := open(dataPath)
	if err != nil {
		return nil, err
	}
	v.regions = append(v.regions, data)
	consumer, err := open(consumerPath)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.regions = append(v.regions, consumer)
	areas := make([]ringbuf.SlotArea, len(slotPaths))
	for i, path := range slotPaths {
		if path == "" {
			continue
		}
		r, err := open(path)
		if os.IsNotExist(err) {
			continue // freed since it was listed
		}
		if err != nil {
			v.Close()
			return nil, err
		}
		v.regions = append(v.regions, r)
		areas[i] = ringbuf.SlotArea{Mem: r.Data()}
	}
	if err := shm.Guard(func() error {
		var aerr error
		v.Ring, aerr = ringbuf.Attach(data.Data(), consumer.Data(), areas, true)
		return aerr
	}); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// Counters reads the ring's counters (under shm.Guard).
func (v *RingView) Counters() (ringbuf.Counters, error) {
	var c ringbuf.Counters
	err := shm.Guard(func() error {
		c = v.Ring.Counters()
		return nil
	})
	return c, err
}

// WireCounters converts ring counters to the protocol's form.
func WireCounters(c ringbuf.Counters) wire.Counters {
	return wire.Counters{
		Published: c.Published, Consumed: c.Consumed, Lost: c.Lost, BackPressure: c.BackPressure,
		Rejected: c.Rejected, Unblocked: c.Unblocked, Reaped: c.Reaped, Evicted: c.Evicted, Tampered: c.Tampered,
		TailPosition: c.TailPosition, Publishers: c.Publishers, Subscribers: c.Subscribers, SlowestLagBytes: c.SlowestLag,
	}
}

// Slot states in SlotStat.State.
const (
	StateLive     = "live"     // active, its owner runs
	StateStopped  = "stopped"  // active, its owner is stopped (SIGSTOP, a debugger: /proc state T or t)
	StateDead     = "dead"     // its owner is gone (or a zombie, or its pid was reused); the daemon reaps it
	StateEvicted  = "evicted"  // taken from a live owner for holding publishers back
	StateReserved = "reserved" // reserved for a subscriber that has not joined yet
	StateJoining  = "joining"  // its owner is joining
	StateGroup    = "group"    // a queue group's own slot (its shared cursor)
)

// Roles in SlotStat.Role.
const (
	RoleSubscriber  = "subscriber"   // a broadcast subscriber
	RoleGroupMember = "group-member" // a member of a queue group
	RoleGroup       = "group"        // the queue group's cursor
)

// SlotStat is one row of the backlog (after Aeron's BacklogStat): one
// subscriber slot or queue-group slot of a partition, its owner and how
// far it is behind the tail.
type SlotStat struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// Slot is the subscriber slot index, or for Role "group" the group
	// slot index; Group is the group slot a member or group is in, -1 for
	// a broadcast subscriber.
	Slot  int    `json:"slot"`
	Role  string `json:"role"`
	Group int    `json:"group"`
	// GroupID is the group's id in the ring (wire.GroupID of its name) and
	// Members its live members, for Role "group".
	GroupID uint32 `json:"group_id,omitempty"`
	Members int    `json:"members,omitempty"`
	// PID is the owner as the slot names it (a group: the process the
	// daemon made it for), Process its /proc/PID/comm ("" if gone).
	PID     int    `json:"pid"`
	Process string `json:"process"`
	State   string `json:"state"`
	// Position is the next byte position it reads; LagBytes and LagRecords
	// how far the tail is past it. LagRecords is -1 when unknown (the
	// record at Position was overwritten: the reader was lapped).
	Position   uint64 `json:"position"`
	LagBytes   uint64 `json:"lag_bytes"`
	LagRecords int64  `json:"lag_records"`
	// Consumed (records), ConsumedBytes (payload) and Lost (records) are
	// cumulative for the slot.
	Consumed      uint64 `json:"consumed"`
	ConsumedBytes uint64 `json:"consumed_bytes"`
	Lost          uint64 `json:"lost"`
}

// Slots reads the partition's slots in use (ringbuf.Ring.Backlog) and
// judges each owner from /proc under procRoot ("/proc" if ""). topic and
// partition label the rows. Errors: shm.ErrFault.
func (v *RingView) Slots(topic string, partition int, procRoot string) ([]SlotStat, error) {
	var rows []ringbuf.SlotBacklog
	if err := shm.Guard(func() error {
		rows = v.Ring.Backlog()
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]SlotStat, 0, len(rows))
	for _, b := range rows {
		s := SlotStat{Topic: topic, Partition: partition, Slot: b.Index, Group: b.Group, GroupID: b.GroupID,
			Members: b.Members, PID: int(b.PID), Position: b.Position, LagBytes: b.LagBytes, LagRecords: -1,
			Consumed: b.Consumed, ConsumedBytes: b.ConsumedBytes, Lost: b.Lost}
		if b.LagRecordsKnown {
			s.LagRecords = int64(b.LagRecords)
		}
		switch {
		case b.State == "group":
			s.Role = RoleGroup
		case b.Group >= 0:
			s.Role = RoleGroupMember
		default:
			s.Role = RoleSubscriber
		}
		proc := readProc(procRoot, b.PID, b.Start)
		s.Process = proc.comm
		switch b.State {
		case "group":
			s.State = StateGroup
		case "evicted":
			s.State = StateEvicted
		case "reserved":
			s.State = StateReserved
		case "joining":
			s.State = StateJoining
		default:
			switch {
			case !proc.alive:
				s.State = StateDead
			case proc.stopped:
				s.State = StateStopped
			default:
				s.State = StateLive
			}
		}
		out = append(out, s)
	}
	return out, nil
}

type procInfo struct {
	comm           string
	alive, stopped bool
}

// readProc looks up pid in procRoot: alive if it exists, is no zombie and
// started at start (clock ticks since boot; 0 skips the check).
func readProc(procRoot string, pid uint32, start uint64) procInfo {
	if pid == 0 {
		return procInfo{}
	}
	s, err := proc.ReadStat(procRoot, int(pid))
	if err != nil {
		return procInfo{}
	}
	info := procInfo{comm: s.Comm}
	if !s.Running() {
		return info
	}
	if start != 0 && s.StartTicks != start {
		return procInfo{} // another process now has the pid
	}
	info.alive = true
	info.stopped = s.Stopped()
	return info
}
