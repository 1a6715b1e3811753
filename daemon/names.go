package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/kaelix-io/kaelix/shm"
	"github.com/kaelix-io/kaelix/wire"
)

// Region file names of a topic's partitions.

// consumerSuffix ends the name of every consumer region: partition N of
// topic T is the data region T.pN, the consumer region T.pN.c and the
// subscriber slot regions T.pN.s0, T.pN.s1, ... Data region names end in
// ".p" and digits, so none of them collide.
const consumerSuffix = ".c"

// slotSuffix starts the suffix of slot region names (then the slot index).
const slotSuffix = ".s"

// regionName names partition i's data region, or with consumer its
// consumer region (see regionBase).
func regionName(topicName string, i int, consumer bool) string {
	suffix := ""
	if consumer {
		suffix = consumerSuffix
	}
	return partRegionName(topicName, i, suffix)
}

// slotRegionName names slot region slot of partition i: subscriber slot
// k is T.pN.sK; queue-group slot j (slot = max_subscribers + j) is
// T.pN.gJ.
func slotRegionName(topicName string, i, slot, maxSubscribers int) string {
	if slot >= maxSubscribers {
		return partRegionName(topicName, i, groupSuffix+strconv.Itoa(slot-maxSubscribers))
	}
	return partRegionName(topicName, i, slotSuffix+strconv.Itoa(slot))
}

// groupSuffix starts the suffix of queue-group slot region names.
const groupSuffix = ".g"

// isSlotRegion reports whether name ends like a slot region's (".sK" or
// ".gJ" after a partition's ".pN").
func isSlotRegion(name string) bool {
	for _, suffix := range []string{slotSuffix, groupSuffix} {
		j := strings.LastIndex(name, suffix)
		if j < 0 || j+len(suffix) == len(name) {
			continue
		}
		if _, err := strconv.ParseUint(name[j+len(suffix):], 10, 31); err == nil && strings.Contains(name[:j], ".p") {
			return true
		}
	}
	return false
}

func partRegionName(topicName string, i int, extra string) string {
	return regionBase(topicName) + ".p" + strconv.Itoa(i) + extra
}

// Region file names. Every region of topic T is named regionBase(T) plus
// a partition suffix of at most maxSuffixBytes (".p63.s4093": partitions
// are at most wire.MaxPartitions, and a topic's slots per partition at
// most wire.MaxFDs). regionBase(T) is T itself when T is at most
// fullNameMaxBytes long; a longer T becomes its first longPrefixBytes
// bytes, "..", and a 128-bit SHA-256 digest of the whole name in hex:
//
//	T <= 235 bytes:  T                      + ".pN" [".c" | ".sK" | ".gJ"]
//	T >  235 bytes:  T[:201] ".." digest(T) + ".pN" [".c" | ".sK" | ".gJ"]
//
// A topic name never holds "..", so a digested base never equals a topic
// name's; two long names share a file name only if their digests collide
// (SHA-256 truncated to 128 bits). Even then they never share a file: each
// region's header holds the full topic name (shm Header.Label), checked at
// every open, and a create that finds a file holding another topic is
// refused (createRegion).
const (
	maxSuffixBytes   = len(".p63") + len(".s4093")
	fullNameMaxBytes = shm.MaxNameBytes - maxSuffixBytes
	digestHexBytes   = 32
	longPrefixBytes  = fullNameMaxBytes - len("..") - digestHexBytes
)

// nameDigest is the digest of a long topic name in its region file names.
// A variable so that a test can force two names to collide.
var nameDigest = func(topicName string) string {
	sum := sha256.Sum256([]byte(topicName))
	return hex.EncodeToString(sum[:digestHexBytes/2])
}

// regionBase is the part of every region name of topicName before the
// partition suffix (see maxSuffixBytes).
func regionBase(topicName string) string {
	if len(topicName) <= fullNameMaxBytes {
		return topicName
	}
	return topicName[:longPrefixBytes] + ".." + nameDigest(topicName)
}

// validateTopicName checks a topic name (wire.ValidateTopicName) and that
// its longest region name is a valid region file name, so that a name the
// daemon cannot map to files is refused here, with the invalid-name code,
// and never at creation. (By construction of regionBase the second check
// cannot fail for a valid topic name; it guards the construction.)
func validateTopicName(name string) *wire.Error {
	if err := wire.ValidateTopicName(name); err != nil {
		return &wire.Error{Code: wire.CodeInvalidName, Message: err.Error()}
	}
	if err := shm.ValidateName(regionBase(name) + ".p63.s4093"); err != nil {
		return wire.Errorf(wire.CodeInvalidName, "topic name %q cannot be mapped to region files: %v", name, err)
	}
	return nil
}
