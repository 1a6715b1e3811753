package workers

import "errors"

var (
	// ErrPoolExhausted: the priority level's queue holds task_queue_depth
	// tasks already; the task was not queued (Spawn never blocks). Retry
	// later, shed the work, or configure a deeper queue or more workers.
	ErrPoolExhausted = errors.New("Worker pool exhausted") //lint:ignore ST1005 the text operators know from the older design

	// ErrClosed: the pool is closed (or closing) and takes no more tasks.
	ErrClosed = errors.New("workers: pool closed")

	// ErrBadPriority: a priority outside [0, PriorityLevels).
	ErrBadPriority = errors.New("workers: priority out of range")

	// ErrNoSuchWorker: a worker index outside [0, Workers()).
	ErrNoSuchWorker = errors.New("workers: no such worker")
)
