package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kaelix-io/kaelix/wire"
)

// fill sets every field of the value v points to, recursively, to a
// non-zero value that depends on the field's path (slices get one
// element), so that a field one JSON form drops or renames shows.
func fill(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), path+"[0]")
	case reflect.String:
		v.SetString(path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(len(path)))
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(len(path)) + 1000)
	default:
		panic("fill: no case for " + v.Kind().String() + " at " + path)
	}
}

// roundTrip fills a value of from's type, decodes its JSON into a value
// of to's type with unknown fields refused, and returns both encodings.
func roundTrip(t *testing.T, from, to any) (a, b []byte) {
	t.Helper()
	fill(reflect.ValueOf(from).Elem(), "")
	a, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(a))
	dec.DisallowUnknownFields()
	if err := dec.Decode(to); err != nil {
		t.Fatalf("%T into %T: %v", from, to, err)
	}
	if b, err = json.Marshal(to); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestTypesMatchWire: the client's admin types decode the daemon's
// replies directly, so each must carry exactly the JSON fields of its
// protocol type, in both directions (a field only one side has fails).
func TestTypesMatchWire(t *testing.T) {
	for _, c := range []struct{ wire, client func() any }{
		{func() any { return new(wire.TopicSpec) }, func() any { return new(TopicConfig) }},
		{func() any { return new(wire.TopicInfo) }, func() any { return new(TopicInfo) }},
		{func() any { return new(wire.Status) }, func() any { return new(DaemonStatus) }},
		{func() any { return new(wire.Stats) }, func() any { return new(DaemonStats) }},
	} {
		for _, dir := range [][2]any{{c.wire(), c.client()}, {c.client(), c.wire()}} {
			a, b := roundTrip(t, dir[0], dir[1])
			if !bytes.Equal(a, b) {
				t.Errorf("%T -> %T loses or changes fields:\n%s\n%s", dir[0], dir[1], a, b)
			}
		}
	}
	if got := (TopicConfig{Kind: KindSPSC}).Normalized(); got.MaxPublishers != 1 || got.MaxSubscribers != 1 || got.Partitions != 1 || got.Policy != PolicyBlock {
		t.Errorf("Normalized SPSC config: %+v", got)
	}
}
