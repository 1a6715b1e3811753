package daemon_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kaelix-io/kaelix/wire"
)

// TestListPages follows list and stats pages: by limit, and by size (long
// names with many slots each end a page near wire.PageBudgetBytes); every
// topic comes once, in name order, each reply within a frame, and a
// partition names its slot regions by directory and count.
func TestListPages(t *testing.T) {
	cfg := start(t, nil)
	r := dial(t, cfg, true)
	const n = 60
	long := strings.Repeat("desk.equities.marketdata.", 9)
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s%03d", long, i)
		names = append(names, name)
		var ti wire.TopicInfo
		if err := r.call(wire.TypeCreate, wire.TopicSpec{Name: name, Partitions: 16, CapacityBytes: 4096, MaxMessageBytes: 1024, MaxSubscribers: 2, MaxGroups: 1}, &ti); err != nil {
			t.Fatal(err)
		}
		p := ti.Partitions[0]
		paths := p.SlotPaths(ti.Spec.MaxSubscribers)
		if p.Slots != ti.Spec.MaxSubscribers+ti.Spec.MaxGroups || len(paths) != p.Slots ||
			paths[0] != p.SlotDir+"/"+p.Region+".s0" || paths[p.Slots-1] != fmt.Sprintf("%s/%s.g%d", p.SlotDir, p.Region, ti.Spec.MaxGroups-1) {
			t.Fatalf("partition 0: %d slots in %q: %v", p.Slots, p.SlotDir, paths)
		}
	}
	follow := func(typ wire.Type, limit int) (got []string, pages int) {
		pg := wire.Page{Limit: limit}
		for pages < 2*n {
			var l wire.Stats // TopicList's fields, and Clients
			if err := r.call(typ, pg, &l); err != nil {
				t.Fatal(err)
			}
			pages++
			if b, _ := json.Marshal(l); len(b) > wire.MaxBodyBytes {
				t.Fatalf("%s page %d: %d bytes", typ, pages, len(b))
			}
			if limit > 0 && len(l.Topics) > limit {
				t.Fatalf("%s page %d: %d topics, limit %d", typ, pages, len(l.Topics), limit)
			}
			if typ == wire.TypeStats && (pg.After == "") != (len(l.Clients) > 0) {
				t.Fatalf("stats page %d (after %q): %d clients", pages, pg.After, len(l.Clients))
			}
			for _, ti := range l.Topics {
				got = append(got, ti.Spec.Name)
			}
			if l.Next == "" {
				return got, pages
			}
			if l.Next != got[len(got)-1] {
				t.Fatalf("%s page %d: next %q, last listed %q", typ, pages, l.Next, got[len(got)-1])
			}
			pg.After = l.Next
		}
		t.Fatalf("%s: no last page after %d", typ, pages)
		return nil, 0
	}
	for _, tc := range []struct {
		typ            wire.Type
		limit          int
		minPages, most int
	}{{wire.TypeList, 7, 9, 9}, {wire.TypeStats, 7, 9, 9}, {wire.TypeList, 0, 2, n}, {wire.TypeStats, 1000, 2, n}} {
		got, pages := follow(tc.typ, tc.limit)
		if strings.Join(got, ",") != strings.Join(names, ",") || pages < tc.minPages || pages > tc.most {
			t.Errorf("%s limit %d: %d pages, %d topics (want %d in order)", tc.typ, tc.limit, pages, len(got), n)
		}
	}
	// By size: one page is at most about PageBudgetBytes plus one topic.
	var one wire.TopicList
	if err := r.call(wire.TypeList, nil, &one); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(one.Topics[0])
	per := len(b)
	if want := min(n, wire.PageBudgetBytes/per+1); len(one.Topics) != want {
		t.Errorf("first page: %d topics of %d bytes each, want %d (budget %d)", len(one.Topics), per, want, wire.PageBudgetBytes)
	}
	t.Logf("%d bytes per 16-partition topic; %d topics in the first page", per, len(one.Topics))
}
