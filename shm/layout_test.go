package shm

import "testing"

// TestLayoutGolden pins every header offset. A failure here means the
// layout changed: bump LayoutVersion and update these numbers on purpose.
func TestLayoutGolden(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
		align     int
	}{
		{"magic", offMagic, 0, 8},
		{"version", offVersion, 8, 4},
		{"headerBytes", offHeaderBytes, 12, 4},
		{"totalBytes", offTotalBytes, 16, 8},
		{"dataOffsetBytes", offDataOffsetBytes, 24, 8},
		{"dataBytes", offDataBytes, 32, 8},
		{"pageSizeBytes", offPageSizeBytes, 40, 8},
		{"nodeRequested", offNodeRequested, 48, 4},
		{"nodeActual", offNodeActual, 52, 4},
		{"flags", offFlags, 56, 8},
		{"creatorPID", offCreatorPID, 64, 8},
		{"createdNS", offCreatedNS, 72, 8},
		{"generation", offGeneration, 80, 8},
		{"instance", offInstance, 88, 8},
		{"labelBytes", offLabelBytes, 96, 4},
		{"labelPad", offLabelPad, 100, 4},
		{"label", offLabel, 104, 8},
		{"MaxLabelBytes", MaxLabelBytes, 256, 8},
		{"checksum", offChecksum, 360, 4},
		{"reserved", offReserved, 364, 4},
		{"headerUsedBytes", headerUsedBytes, 368, 8},
		{"checksumStart", checksumStart, 12, 4},
		{"HeaderBytes", HeaderBytes, 4096, 4096},
		{"DataOffsetBytes", DataOffsetBytes, 4096, 4096},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
		if tc.got%tc.align != 0 {
			t.Errorf("%s = %d is not %d-byte aligned", tc.name, tc.got, tc.align)
		}
	}
	if LayoutVersion != 2 || Magic != "KAELIXSH" || len(Magic) != 8 {
		t.Errorf("LayoutVersion %d Magic %q", LayoutVersion, Magic)
	}
	if FlagHugePages != 1 || FlagFallbackTmpfs != 2 || FlagMlocked != 4 || FlagPrefaulted != 8 || FlagTHPAdvised != 16 {
		t.Error("flag bits moved")
	}
}
