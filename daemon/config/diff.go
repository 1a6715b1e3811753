package config

import (
	"fmt"
	"reflect"

	"github.com/kaelix-io/kaelix/wire"
)

// Diff compares old and new key by key. live lists the changes a running
// daemon applies; refused lists the rest, which make a reload refused as a
// whole (see NotLiveError). For topics, declaring a new topic is live; a
// declared topic whose parameters changed is refused by name
// ("topics[name=x].capacity"); a topic no longer declared stays registered
// (it may hold data) and is reported live as removed from the file only.
func Diff(old, new Config) (live, refused []Change) {
	for _, k := range keyList {
		if k.Path == "topics" {
			continue
		}
		ov, nv := k.field(&old), k.field(&new)
		if reflect.DeepEqual(ov.Interface(), nv.Interface()) || (k.Table && formatValue(ov) == formatValue(nv)) {
			continue // tables compare by content: an empty list equals an absent one
		}
		c := Change{Key: k.Path, Old: formatValue(ov), New: formatValue(nv)}
		if k.Live {
			live = append(live, c)
		} else {
			refused = append(refused, c)
		}
	}
	oldTopics := map[string]Topic{}
	for _, t := range old.Topics {
		oldTopics[t.Name] = t
	}
	newNames := map[string]bool{}
	for _, t := range new.Topics {
		newNames[t.Name] = true
		ot, ok := oldTopics[t.Name]
		if !ok {
			live = append(live, Change{Key: fmt.Sprintf("topics[name=%s]", t.Name), Old: "(absent)", New: "(declared)"})
			continue
		}
		if d := specChange(old.TopicSpec(ot), new.TopicSpec(t)); d.Key != "" {
			d.Key = fmt.Sprintf("topics[name=%s].%s", t.Name, d.Key)
			refused = append(refused, d)
		}
	}
	for _, t := range old.Topics {
		if !newNames[t.Name] {
			live = append(live, Change{Key: fmt.Sprintf("topics[name=%s]", t.Name), Old: "(declared)", New: "(no longer declared; topic kept)"})
		}
	}
	return live, refused
}

func specChange(a, b wire.TopicSpec) Change {
	type f struct {
		name string
		a, b any
	}
	for _, x := range []f{
		{"partitions", a.Partitions, b.Partitions}, {"kind", a.Kind, b.Kind},
		{"capacity", Size(a.CapacityBytes), Size(b.CapacityBytes)}, {"max_message_bytes", a.MaxMessageBytes, b.MaxMessageBytes},
		{"policy", a.Policy, b.Policy}, {"numa_node", nodeText(a), nodeText(b)},
		{"mode", FileMode(a.Mode), FileMode(b.Mode)}, {"group", a.GID, b.GID},
	} {
		if x.a != x.b {
			return Change{Key: x.name, Old: fmt.Sprint(x.a), New: fmt.Sprint(x.b)}
		}
	}
	return Change{}
}

func nodeText(s wire.TopicSpec) string {
	if !s.BindNode {
		return "none"
	}
	return fmt.Sprint(s.Node)
}
