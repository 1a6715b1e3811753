package ringbuf

import (
	"testing"
	"unsafe"
)

// TestLayout pins every offset of the shared layout to a golden number. A
// failure here means the layout changed: bump LayoutVersion and update
// DESIGN.md along with these numbers.
func TestLayout(t *testing.T) {
	golden := []struct {
		name      string
		got, want uintptr
	}{
		{"magic", magicOffset, 0},
		{"version", versionOffset, 8},
		{"kind", kindOffset, 12},
		{"policy", policyOffset, 16},
		{"maxPayload", maxPayloadOffset, 20},
		{"capacity", capacityOffset, 24},
		{"maxPublishers", maxPublishersOffset, 32},
		{"maxSubscribers", maxSubscribersOffset, 36},
		{"maxGroups", maxGroupsOffset, 40},
		{"creatorPID", creatorPIDOffset, 44},
		{"unblockTimeoutNS", unblockTimeoutNSOffset, 48},
		{"createdNS", createdNSOffset, 56},
		{"totalBytes", totalBytesOffset, 64},
		{"headerLength", headerLength, 72},
		{"tailPosition", tailPositionOffset, 128},
		{"tailSequence", tailSequenceOffset, 136},
		{"dataBell", dataBellOffset, 256},
		{"dataWaiters", dataWaitersOffset, 260},
		{"spaceBell", spaceBellOffset, 384},
		{"spaceWaiters", spaceWaitersOffset, 388},
		{"backPressure", backPressureOffset, 512},
		{"unblocked", unblockedOffset, 520},
		{"waits", waitsOffset, 528},
		{"wakeups", wakeupsOffset, 536},
		{"rejected", rejectedOffset, 544},
		{"lapped", lappedOffset, 552},
		{"reaped", reapedOffset, 560},
		{"countersLength", countersLength, 56},
		{"tables", tablesOffset, 640},
		{"slotLength", slotLength, 128},
		{"pub.state", pubStateOffset, 0},
		{"pub.pid", pubPIDOffset, 4},
		{"pub.start", pubStartOffset, 8},
		{"pub.intentPos", pubIntentPosOffset, 16},
		{"pub.intentLen", pubIntentLenOffset, 24},
		{"pub.intentSeq", pubIntentSeqOffset, 32},
		{"pub.intentCount", pubIntentCountOffset, 40},
		{"pub.records", pubRecordsOffset, 48},
		{"sub.state", subStateOffset, 0},
		{"sub.pid", subPIDOffset, 4},
		{"sub.start", subStartOffset, 8},
		{"sub.position", subPositionOffset, 16},
		{"sub.consumed", subConsumedOffset, 24},
		{"sub.lost", subLostOffset, 32},
		{"sub.group", subGroupOffset, 40},
		{"sub.hold", subHoldOffset, 48},
		{"group.state", groupStateOffset, 0},
		{"group.id", groupIDOffset, 4},
		{"group.cursor", groupCursorOffset, 16},
		{"group.cursorSeq", groupCursorSeqOffset, 24},
		{"group.consumed", groupConsumedOffset, 32},
		{"group.lost", groupLostOffset, 40},
		{"rec.state", recStateOffset, 0},
		{"rec.length", recLengthOffset, 8},
		{"rec.type", recTypeOffset, 12},
		{"rec.publisher", recPublisherOffset, 14},
		{"rec.sequence", recSequenceOffset, 16},
		{"rec.timestamp", recTimestampOffset, 24},
		{"RecordHeaderLength", RecordHeaderLength, 32},
	}
	for _, g := range golden {
		if g.got != g.want {
			t.Errorf("%s offset = %d, want %d", g.name, g.got, g.want)
		}
	}
	if LayoutVersion != 1 {
		t.Errorf("LayoutVersion = %d, want 1 (update the golden offsets with it)", LayoutVersion)
	}
	// Every atomic word is naturally aligned; CAS128 pairs are 16-aligned.
	for _, off := range []uintptr{tailPositionOffset, groupCursorOffset} {
		if off%16 != 0 {
			t.Errorf("CAS128 pair at %d is not 16-byte aligned", off)
		}
	}
	for _, off := range []uintptr{magicOffset, capacityOffset, unblockTimeoutNSOffset, createdNSOffset, totalBytesOffset,
		backPressureOffset, pubStartOffset, pubIntentPosOffset, subPositionOffset, subHoldOffset, recSequenceOffset, recTimestampOffset} {
		if off%8 != 0 {
			t.Errorf("64-bit word at %d is not 8-byte aligned", off)
		}
	}
	// Hot words sit on separate line pairs.
	blocks := []uintptr{headerOffset, tailOffset, dataBellOffset, spaceBellOffset, countersOffset, tablesOffset}
	for i := 1; i < len(blocks); i++ {
		if blocks[i]-blocks[i-1] != linePair || blocks[i]%linePair != 0 {
			t.Errorf("block %d at %d is not on its own line pair", i, blocks[i])
		}
	}
	if headerLength > linePair || countersLength > linePair || pubRecordsOffset+8 > slotLength || subHoldOffset+8 > slotLength || groupLostOffset+8 > slotLength {
		t.Error("a block overflows its line pair")
	}
	if dataOffsetFor(16, 16, 4)%linePair != 0 {
		t.Error("data area is not line-pair aligned")
	}
	var w uint64
	if unsafe.Sizeof(w) != 8 {
		t.Fatal("uint64 is not 8 bytes")
	}
	if got := dataOffsetFor(1, 1, 0); got != 896 {
		t.Errorf("SPSC data offset = %d, want 896", got)
	}
}

func TestMagicSpellsKXRING01(t *testing.T) {
	var b [8]byte
	for i := range b {
		b[i] = byte(Magic >> (8 * i))
	}
	if string(b[:]) != "KXRING01" {
		t.Fatalf("Magic spells %q", b[:])
	}
}
