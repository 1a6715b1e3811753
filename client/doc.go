// Package client is Kaelix's client library: connect to kaelixd, create
// topics, and publish and subscribe through shared-memory rings.
//
// The daemon is on the control path only. NewPublisher and Subscribe ask it
// for a topic's region descriptors (over the Unix socket, SCM_RIGHTS; two
// per partition, a data region and a consumer region), map them, and from
// then on every message goes straight into or out of the ring in this
// process: no syscall, no copy beyond the one into the ring (none with
// Loan/Send), and no daemon round trip. Handles keep working
// while the daemon restarts; the Client reconnects by itself.
//
//	c, err := client.Connect(ctx, client.Options{})
//	_, err = c.OpenOrCreateTopic(ctx, client.TopicConfig{Name: "host.telemetry"})
//	pub, err := c.NewPublisher(ctx, "host.telemetry", client.PublisherOptions{})
//	err = pub.Publish(ctx, client.NewMessage(payload, client.WithHeader("unit", "ns")))
//	sub, err := c.Subscribe(ctx, "host.telemetry", client.SubscribeOptions{From: client.FromOldest})
//	m, err := sub.Receive(ctx)
//
// # Vocabulary
//
// Publishing: TryPublish (never waits), Publish (waits while
// back-pressured, bounded by ctx), Loan/Send (zero copy: claim in place,
// then send or abort). Receiving: Poll (zero copy, never waits, handler
// sees a view valid during the call), PollWait (Poll that waits with the
// wait strategy; zero copy, no allocation), Receive (copying, waits with
// the wait strategy). Expected outcomes are preallocated sentinel values
// (ErrBackPressured, ErrFull, ErrLapped, ErrStalled), and ErrNotConnected (a
// block partition with no subscriber able to receive: TryPublish and Loan
// publish nothing; Publisher.Connected, Subscribers and WaitSubscribers
// tell and wait), never formatted errors. A Publish that gives up on
// back-pressure says who held it back (*BlockedError).
//
// # Types and errors
//
// Everything a program sets or reads is a type of this package, with its
// fields documented here: TopicConfig (what CreateTopic makes; zero
// fields take defaults, TopicConfig.Normalized shows them), TopicInfo and
// its PartitionInfo and Counters (what the daemon reports, read from
// shared memory), DaemonStatus and DaemonStats. Kind and Policy are the
// one kind and policy types of Kaelix, shared with the protocol and the
// daemon's config. Every error a caller needs to tell apart is matched
// with errors.Is or errors.As against this package's values: the daemon's
// refusals (ErrTopicNotFound, ErrInvalidSpec, ErrNoSlot, ...; a
// *BrokerError), the expected outcomes above, ErrEvicted, ErrTopicDeleted,
// ErrCorrupt (*CorruptError) and ErrFault (*FaultError). No program needs
// to import ringbuf or shm; they are the layers underneath.
//
// # Record encoding
//
// A message is one ring record. Without headers or key the record payload
// is the message payload (record type RecordTypePlain). With headers, a
// key or both the record type is RecordTypeHeaders and a header block
// (the headers, then the key) precedes the payload; see message.go. The
// key thus travels with the message: subscribers, recordings and bridges
// see it. TryPublish and Poll do not allocate for messages without
// headers.
//
// # Concurrency
//
// A Client is safe for concurrent use. A Publisher or Subscriber must be
// used by one goroutine at a time (make one per goroutine); Client.Close
// closes the handles made from it, so call it after their goroutines
// stopped. Handles may move between goroutines with the usual
// happens-before (a channel send, a mutex).
//
// # Memory model and failure
//
// Records are published by one atomic store of their state word and read
// after its atomic load (see package ringbuf); Go's atomics are
// sequentially consistent, and the race detector cannot see other
// processes. Mapped regions stay valid until the handle is closed, even if
// the topic is deleted (the file is unlinked; the mapping lives on). A
// process that truncates a region file with its writable descriptor makes
// other processes' accesses fault (SIGBUS). Every call that touches a
// topic's memory (TryPublish, Publish, Poll, PollWait, Receive, Close) runs with
// debug.SetPanicOnFault set on the calling goroutine (a few nanoseconds, no
// syscall, no allocation) and returns a *FaultError (errors.Is ErrFault)
// instead of crashing; the handle is then unusable and the daemon takes the
// partition out of service. Loan buffers and the Payload a Poll handler sees
// alias shared memory: touching them outside those calls is not guarded.
//
// A Subscriber maps each partition's data region (the records) read-only:
// the daemon sends subscribers a descriptor opened O_RDONLY, so the kernel
// allows no writable mapping of it. A subscriber can neither forge nor
// damage records; a handler that writes into a Payload gets a *FaultError
// (ReadOnly set). It maps read-write only the consumer region (the
// doorbells) and its own slot region (its cursor and counters), plus its
// queue group's slot region if it is a member; it gets no descriptor of any
// other consumer's slot. A Publisher maps the data, consumer and every
// slot region read-write (it reads every cursor). See ringbuf's layout.go
// for what each region holds.
package client
