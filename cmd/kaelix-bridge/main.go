// Command kaelix-bridge carries chosen Kaelix topics over NATS (core or
// JetStream) to other hosts and back, as configured by a TOML file of
// [[rules]] (see package bridge and configs/kaelix-bridge.example.toml).
//
//	kaelix-bridge [--format text|json] [--timeout D] VERB ...
//
//	run --config FILE [--http ADDR]   run the rules until SIGINT/SIGTERM
//	check-config FILE                 validate a file, every error at once
//	status [--http ADDR]              a running bridge's rules and counters
//
// Exit codes: 0 ok, 1 failure (kaelixd not running, HTTP address busy,
// status: bridge unreachable), 2 usage or invalid configuration, 3 status:
// the bridge is degraded.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
