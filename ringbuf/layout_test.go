package ringbuf

import "testing"

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
		{"consumerBytes", consumerBytesOffset, 72},
		{"deleted", deletedOffset, 80},
		{"headerLength", headerLength, 84},
		{"tailPosition", tailPositionOffset, 128},
		{"tailSequence", tailSequenceOffset, 136},
		{"publishers", publishersOffset, 384},
		{"consumer.magic", uintptr(consumerMagicOffset), 0},
		{"consumer.version", uintptr(consumerVersionOffset), 8},
		{"consumer.createdNS", uintptr(consumerCreatedNSOffset), 16},
		{"consumer.size", uintptr(consumerSizeOffset), 24},
		{"consumer.subscriberEpoch", uintptr(subscriberEpochOffset), 32},
		{"consumerHeaderLength", uintptr(consumerHeaderLength), 36},
		{"dataBell", uintptr(dataBellOffset), 128},
		{"dataWaiters", uintptr(dataWaitersOffset), 132},
		{"spaceBell", uintptr(spaceBellOffset), 256},
		{"spaceWaiters", uintptr(spaceWaitersOffset), 260},
		{"backPressure", backPressureOffset, 256},
		{"unblocked", unblockedOffset, 264},
		{"waits", waitsOffset, 272},
		{"wakeups", wakeupsOffset, 280},
		{"rejected", rejectedOffset, 288},
		{"reaped", reapedOffset, 296},
		{"evicted", evictedOffset, 304},
		{"fences", fencesOffset, 312},
		{"countersLength", countersLength, 64},
		{"consumerBytes", uintptr(consumerBytes), 384},
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
		{"group.creatorPID", groupCreatorPIDOffset, 48},
		{"group.creatorStart", groupCreatorStartOffset, 56},
		{"group.ringCreated", groupRingCreatedOffset, 64},
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
	if LayoutVersion != 5 {
		t.Errorf("LayoutVersion = %d, want 5 (update the golden offsets with it)", LayoutVersion)
	}
	// Every atomic word is naturally aligned; CAS128 pairs are 16-aligned.
	for _, off := range []uintptr{tailPositionOffset, groupCursorOffset} {
		if off%16 != 0 {
			t.Errorf("CAS128 pair at %d is not 16-byte aligned", off)
		}
	}
	for _, off := range []uintptr{magicOffset, capacityOffset, unblockTimeoutNSOffset, createdNSOffset, totalBytesOffset,
		consumerBytesOffset, backPressureOffset, pubStartOffset, pubIntentPosOffset, subPositionOffset, subHoldOffset,
		recSequenceOffset, recTimestampOffset, uintptr(consumerCreatedNSOffset), uintptr(consumerSizeOffset),
		subRingCreatedOffset, groupRingCreatedOffset, groupCreatorStartOffset} {
		if off%8 != 0 {
			t.Errorf("64-bit word at %d is not 8-byte aligned", off)
		}
	}
	// Hot words sit on separate line pairs, in both areas.
	for _, blocks := range [][]uintptr{
		{headerOffset, tailOffset, countersOffset, publishersOffset},
		{uintptr(consumerMagicOffset), uintptr(dataBellOffset), uintptr(spaceBellOffset), uintptr(consumerBytes)},
	} {
		for i := 1; i < len(blocks); i++ {
			if blocks[i]-blocks[i-1] != linePair || blocks[i]%linePair != 0 {
				t.Errorf("block at %#x is not on its own line pair", blocks[i])
			}
		}
	}
	if headerLength > linePair || consumerHeaderLength > linePair || countersLength > linePair ||
		pubRecordsOffset+8 > slotLength || subFencesOffset+8 > slotLength || groupRingCreatedOffset+8 > slotLength {
		t.Error("a block overflows its line pair")
	}
	if got := dataOffsetFor(1); got != 512 {
		t.Errorf("SPSC data offset = %d, want 512", got)
	}
	if d, cons, err := SizeFor(DefaultConfig(MPMC)); err != nil || d%linePair != 0 || cons != 384 || dataOffsetFor(16)%linePair != 0 {
		t.Errorf("SizeFor(DefaultConfig(MPMC)) = %d, %d, %v: areas are not line-pair multiples, or the consumer area is not 384 bytes", d, cons, err)
	}
	if SlotBytes != 128 {
		t.Errorf("SlotBytes = %d, want 128", SlotBytes)
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
