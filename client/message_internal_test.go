package client

import (
	"bytes"
	"maps"
	"testing"
)

// TestHeaderBlock round-trips headers and message keys through the header
// block, and checks that every truncation is an error and every
// corruption is either an error or a block that stays inside the record.
func TestHeaderBlock(t *testing.T) {
	hs := map[string]string{"a": "1", "": "empty name", "long": string(make([]byte, 300))}
	for _, tc := range []struct {
		name string
		hs   map[string]string
		key  []byte
	}{
		{"headers", hs, nil},
		{"key", nil, []byte("instrument-42")},
		{"headers and key", hs, bytes.Repeat([]byte{0xab}, 1000)},
		{"empty key alone", nil, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := headerBlockLen(tc.hs, tc.key)
			rec := make([]byte, n+5)
			if err := putHeaderBlock(rec[:n], tc.hs, tc.key); err != nil {
				t.Fatal(err)
			}
			copy(rec[n:], "hello")
			got := map[string]string{}
			key, payload, err := parseHeaderBlock(rec, got)
			if err != nil || string(payload) != "hello" || !maps.Equal(got, tc.hs) && len(got)+len(tc.hs) > 0 {
				t.Fatalf("round trip: %q %v %v", payload, got, err)
			}
			if !bytes.Equal(key, tc.key) || (key == nil) != (tc.key == nil) {
				t.Fatalf("key %q (nil %v), want %q (nil %v)", key, key == nil, tc.key, tc.key == nil)
			}
			for i := range n {
				if _, _, err := parseHeaderBlock(rec[:i], got); err == nil {
					t.Errorf("truncated to %d parsed", i)
				}
			}
			for i := range n {
				bad := append([]byte(nil), rec...)
				bad[i] ^= 0xff
				if k, p, err := parseHeaderBlock(bad, got); err == nil && len(k)+len(p) > len(bad) {
					t.Errorf("corrupt byte %d: key and payload overrun the record", i)
				}
			}
		})
	}
	if err := putHeaderBlock(make([]byte, headerBlockLen(nil, make([]byte, 1<<16))), nil, make([]byte, 1<<16)); err == nil {
		t.Error("a 65536-byte key was encoded")
	}
}

func FuzzHeaderBlock(f *testing.F) {
	rec := make([]byte, headerBlockLen(map[string]string{"k": "v"}, []byte("key")))
	putHeaderBlock(rec, map[string]string{"k": "v"}, []byte("key"))
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		hs := map[string]string{}
		k, p, err := parseHeaderBlock(b, hs)
		if err == nil && len(k)+len(p) > len(b) {
			t.Fatal("key and payload longer than record")
		}
	})
}
