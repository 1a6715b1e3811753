package main

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/kaelix-io/kaelix/client"
)

// Exit codes. Each is stable: scripts may test for them.
const (
	exitOK               = 0  // success (also: pub or sub stopped by SIGINT/SIGTERM)
	exitFailure          = 1  // anything not below: I/O, daemon-side failure, --timeout expired
	exitUsage            = 2  // unknown verb or flag, missing argument, bad flag value
	exitBrokerNotRunning = 3  // nothing listens on the socket: start kaelixd or fix --socket
	exitNotFound         = 4  // no topic of that name (sub, pub: or it was deleted while attached)
	exitInvalid          = 5  // invalid name or parameters, message too large, topic too large for the host, topic exists with other parameters or in use, no free slot
	exitPermission       = 6  // the topic's mode and group, or the control socket's, do not allow this user
	exitEvicted          = 7  // sub: kaelixd evicted the subscriber for holding publishers back (daemon.evict_stalled_after)
	exitNotAnswering     = 8  // the socket accepts connections but kaelixd does not answer within --timeout: stopped, hung or overloaded
	exitNoSubscribers    = 9  // pub: --wait-subscribers N did not see N subscribers within --wait-timeout
	exitBlocked          = 10 // pub: a message stayed back-pressured for --block-timeout
)

// errInvalidInput marks input this tool refuses before asking the daemon
// (a --mode that is not octal, a line longer than the topic allows).
var errInvalidInput = errors.New("invalid input")

// invalidf returns an error wrapping errInvalidInput (exit code 5).
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidInput, fmt.Sprintf(format, args...))
}

// exitCode maps an error returned by a verb to the process's exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, client.ErrBrokerNotRunning):
		return exitBrokerNotRunning
	case errors.Is(err, client.ErrBrokerNotAnswering):
		return exitNotAnswering
	case errors.Is(err, client.ErrTopicNotFound), errors.Is(err, client.ErrTopicDeleted), errors.Is(err, client.ErrTopicRecreated):
		return exitNotFound
	case errors.Is(err, client.ErrPermission):
		return exitPermission
	case errors.Is(err, client.ErrEvicted):
		return exitEvicted
	case errors.Is(err, errNoSubscribers):
		return exitNoSubscribers
	case errors.Is(err, errBlocked):
		return exitBlocked
	case errors.Is(err, client.ErrInvalidTopicName),
		errors.Is(err, client.ErrInvalidSpec),
		errors.Is(err, client.ErrTopicTooLarge),
		errors.Is(err, client.ErrTopicConflict),
		errors.Is(err, client.ErrTopicInUse),
		errors.Is(err, client.ErrMessageTooLarge),
		errors.Is(err, client.ErrNoPartition),
		errors.Is(err, client.ErrUnsupported),
		errors.Is(err, client.ErrNoSlot),
		errors.Is(err, bufio.ErrTooLong),
		errors.Is(err, errInvalidInput):
		return exitInvalid
	}
	return exitFailure
}

// hint returns a remedy to print under an error, or "".
func hint(err error) string {
	switch {
	case errors.Is(err, client.ErrBrokerNotRunning):
		return "start kaelixd (e.g. `kaelixd --socket PATH`), or point --socket / $KAELIX_SOCKET at the running one"
	case errors.As(err, new(*client.SocketPermissionError)):
		return "ask the operator for the socket's group (kaelixd's security.socket_group; its mode is security.socket_mode), " +
			"or point --socket / $KAELIX_SOCKET at a daemon this user may reach"
	case errors.Is(err, client.ErrBrokerNotAnswering):
		return "kaelixd accepts connections but does not answer: it is stopped (SIGSTOP: resume it with kill -CONT), hung or overloaded; " +
			"`kaelixctl health` tells which from its heartbeat"
	case errors.Is(err, client.ErrTopicNotFound):
		return "create it with `kaelixctl topics create NAME`; `kaelixctl topics list` shows what exists"
	case errors.Is(err, client.ErrInvalidTopicName):
		return "a topic name is 1-249 bytes of letters, digits, '-', '_' and '.', with no empty segment"
	case errors.Is(err, client.ErrTopicTooLarge):
		return "make it smaller (--partitions, --capacity), pass --force to create it anyway, or raise kaelixd's shm.max_topic_share or shm.max_topic_bytes"
	case errors.Is(err, client.ErrTopicInUse):
		return "stop its publishers and subscribers first, or pass --force"
	case errors.Is(err, client.ErrTopicDeleted):
		return "the topic was deleted (topics delete --force, or its --ephemeral daemon stopped) while attached; every message published before was delivered"
	case errors.Is(err, client.ErrTopicRecreated):
		return "the daemon restarted without the topic's rings (an --ephemeral daemon removes them on exit), or their files were removed; " +
			"run the command again to attach to the daemon's topic of that name"
	case errors.Is(err, errNoSubscribers):
		return "start the subscribers first (they count once their Subscribe has returned), or raise --wait-timeout"
	case errors.Is(err, errBlocked):
		return "the subscriber named above does not read: resume or stop it; kaelixd evicts it after daemon.evict_stalled_after (unless that is 0s)"
	case errors.Is(err, client.ErrEvicted):
		return "kaelixd takes the ring slot of a subscriber that is stopped, or does not read, for longer than daemon.evict_stalled_after " +
			"while its block/reject ring is at least half full; the last record printed may be torn. " +
			"Run sub again to go on from the latest record (a process evicted twice is killed)"
	}
	return ""
}
