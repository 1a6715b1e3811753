package bridge

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestWireForm: the exact NATS message an outbound record becomes (one
// Kaelix-Rec header, Nats-Msg-Id in jetstream mode, the key base64 in
// Kaelix-Key, user headers verbatim or in Kaelix-Headers-B64) and the
// exact Kaelix-Origin and key the inbound side writes into the local
// record from it.
func TestWireForm(t *testing.T) {
	mb := newMsgBuilder("kaelix.{host}.{topic}.{partition}")
	id := Record{Host: "hosta", Topic: "feed.px", Partition: 3, Sequence: 18446744073709551615, TimestampNS: -42}
	hs := map[string]string{"src": "test", "bin:key": "a\x00b"}
	for _, js := range []bool{false, true} {
		key := []byte("inst\x00-7")
		m, err := mb.build(id, key, []byte("payload"), hs, js)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			HdrRecord:    "hosta feed.px 3 18446744073709551615 -42",
			"src":        "test",
			HdrHeaders64: encodeOddHeaders([][2]string{{"bin:key", "a\x00b"}}),
			HdrKey:       "aW5zdAAtNw==",
		}
		if js {
			want[HdrMsgID] = "hosta/feed.px/3/18446744073709551615"
		}
		if len(m.Header) != len(want) {
			t.Errorf("jetstream %v: headers %v, want %v", js, m.Header, want)
		}
		for k, v := range want {
			if vs := m.Header[k]; len(vs) != 1 || vs[0] != v {
				t.Errorf("jetstream %v: header %q = %q, want %q", js, k, vs, v)
			}
		}
		if m.Subject != "kaelix.hosta.feed.px.3" || string(m.Data) != "payload" {
			t.Errorf("jetstream %v: subject %q data %q", js, m.Subject, m.Data)
		}
		// The other side: the message as received (its header values
		// copied, as nats.go's decoding makes new strings).
		rx := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
		for k, vs := range m.Header {
			rx.Header[k] = []string{string([]byte(vs[0]))}
		}
		var d inDecoder
		got, ok, local, gotKey, err := d.decode(rx)
		if err != nil || !ok || got != id || string(gotKey) != string(key) {
			t.Fatalf("jetstream %v: decoded %+v %v key %q %v, want %+v key %q", js, got, ok, gotKey, err, id, key)
		}
		wantLocal := map[string]string{"src": "test", "bin:key": "a\x00b", HdrOrigin: "hosta feed.px 3 18446744073709551615 -42 kaelix.hosta.feed.px.3"}
		if len(local) != len(wantLocal) {
			t.Errorf("jetstream %v: local headers %q, want %q", js, local, wantLocal)
		}
		for k, v := range wantLocal {
			if local[k] != v {
				t.Errorf("jetstream %v: local header %q = %q, want %q", js, k, local[k], v)
			}
		}
		o, err := ParseOrigin(local[HdrOrigin])
		if err != nil || !o.Kaelix || o.Record != id || o.Subject != "kaelix.hosta.feed.px.3" {
			t.Errorf("jetstream %v: ParseOrigin %+v %v", js, o, err)
		}
	}
	// A plain NATS message: no identity, origin "nats SUBJECT".
	var d inDecoder
	_, ok, local, key, err := d.decode(&nats.Msg{Subject: "plain.subj", Header: nats.Header{"a": {"1"}}})
	if err != nil || ok || len(local) != 2 || local["a"] != "1" || local[HdrOrigin] != "nats plain.subj" || key != nil {
		t.Errorf("plain message: %v %q key %q %v", ok, local, key, err)
	}
	if _, _, _, _, err := d.decode(&nats.Msg{Subject: "s", Header: nats.Header{HdrKey: {"not base64!"}}}); err == nil {
		t.Errorf("decode accepted %s %q", HdrKey, "not base64!")
	}
	if o, err := ParseOrigin("nats plain.subj"); err != nil || o.Kaelix || o.Subject != "plain.subj" {
		t.Errorf("ParseOrigin(plain) = %+v, %v", o, err)
	}
	// Non-canonical decimals a foreign sender wrote are written canonical.
	_, _, local, _, err = d.decode(&nats.Msg{Subject: "s", Header: nats.Header{HdrRecord: {"h t -0 007 0"}}})
	if err != nil || local[HdrOrigin] != "h t 0 7 0 s" {
		t.Errorf("non-canonical: %q %v", local[HdrOrigin], err)
	}
}

// TestParseRecordRejects: values not in the five-field form are errors
// wrapping ErrMalformedRecord, and the inbound decoder refuses them.
func TestParseRecordRejects(t *testing.T) {
	for _, s := range []string{
		"", "hosta", "hosta feed 1 2", "hosta feed 1 2 3 4", "hosta  feed 1 2 3", "host.a feed 1 2 3",
		"hosta feed..x 1 2 3", "hosta feed -1 2 3", "hosta feed 1 -2 3", "hosta feed +1 2 3", "hosta feed 1 2 +3",
		"hosta feed 1 2 x", "hosta feed 1 2 3 ", "hosta feed 1 18446744073709551616 3",
	} {
		if r, err := ParseRecord(s); !errors.Is(err, ErrMalformedRecord) {
			t.Errorf("ParseRecord(%q) = %+v, %v: want ErrMalformedRecord", s, r, err)
		}
		var d inDecoder
		if _, _, _, _, err := d.decode(&nats.Msg{Subject: "s", Header: nats.Header{HdrRecord: {s}}}); s != "" && err == nil {
			t.Errorf("decode accepted %s %q", HdrRecord, s)
		}
	}
	for _, s := range []string{"", "nats", "nats ", "hosta feed 1 2 3", "hosta feed 1 2 3 ", "x feed 1 2 subj"} {
		if o, err := ParseOrigin(s); !errors.Is(err, ErrMalformedRecord) {
			t.Errorf("ParseOrigin(%q) = %+v, %v: want ErrMalformedRecord", s, o, err)
		}
	}
}
