package processor

import "unsafe"

// arenaString returns b as a string without copying. Hazard: the string
// aliases b, which Message reuses for the next record; it is valid only
// until Message.reset. Only SetHeaderInt calls it, and the Message doc
// says header strings must not be kept.
func arenaString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
