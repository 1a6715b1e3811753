// Command kaelixctl is Kaelix's command-line tool: topics, publishing and
// subscribing from the shell, the daemon's state, and the operator's
// tools. Run `kaelixctl --help` for the verbs and `kaelixctl VERB --help`
// for their flags.
//
//	kaelixctl [--socket PATH] [--format text|json] [--timeout D] VERB ...
//
//	topics list | create NAME | delete NAME | info NAME | stats [NAME]
//	pub TOPIC [MSG...]          (arguments, stdin lines, or --file)
//	sub TOPIC                   (prints records until --count or Ctrl-C)
//	stat [TOPIC]                (counters, slots, backlog from shared memory, daemon or not)
//	hz TOPIC | latency TOPIC    (rate and gaps; publish-to-receive percentiles)
//	record TOPIC -o FILE | replay FILE --topic T   (package recfile's format)
//	daemon status [--clients] | health | config validate|show|reload
//	bridge list|info | processors list|info|restart
//	doctor                      (host checks, monitoring-plugin exit codes)
//	completion bash|zsh|fish
//
// It links the client library, the protocol (package wire), package stat
// and the daemon's configuration package, never the daemon itself: no
// metrics library, file watcher, HTTP stack or NATS client (a test runs
// `go list -deps`). A bridge's status is read from the file it rewrites
// in kaelixd's state directory (package bridge/bridgestat).
//
// Exit codes (errors.go): 0 ok, 1 other failure, 2 usage, 3 broker not
// running, 4 topic not found, 5 invalid input or conflict, 6 permission
// denied, 7 sub evicted by kaelixd for holding publishers back, 8 kaelixd
// not answering, 9 pub --wait-subscribers not met, 10 pub
// --block-timeout. health and doctor exit like monitoring plugins (0 OK,
// 1 warning/degraded, 2 critical/unhealthy, 3 unknown).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
