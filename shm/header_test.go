package shm

import (
	"errors"
	"strings"
	"testing"
)

func validHeader() Header {
	return Header{
		Version:         LayoutVersion,
		TotalBytes:      8 << 20,
		DataOffsetBytes: DataOffsetBytes,
		DataBytes:       8<<20 - DataOffsetBytes,
		PageSizeBytes:   HugePage2M,
		NodeRequested:   0,
		NodeActual:      -1,
		Flags:           FlagHugePages | FlagPrefaulted,
		CreatorPID:      4242,
		CreatedNS:       1_764_000_000_000_000_000,
		Generation:      3,
		Instance:        0x1234_5678_9abc_def0,
		Label:           "orders.eu.fills",
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	want := validHeader()
	b, _ := want.MarshalBinary()
	got, err := ValidateHeader(b)
	if err != nil || got != want {
		t.Fatalf("ValidateHeader = %+v, %v; want %+v", got, err, want)
	}
}

func TestValidateHeaderErrors(t *testing.T) {
	mutate := func(f func(b []byte)) []byte {
		h := validHeader()
		b, _ := h.MarshalBinary()
		f(b)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
		msg  string // substring of the message
	}{
		{"short", make([]byte, 40), ErrTruncated, "need 368"},
		{"wrong magic", mutate(func(b []byte) { copy(b, "NOTKAELX") }), ErrBadMagic, `"NOTKAELX"`},
		{"version 0", mutate(func(b []byte) { ne.PutUint32(b[offVersion:], 0) }), ErrNotReady, "not finished"},
		{"all zero", make([]byte, HeaderBytes), ErrNotReady, "version is 0"},
		{"zero magic", mutate(func(b []byte) { copy(b, make([]byte, 8)) }), ErrBadMagic, "magic is zero"},
		{"newer version", mutate(func(b []byte) { ne.PutUint32(b[offVersion:], 7) }), ErrIncompatibleVersion, "version 7 (newer than this build's 2)"},
		{"flipped bit", mutate(func(b []byte) { b[offTotalBytes] ^= 1 }), ErrCorrupt, "checksum"},
		{"inconsistent", mutate(func(b []byte) {
			ne.PutUint64(b[offDataBytes:], 5)
			ne.PutUint32(b[offChecksum:], headerChecksum(b))
		}), ErrCorrupt, "data size 5"},
		{"label too long", mutate(func(b []byte) {
			ne.PutUint32(b[offLabelBytes:], MaxLabelBytes+1)
			ne.PutUint32(b[offChecksum:], headerChecksum(b))
		}), ErrCorrupt, "label length 257"},
		{"bytes after label", mutate(func(b []byte) {
			b[offLabel+MaxLabelBytes-1] = 'x'
			ne.PutUint32(b[offChecksum:], headerChecksum(b))
		}), ErrCorrupt, "after the label"},
		{"label flipped", mutate(func(b []byte) { b[offLabel] ^= 1 }), ErrCorrupt, "checksum"},
		{"unknown flag", mutate(func(b []byte) {
			ne.PutUint64(b[offFlags:], 1<<40)
			ne.PutUint32(b[offChecksum:], headerChecksum(b))
		}), ErrCorrupt, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateHeader(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
			// Each failure is exactly one class.
			for _, other := range []error{ErrTruncated, ErrBadMagic, ErrNotReady, ErrIncompatibleVersion, ErrCorrupt} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("err %v also matches %v", err, other)
				}
			}
		})
	}
	var ve *VersionError
	_, err := ValidateHeader(mutate(func(b []byte) { ne.PutUint32(b[offVersion:], 7) }))
	if !errors.As(err, &ve) || ve.Got != 7 || ve.Want != LayoutVersion {
		t.Errorf("VersionError = %+v", ve)
	}
}

// FuzzValidateHeader: arbitrary bytes never panic, and whatever validates
// re-encodes to the same header.
func FuzzValidateHeader(f *testing.F) {
	h := validHeader()
	b, _ := h.MarshalBinary()
	f.Add(b[:headerUsedBytes])
	f.Add(make([]byte, headerUsedBytes))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ValidateHeader(b)
		if err != nil {
			if h != (Header{}) {
				t.Fatalf("error %v with non-zero header %+v", err, h)
			}
			return
		}
		again, _ := h.MarshalBinary()
		h2, err := ValidateHeader(again)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
		if string(again[:headerUsedBytes]) != string(b[:headerUsedBytes]) {
			t.Fatalf("re-encoding differs from input")
		}
	})
}
