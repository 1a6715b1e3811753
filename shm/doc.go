// Package shm provides regions of shared memory for one Linux host that
// fail cleanly instead of crashing.
//
// A region is one named file in a private base directory (mode 0700, see
// Config.DirName) on hugetlbfs (2 MiB or 1 GiB pages) or tmpfs (/dev/shm).
// The file outlives the daemon that made it, so a restarted daemon can Open
// it again. It starts with a 4096-byte header (layout.go) and the data area
// follows at DataOffsetBytes.
//
// Verbs: Create makes a region (the daemon); Open maps one by name;
// AttachFile and AttachFD map one from a descriptor received over a Unix
// socket (clients); Check re-validates; Close unmaps; Remove unlinks.
//
// Failure model. Every page of a region is reserved at Create (fallocate, or
// the hugetlbfs mmap reservation), so a full /dev/shm or too few huge pages
// is a typed error at Create (*NoSpaceError, *HugePagesError), never a
// SIGBUS later. But any process holding a writable descriptor can ftruncate
// the file; touching the lost pages then raises SIGBUS. Hence: attach
// compares the file size with the header, Check repeats that, and every
// access to memory this process did not create belongs inside Guard, which
// turns the fault into ErrFault. Read-only attachers map PROT_READ.
//
// Memory model. The creator stores the header's layout version last with an
// atomic store; attachers load it atomically before reading the rest, so a
// non-zero version publishes the header. Go's sync/atomic operations are
// sequentially consistent, which holds across processes sharing these
// pages. The race detector cannot see other processes.
//
// NUMA placement is injected (Config.Bind, Config.Locate) so that this
// package does not depend on package numa.
package shm
