package ringbuf

import "testing"

// TestLayout pins every offset of the shared layout to a golden number. A
// failure here means the layout changed: bump LayoutVersion and update
// DESIGN.md along with these numbers.
func TestLayout(t *testing.T) {
	const c = consumerArea
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
		{"consumerBytes", consumerBytesOffset, 72},
		{"slotsApart", slotsApartOffset, 80},
		{"deleted", deletedOffset, 84},
		{"headerLength", headerLength, 88},
		{"tailPosition", tailPositionOffset, 128},
		{"tailSequence", tailSequenceOffset, 136},
		{"publishers", publishersOffset, 384},
		{"consumer.magic", consumerMagicOffset, c},
		{"consumer.version", consumerVersionOffset, c | 8},
		{"consumer.createdNS", consumerCreatedNSOffset, c | 16},
		{"consumer.size", consumerSizeOffset, c | 24},
		{"consumer.subscriberEpoch", subscriberEpochOffset, c | 32},
		{"consumerHeaderLength", consumerHeaderLength, 36},
		{"dataBell", dataBellOffset, c | 128},
		{"dataWaiters", dataWaitersOffset, c | 132},
		{"spaceBell", spaceBellOffset, c | 256},
		{"spaceWaiters", spaceWaitersOffset, c | 260},
		{"backPressure", backPressureOffset, 256},
		{"unblocked", unblockedOffset, 264},
		{"waits", waitsOffset, 272},
		{"wakeups", wakeupsOffset, 280},
		{"rejected", rejectedOffset, 288},
		{"reaped", reapedOffset, 296},
		{"evicted", evictedOffset, 304},
		{"fences", fencesOffset, 312},
		{"countersLength", countersLength, 64},
		{"subscribers", subscribersOffset, c | 384},
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
		{"sub.consumedBytes", subConsumedBytesOffset, 56},
		{"sub.ringCreated", subRingCreatedOffset, 64},
		{"sub.lapped", subLappedOffset, 72},
		{"sub.unblocked", subUnblockedOffset, 80},
		{"sub.waits", subWaitsOffset, 88},
		{"sub.wakeups", subWakeupsOffset, 96},
		{"sub.tampered", subTamperedOffset, 104},
		{"sub.fences", subFencesOffset, 112},
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
	if LayoutVersion != 4 {
		t.Errorf("LayoutVersion = %d, want 4 (update the golden offsets with it)", LayoutVersion)
	}
	// Every atomic word is naturally aligned; CAS128 pairs are 16-aligned.
	for _, off := range []uintptr{tailPositionOffset, groupCursorOffset, subscribersOffset &^ c} {
		if off%16 != 0 {
			t.Errorf("CAS128 pair at %d is not 16-byte aligned", off)
		}
	}
	for _, off := range []uintptr{magicOffset, capacityOffset, unblockTimeoutNSOffset, createdNSOffset, totalBytesOffset,
		consumerBytesOffset, backPressureOffset, pubStartOffset, pubIntentPosOffset, subPositionOffset, subHoldOffset,
		recSequenceOffset, recTimestampOffset, consumerCreatedNSOffset, consumerSizeOffset} {
		if off%8 != 0 {
			t.Errorf("64-bit word at %d is not 8-byte aligned", off)
		}
	}
	// Hot words sit on separate line pairs, in both areas.
	for _, blocks := range [][]uintptr{
		{headerOffset, tailOffset, countersOffset, publishersOffset},
		{consumerMagicOffset, dataBellOffset, spaceBellOffset, subscribersOffset},
	} {
		for i := 1; i < len(blocks); i++ {
			if blocks[i]-blocks[i-1] != linePair || blocks[i]%linePair != 0 {
				t.Errorf("block at %#x is not on its own line pair", blocks[i])
			}
		}
	}
	if headerLength > linePair || consumerHeaderLength > linePair || countersLength > linePair ||
		pubRecordsOffset+8 > slotLength || subFencesOffset+8 > slotLength || groupLostOffset+8 > slotLength {
		t.Error("a block overflows its line pair")
	}
	if got := dataOffsetFor(1); got != 512 {
		t.Errorf("SPSC data offset = %d, want 512", got)
	}
	if got := consumerBytesFor(1, 0); got != 512 {
		t.Errorf("SPSC consumer area = %d bytes, want 512", got)
	}
	if got := consumerBytesFor(16, 4); got%linePair != 0 || dataOffsetFor(16)%linePair != 0 {
		t.Error("areas are not line-pair multiples")
	}
	// The tag never collides with a real offset: areas are far below 2^48.
	if consumerArea < 1<<40 {
		t.Error("consumerArea tag is too low")
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
