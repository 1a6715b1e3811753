// Package wire is Kaelix's control protocol: the frames kaelixd and its
// clients exchange over a Unix domain stream socket, the typed request and
// reply bodies, the protocol's error codes, and the topic-name rule shared
// by the daemon and the client library.
//
// The data path never touches this protocol: a client asks the daemon for a
// topic's shared-memory regions once (attach), then publishes and
// subscribes straight through the rings mapped from the descriptors it
// received. The control connection stays open as the client's lease.
//
// # Frames
//
// Every message, in both directions, is one frame: a fixed 16-byte header
// followed by a body of at most MaxBodyBytes bytes. Integers are
// little-endian.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+---------------+---------------+
//	|        magic 0x584b "KX"      |    version    |     type      |
//	+-------------------------------+---------------+---------------+
//	|                          request id                           |
//	+---------------------------------------------------------------+
//	|                      body length (bytes)                      |
//	+-------------------------------+-------------------------------+
//	|    descriptor count (fds)     |        reserved (zero)        |
//	+-------------------------------+-------------------------------+
//	|                  body: JSON, body length bytes ...            |
//
// The header's offsets are the constants magicOffset .. reservedOffset in
// frame.go. A receiver refuses, before reading the body, a frame whose
// magic, version or reserved field is wrong, whose body length exceeds
// MaxBodyBytes (1 MiB) or whose descriptor count exceeds MaxFDs: the
// connection is then closed, since the byte stream cannot be resynchronized.
// Decode never panics and never allocates more than the declared, bounded
// body; FuzzDecode exercises it.
//
// # Conversation
//
// The client opens the connection and sends Hello (type 1) first; the
// daemon answers with HelloReply and refuses any other request before it.
// After that the client may send any request; each carries a client-chosen
// request id, echoed in the reply. The daemon answers requests in order, one
// reply per request: either the reply type (the request type with bit 0x80
// set) and its body, or TypeError with an Error body {code, message}. Error
// codes (Code) are stable strings; messages are for people.
//
//	type  request            body          reply body
//	   1  hello              Hello         HelloReply
//	   2  create topic       TopicSpec     TopicInfo
//	   3  open-or-create     TopicSpec     TopicInfo
//	   4  delete topic       Delete        Empty
//	   5  list topics        Page          TopicList (one page)
//	   6  topic info         TopicRef      TopicInfo
//	   7  attach             Attach        AttachReply + descriptors
//	   8  detach             Detach        Empty
//	   9  stats              Page          Stats (one page of topics)
//	  10  daemon status      Empty         Status
//	  11  config show        Empty         ConfigView
//	  12  config reload      Empty         ConfigReload (CodeConfig if refused)
//	  13  health             Empty         Health
//	 127  (error reply)      -             Error
//
// # Descriptors
//
// Each partition's ring lives in shm regions (ringbuf.Create): the
// data region (ring header, tail, counters, publisher table, records),
// written only by publishers and the daemon; the consumer region (the
// doorbells), written by every role; one slot region per subscriber slot
// (a subscriber's cursor and counters), written by its subscriber and
// read by publishers; and one slot region per queue-group slot (a group's
// shared cursor), written by the group's members. An attach reply carries
// AttachReply.Descriptors[i] descriptors for entry i of
// AttachReply.Partitions, partition after partition: the data region's,
// the consumer region's, then slot regions' (for a publisher every
// subscriber slot, then every group slot, in index order; for a
// subscriber only the slot the daemon reserved for it,
// AttachReply.Slots[i], and for a queue-group member (Attach.Group) then
// its group's slot, AttachReply.GroupSlots[i]). They
// travel as SCM_RIGHTS ancillary data with the reply frame's bytes, at
// most 250 per message (the kernel's limit is 253), so a frame's
// descriptors may arrive with several of its bytes; the header's
// descriptor count says how many belong to the frame. Readers collect
// every descriptor the socket delivers in arrival order and hand each
// frame its count, so it does not matter which read carried them.
// Requests never carry descriptors; the daemon closes any it is sent and
// drops the client.
//
// Access modes differ by role:
//
//	role        data region                 consumer region  slot regions
//	publisher   read-write (O_RDWR)         read-write       all, read-write
//	subscriber  read-only (opened O_RDONLY) read-write       its own (and its group's), read-write
//
// A subscriber's data descriptor is a separate open file description
// opened O_RDONLY, not a duplicate of the daemon's: it can be mapped only
// PROT_READ (the kernel refuses PROT_WRITE mappings, mprotect to
// PROT_WRITE, write and ftruncate on it), so a subscriber cannot forge
// records, move the tail or truncate the data region. Reopening it for
// writing (open of /proc/self/fd/N) is decided by the file's permission
// bits, and data and slot region files never carry group or other write
// bits; the daemon's own user and root can write them regardless. Clients
// map the data region PROT_READ and attach with ringbuf.Attach. A
// subscriber holds no descriptor of any other consumer's slot, so it
// cannot move their cursors; what it can still write is its own slot, its
// group's slot if it is a member, the consumer region (the doorbells) and
// those files' sizes (ftruncate faults every mapper; the daemon's sweep
// fences the partition).
//
// # Versioning
//
// Version is the frame header's version byte and Hello.Version. A daemon
// refuses a frame of another version with CodeVersion and closes the
// connection. Version 2 changed the descriptors of an attach reply (two
// per partition) from version 1's single read-write region descriptor;
// version 3 added the slot regions and spread descriptors over messages;
// version 4 made list, stats and info replies compact (a partition's slot
// regions are a directory and a count, PartitionInfo.Slots and SlotDir,
// not one path each) and split list and stats into pages (Page, a name
// cursor and a limit; the reply's Next), so a listing of any size fits in
// frames of MaxBodyBytes.
// Bodies are JSON objects; receivers ignore unknown fields, so a field may
// be added without a version bump, never removed or retyped.
//
// # Concurrency
//
// A Conn may be used by one reader goroutine and any number of writer
// goroutines at once (writes are serialized). Everything else here is plain
// values and pure functions.
package wire
