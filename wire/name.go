package wire

import (
	"errors"
	"fmt"
)

// MaxTopicNameBytes is the longest topic name accepted, in bytes.
const MaxTopicNameBytes = 249

// ErrInvalidTopicName: a topic name breaks the rule of ValidateTopicName.
// Returned as a *TopicNameError. Remedy: rename the topic.
var ErrInvalidTopicName = errors.New("invalid topic name")

// TopicNameError says why a topic name was refused.
type TopicNameError struct {
	Name string // the name as given
	// Pos is the byte offset of the offending byte; -1 for a length error.
	Pos    int
	Reason string
}

func (e *TopicNameError) Error() string {
	if e.Pos < 0 {
		return fmt.Sprintf("Topic name must be 1 to %d bytes long: %q is %d bytes", MaxTopicNameBytes, e.Name, len(e.Name))
	}
	return fmt.Sprintf("Topic name contains invalid characters: %q at byte %d: %s", e.Name, e.Pos, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidTopicName) hold.
func (e *TopicNameError) Unwrap() error { return ErrInvalidTopicName }

// ValidateTopicName checks the topic-name rule shared by the daemon and the
// client library: 1..MaxTopicNameBytes bytes of ASCII letters, digits, '-',
// '_' and '.', where '.' separates non-empty segments (no leading, trailing
// or doubled '.'). Such a name never holds '/', NUL or "..", so it can never
// name a path outside a directory. The error is a *TopicNameError.
func ValidateTopicName(name string) error {
	if len(name) == 0 || len(name) > MaxTopicNameBytes {
		return &TopicNameError{Name: name, Pos: -1}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if i == 0 || i == len(name)-1 || name[i-1] == '.' {
				return &TopicNameError{Name: name, Pos: i, Reason: "empty segment ('.' must separate non-empty segments)"}
			}
		default:
			return &TopicNameError{Name: name, Pos: i, Reason: fmt.Sprintf("byte %#02x is not a letter, digit, '-', '_' or '.'", c)}
		}
	}
	return nil
}
