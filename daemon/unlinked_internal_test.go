package daemon

import (
	"fmt"
	"strings"
	"testing"
)

// TestUnlinkedSummary: the region_unlinked reason counts the files and
// names one path per partition, for at most three partitions, rather than
// every path of the topic.
func TestUnlinkedSummary(t *testing.T) {
	one := []unlinkedPart{{index: 0, files: 42, first: "/dev/shm/kaelix/t.p0"}}
	files, s := unlinkedSummary("t", one)
	if want := `topic "t": 42 region file(s) removed or replaced from outside (partition 0: 42 (first /dev/shm/kaelix/t.p0))`; files != 42 || s != want {
		t.Errorf("one partition: %d, %q\nwant %q", files, s, want)
	}
	var many []unlinkedPart
	for i := range 64 {
		many = append(many, unlinkedPart{index: i, files: 42, first: fmt.Sprintf("/dev/shm/kaelix/t.p%d", i)})
	}
	files, s = unlinkedSummary("t", many)
	if files != 64*42 || strings.Count(s, "/dev/shm") != 3 || !strings.Contains(s, "partition 2: 42 (first /dev/shm/kaelix/t.p2); 61 more partitions)") || len(s) > 300 {
		t.Errorf("64 partitions: %d files, %q", files, s)
	}
}
