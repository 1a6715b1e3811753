package client

import (
	"maps"
	"testing"
)

func TestHeaderBlock(t *testing.T) {
	hs := map[string]string{"a": "1", "": "empty key", "long": string(make([]byte, 300))}
	n := headerBlockLen(hs)
	rec := make([]byte, n+5)
	if err := putHeaderBlock(rec[:n], hs); err != nil {
		t.Fatal(err)
	}
	copy(rec[n:], "hello")
	got := map[string]string{}
	payload, err := parseHeaderBlock(rec, got)
	if err != nil || string(payload) != "hello" || !maps.Equal(got, hs) {
		t.Fatalf("round trip: %q %v %v", payload, got, err)
	}
	// Every truncation and corruption is an error, never a panic.
	for i := range n {
		if _, err := parseHeaderBlock(rec[:i], got); err == nil && i < n {
			t.Errorf("truncated to %d parsed", i)
		}
	}
	for i := range n {
		bad := append([]byte(nil), rec...)
		bad[i] ^= 0xff
		parseHeaderBlock(bad, got)
	}
}

func FuzzHeaderBlock(f *testing.F) {
	rec := make([]byte, headerBlockLen(map[string]string{"k": "v"}))
	putHeaderBlock(rec, map[string]string{"k": "v"})
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		hs := map[string]string{}
		p, err := parseHeaderBlock(b, hs)
		if err == nil && len(p) > len(b) {
			t.Fatal("payload longer than record")
		}
	})
}
