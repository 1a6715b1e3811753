// Command kaelix-bridge carries chosen Kaelix topics over NATS (core or
// JetStream) to other hosts and back, as configured by a TOML file of
// [[rules]] (see package bridge and configs/kaelix-bridge.example.toml).
//
//	kaelix-bridge [--format text|json] [--timeout D] VERB ...
//
//	run --config FILE [--http ADDR] [--status-file PATH]
//	                                  run the rules until SIGINT/SIGTERM
//	check-config FILE                 validate a file, every error at once
//	status [--http ADDR | --file PATH]
//	                                  a bridge's rules and counters, from its
//	                                  /status or its status file
//
// kaelixd runs each bridge it declares with --status-file
// STATE_DIR/bridges/NAME.status, rewritten every second (package
// bridge/bridgestat), which kaelixctl bridge reads.
//
// Exit codes: 0 ok, 1 failure (kaelixd not running, HTTP address busy,
// status: bridge unreachable), 2 usage or invalid configuration, 3 status:
// the bridge is degraded, or its status file is stale.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
