package bridge

import "unsafe"

// transientString views b as a string without copying. The string is
// valid only while b's bytes are not written again: it is for header
// values handed to nats.go, which encodes them into its write buffer
// before the publish returns (msgBuilder). Never keep one.
func transientString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
