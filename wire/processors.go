package wire

// Processors is the reply to a processors request (body Empty): every
// [[processors]] entry kaelixd runs, in name order.
type Processors struct {
	Processors []ProcessorInfo `json:"processors"`
}

// ProcessorRestart is the body of a processor-restart request: restart
// the named processor's process now (a given-up one included, its crash
// count cleared). The reply is Empty; CodeNotFound names an unknown one.
// Root or the daemon's own user only (CodePermission).
type ProcessorRestart struct {
	Name string `json:"name"`
}

// Processor states (ProcessorInfo.State).
const (
	ProcessorRunning = "running"
	ProcessorBackoff = "backoff" // exited; restarting after the delay
	ProcessorFailed  = "failed"  // given up (too many crashes in the window) or cannot start
	ProcessorStopped = "stopped"
)

// ProcessorInfo is one processor: its declaration, its process's state,
// how its limits are enforced, and its counts (from its counters region;
// totals across restarts).
type ProcessorInfo struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`             // "stages" (kaelix-proc) or "command"
	Stages  []string `json:"stages,omitempty"` // plugin names, in chain order
	Command []string `json:"command,omitempty"`
	Input   string   `json:"input"`
	Group   string   `json:"group,omitempty"`
	Outputs []string `json:"outputs"`

	State     string `json:"state"`
	PID       int    `json:"pid"` // 0 when not running
	Restarts  int    `json:"restarts"`
	Crashes   int    `json:"crashes"` // exits within the crash window
	LastExit  string `json:"last_exit,omitempty"`
	Reason    string `json:"reason,omitempty"`   // why backoff or failed
	SinceNS   int64  `json:"since_ns"`           // unix ns the state was entered
	StartedNS int64  `json:"started_ns"`         // unix ns of the last start
	Stderr    string `json:"stderr,omitempty"`   // the last run's stderr tail (info only)
	Counters  string `json:"counters,omitempty"` // why the counts are missing, if they are

	Limits    ProcessorLimits `json:"limits"`
	LimitHits map[string]int  `json:"limit_hits"` // exits caused by a limit: "memory", "files"

	// Pipelines the host runs, and how many of them were running at its
	// last store (the others start or retry: an input it may not attach
	// to, say; Stderr says why). Stages processors only.
	Pipelines        int `json:"pipelines"`
	PipelinesRunning int `json:"pipelines_running"`

	In      uint64 `json:"in"`
	Out     uint64 `json:"out"`
	Dropped uint64 `json:"dropped"`
	Failed  uint64 `json:"failed"`
	// Timed records (one in 16) and their processing time histogram:
	// BucketsNS[i] is bucket i's upper bound in ns (0: the last, no
	// bound), Buckets[i] its count.
	TimedRecords uint64   `json:"timed_records"`
	TimedSumNS   uint64   `json:"timed_sum_ns"`
	BucketsNS    []int64  `json:"buckets_ns,omitempty"`
	Buckets      []uint64 `json:"buckets,omitempty"`
}

// ProcessorLimits says how each limit is enforced, in words.
type ProcessorLimits struct {
	Memory  string `json:"memory"`
	CPU     string `json:"cpu"`
	Files   string `json:"files"`
	Network string `json:"network"`
	CPUSet  string `json:"cpu_set"`
}
