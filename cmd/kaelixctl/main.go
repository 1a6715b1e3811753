// Command kaelixctl is Kaelix's command-line tool: it creates, lists,
// inspects and deletes topics, publishes and subscribes from the shell, and
// shows the daemon's status. Run `kaelixctl --help` for the verbs.
//
//	kaelixctl [--socket PATH] [--format text|json] [--timeout D] VERB ...
//
//	topics list | create NAME | delete NAME | info NAME
//	pub TOPIC [MSG...]          (arguments, stdin lines, or --file)
//	sub TOPIC                   (prints records until --count or Ctrl-C)
//	daemon status
//
// Exit codes (see errors.go): 0 ok, 1 other failure, 2 usage, 3 broker not
// running, 4 topic not found, 5 invalid input or conflict, 6 permission
// denied, 7 sub evicted by kaelixd for holding publishers back.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
