// Package stat reads Kaelix's state straight from shared memory and the
// daemon's state directory, with or without a live kaelixd: the ring
// counters, every subscriber and queue-group slot with its backlog, and
// the daemon's heartbeat. It is AeronStat's approach (map the counters
// file, read it, never write): every region is opened O_RDONLY and mapped
// PROT_READ, so a reader needs only read permission on the region files
// and can change nothing, and a SIGSTOPped, hung or dead daemon does not
// stop it.
//
// Where the regions are: a live daemon lists their paths (wire.TopicList);
// without one, ReadRegistry reads the registry the daemon keeps in its
// state directory (topics.json: each topic's spec and region names) and
// Dirs/Find locate the files in the region base directories (every
// hugetlbfs mount and /dev/shm, each with the base directory name,
// "kaelix" by default).
//
// Used by kaelixctl (stat, topics stats, health), the daemon's metrics
// collector and kaelix-bench. It imports neither the daemon nor any HTTP
// or metrics package.
//
// Concurrency: a RingView or CounterReader is used by one goroutine at a
// time. Every read of shared memory runs under shm.Guard, so a region
// truncated under the reader gives shm.ErrFault, never a crash.
package stat
