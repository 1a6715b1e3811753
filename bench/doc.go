// Package bench is kaelix-bench's harness: it measures Kaelix beside the
// alternatives on one host, in one run, and writes the report.
//
// # Model
//
// A run is a mode (pingpong, oneway, throughput, fanout, fanin) over a set
// of transports, Kaelix wait strategies, payload sizes and batch settings.
// Each combination wires directed links (transport.newLink), starts the
// other side of every link as a real process, a re-execution of the same
// binary (ChildArg, IsChild, ChildMain) or, for Go channels, a goroutine,
// pins each side to its CPU (numa.PinThread) and runs the sides (side.go).
// Kaelix transports go through package client against topics of a daemon
// (package daemon) the parent embeds; NATS (an embedded nats-server) and
// shmipc-go through their own libraries; the floors, sockets and channels
// are written here. Go channels run as a Go program runs them: one
// process, unpinned, the default GOMAXPROCS.
//
// # Interleaving
//
// With Options.Interleave (the suite's pingpong and throughput steps),
// every cross-process transport, wait strategy and batch setting of a
// step shares one pair of processes and takes turns in blocks, round
// after round (interleave.go), so that all see the same machine phases.
// Claims (claims.go) compare two paths of one group round by round: the
// median of the per-round ratios, with their range and the round count.
// A Kaelix path that beats its own floor makes its claim invalid, and
// RunSuite runs the group again (at most MaxReruns times). The C
// reference (cref.go, cring/cring.c) alternates whole runs with
// copy-floor, to show the Go floor is a floor.
//
// # Measurement
//
// Latencies go into HdrHistograms (Histogram); warm-up records are sent
// first and excluded. Oneway, fanout and fanin send at a fixed rate and
// stamp each record with its intended send time, so a stalled sender shows
// as latency (coordinated-omission correction). Allocations and syscalls
// are counted over the measured window of every process of the run (see
// report.md's "How the figures are taken"). Judge speed by ratios within
// one interleaved group: EvaluateClaims does so for issue 12's claims.
//
// # Output
//
// Report holds the machine facts and the rows: WriteTable, WriteJSON
// (results.json: {"machine", "results"}), WriteDir (report.md,
// results.json, one plot per pingpong regime and per other latency mode,
// hlog/*.hlog HdrHistogram logs). Session runs combinations; Suite is the
// standard suite scripts/bench.sh runs.
//
// # Concurrency
//
// A Session is used by one goroutine. The shared-memory floors use Go's
// sequentially consistent atomics across processes; the race detector
// cannot see other processes.
package bench
