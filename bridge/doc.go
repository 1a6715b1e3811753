// Package bridge carries chosen Kaelix topics over NATS to other hosts and
// back: kaelix-bridge's engine. Each rule is one direction of one topic:
// outbound (local topic -> NATS subject; the bridge is an ordinary local
// subscriber with its own slot, so a block topic holds its publishers
// back while the bridge lags, and the daemon may evict it like any
// subscriber) or inbound (NATS subject -> local topic; the bridge is a
// local publisher, and a full local ring pauses consumption).
//
// # Record identity across the hop
//
// An outbound record becomes one NATS message on the rule's subject
// (default kaelix.{host}.{topic}.{partition}). Its data is the record's
// payload. Its headers:
//
//	Kaelix-Rec           the record's identity, five fields separated by one space:
//	                     HOST TOPIC PARTITION SEQUENCE TIMESTAMP_NS (the bridge's
//	                     Config.Host, the local topic, the record's partition, its
//	                     ring sequence in that partition, its CLOCK_MONOTONIC ns on
//	                     the origin host, comparable only with that host's clock, 0
//	                     if unset; numbers in decimal). Example:
//	                     "hosta feed.px 1 48213 1733626800123456789"
//	Nats-Msg-Id          jetstream mode: HOST/TOPIC/PARTITION/SEQUENCE (publish dedup)
//	Kaelix-Key           the message key (client.Message.Key), standard base64 with
//	                     padding; absent for a record without a key
//	NAME: VALUE          each record header, verbatim, when NAME is printable ASCII
//	                     without ':' or space and does not begin with "Kaelix-" or
//	                     "Nats-" (any case) and VALUE is printable ASCII
//	Kaelix-Headers-B64   the other record headers: base64 of, per header, u16 name
//	                     length, u16 value length (little-endian), name, value
//
// One header carries the identity, not one per field: nats.go and the
// server parse every header of every message (with five identity headers
// and six origin headers the core path took 7-10 µs of CPU per record,
// with one each 4.6-5.7 µs: bench/results/2026-12-08-bridge, round 2).
// Record.Append writes the value and ParseRecord reads it, for NATS
// clients on either side of a bridge.
//
// The key travels in Kaelix-Key; inbound, the local record gets it when
// it routes to the record's partition there (client.PartitionOf: the
// local topic has the origin's partition count), else the partition wins
// and the key is not sent.
//
// An inbound message becomes one local record in partition PARTITION
// modulo the local topic's partition count (0 for a message without
// Kaelix-Rec, from a plain NATS publisher). The record carries the
// original headers (verbatim and decoded Kaelix-Headers-B64) plus one:
//
//	Kaelix-Origin   HOST TOPIC PARTITION SEQUENCE TIMESTAMP_NS SUBJECT: the
//	                message's Kaelix-Rec (numbers rewritten canonical) and the
//	                subject it arrived on; "nats SUBJECT" for a message without
//	                Kaelix-Rec. ParseOrigin reads it.
//
// The local record gets its own sequence and timestamp from the local
// ring. Kaelix-Origin marks a record as bridged in: no outbound rule
// forwards it (counted as skipped), so two bridges facing each other with
// the same topics never loop. An inbound rule also drops messages whose
// Kaelix-Rec host is its own host (its own records, back from NATS). A
// Kaelix-Rec that is not five valid fields makes the message malformed:
// dropped and counted lost (reason "malformed").
//
// # Delivery modes
//
// core: at most once. nats.go's reconnect buffer is off, so while NATS is
// disconnected every record is refused at once and counted lost
// (reason "disconnected"); records written to a connection that then
// dies cannot be known on the sending side, and show as gaps on the
// receiving side: an inbound rule counts origin sequence numbers that
// never arrived (reason "gap"). Inbound, nats.go holds up to 64k messages
// while the local ring is full and drops beyond that (nats_dropped; gaps).
//
// jetstream: at least once into the stream, deduplicated by Nats-Msg-Id,
// in order. Outbound, at most Window records are unacknowledged; a
// partition's committed position (the first sequence not yet
// acknowledged) moves only over acknowledged records and is written to
// StateDir/RULE.state (atomically replaced, every CommitInterval). On a
// failed or unanswered publish the rule waits for every outstanding
// answer and republishes from the first unacknowledged record, that one
// alone until the stream acknowledges it, then the rest; after a
// reconnect it publishes nothing new until every answer from before is
// in, so the stream does not hold a record ahead of an earlier one. One
// case is not covered: a stream that refuses some records of a burst in
// flight and accepts later ones of the same burst (a leader election
// finishing within the burst) stores them out of order; the inbound side
// then counts a gap and drops the late ones as duplicates (both visible);
// the cluster test that kills a server mid-stream in JetStream mode hits
// it, and runs only with KAELIX_BRIDGE_CLUSTER=1 until it is fixed. A
// bridge killed (SIGKILL) resumes from its committed position: it
// subscribes from the oldest record the ring holds and skips what is
// committed; what it republishes the stream drops as duplicates within
// its Duplicates window (DedupWindow, default 2 minutes). The resume has
// no gap as long as the local ring still holds the records after the
// committed position (a drop-oldest topic sized for the outage; under
// block, nothing is kept while no subscriber is attached): sequences the
// ring no longer holds are counted lost (reason "gap").
// Inbound reads the stream strictly in order with an ordered consumer
// (nats.go recreates it at the next stream sequence after a reconnect, a
// gap, or 4s without its 2s idle heartbeat: the server holding the
// consumer was lost while the bridge's own connection stayed up) from the stream sequence after the last one the rule handled;
// messages are written into the local ring, then that stream sequence
// and the applied origin sequences are saved to the state file, which is
// the consumer's durable position (the position is committed only after
// the records are in the local ring). Origin sequences already written
// are dropped (duplicates). A bridge killed between a local write and its
// save writes that batch (at most Window records) again, each with its
// Kaelix-Origin identity, by which a consumer can drop them. (A
// server-side durable consumer was tried first: after a NATS restart it
// redelivers the messages that were in flight only after AckWait, behind
// newer ones, so per-partition order needed holding messages back, which
// under load turned into redelivery storms.)
//
// # Operation
//
// One NATS connection per bridge, reconnecting forever with bounded,
// jittered backoff (ReconnectWait doubling up to MaxReconnectWait). A
// rule whose set-up fails (unknown topic, stream refused) is retried with
// backoff from 200ms to 5s while the others run; an invalid rule is
// reported and never run. Status, /status, /healthz (503 while NATS is
// disconnected or a rule is not running), /metrics (Prometheus:
// kaelix_bridge_*) and the status file (Config.StatusFile, rewritten
// every second; package bridgestat reads it) show per rule forwarded,
// acked, redelivered, duplicates, skipped, lost by reason, lag and
// reconnects.
//
// # Concurrency
//
// A Bridge runs each rule on its own goroutine; Status and HTTPAddr may
// be called from any goroutine. Outbound, a record's NATS message is built
// in storage the rule reuses (message, header map, Kaelix-Rec's bytes) and
// nats.go copies it into its write buffer, which its flusher writes out
// in batches (no flush per record): in core mode a record without
// headers costs the bridge no allocation (nats.go's own header encoding
// aside); in jetstream mode the payload and headers are copied for a
// possible republish and nats.go allocates per publish (its future, ack
// timer and reply). Inbound, a record is written with TryPublish (no
// context or timer unless the ring is full) from a reused header map and
// Kaelix-Origin buffer, Kaelix-Rec parsed in place (no allocation in the
// rule); nats.go decodes each message's headers into new maps and strings.
// BenchmarkBridge measures each half.
package bridge
