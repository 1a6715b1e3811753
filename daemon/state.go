package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/kaelix-io/kaelix/wire"
)

// The state file, topics.json: the registry written down so that a
// restarted daemon re-adopts its topics (adopt.go).

// stateVersion is the version of the state file's format. Version 2
// added each topic's consumer regions; a version 1 file (rings in one
// region per partition) is read, but its topics are not adopted.
const stateVersion = 2

// stateFile is topics.json in the state dir.
type stateFile struct {
	Version int          `json:"version"`
	Topics  []stateTopic `json:"topics"`
	// RegionDirs are the directories the daemon keeps its regions in
	// (tmpfs first, then hugetlbfs): for readers without the daemon
	// (kaelixctl stat). Not read back by the daemon.
	RegionDirs []string `json:"region_dirs,omitempty"`
}

type stateTopic struct {
	Spec      wire.TopicSpec `json:"spec"`
	CreatedNS int64          `json:"created_ns"`
	Regions   []string       `json:"regions"` // data regions, one per partition
	// ConsumerRegions are the consumer regions, one per partition. Absent
	// in version 1 files, whose rings are whole in Regions.
	ConsumerRegions []string `json:"consumer_regions,omitempty"`
}

func (d *Daemon) statePath() string { return filepath.Join(d.stateDir, "topics.json") }

// saveState writes the registry atomically (temp file, fsync, rename, fsync
// of the directory). d.mu held. A failure is logged: the regions are still
// served, and their headers let an operator recover.
func (d *Daemon) saveState() {
	st := stateFile{Version: stateVersion, Topics: []stateTopic{}, RegionDirs: d.regionDirs()}
	for _, t := range d.topics {
		stt := stateTopic{Spec: t.spec, CreatedNS: t.createdNS}
		for _, p := range t.parts {
			stt.Regions = append(stt.Regions, p.region.Name())
			stt.ConsumerRegions = append(stt.ConsumerRegions, p.consumer.Name())
		}
		st.Topics = append(st.Topics, stt)
	}
	if err := writeFileAtomic(d.statePath(), st); err != nil {
		d.log.Error("cannot save topic registry; a crash now would lose topics created since the last save", "err", err)
	}
}

func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
