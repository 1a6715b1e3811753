package daemon

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"slices"
	"strconv"

	"github.com/kaelix-io/kaelix/daemon/config"
)

// Per-topic access rules ([[security.access]]): the first rule whose
// pattern matches the topic name decides, for the peer's SO_PEERCRED uid
// and its gids (primary and supplementary, from /proc/PID/status). Root and
// the daemon's own user always pass. With no matching rule, attach falls
// back to the topic's mode and group (allowed), and create and delete are
// open to anyone who may connect to the socket (whose mode and group are
// the first gate).

// action is what a peer asks to do with a topic.
type action int

const (
	actPublish action = iota
	actSubscribe
	actAdmin // create, open-or-create, delete
)

func (a action) String() string { return [...]string{"publish", "subscribe", "administer"}[a] }

// ruleDecides returns whether some rule matches topic and, if so, whether
// it grants act to uid/gids.
func ruleDecides(rules []config.AccessRule, uid int, gids []int, topic string, act action) (matched, ok bool) {
	for _, r := range rules {
		if m, _ := path.Match(r.Topics, topic); !m {
			continue
		}
		p := [...]config.Principals{r.Publish, r.Subscribe, r.Admin}[act]
		for _, u := range p.UIDs {
			if u == uid {
				return true, true
			}
		}
		for _, g := range p.GIDs {
			for _, pg := range gids {
				if g == pg {
					return true, true
				}
			}
		}
		return true, false
	}
	return false, false
}

// groupDecides reports whether a subscriber uid/gids may join the queue
// group named name on topic: decided by the first rule matching the topic,
// if it has group entries (the first entry matching name; none: no); else
// yes. An unnamed group (a raw client sent only its id) matches no entry.
func groupDecides(rules []config.AccessRule, uid int, gids []int, topic, name string) bool {
	for _, r := range rules {
		if m, _ := path.Match(r.Topics, topic); !m {
			continue
		}
		if len(r.Groups) == 0 {
			return true
		}
		for _, g := range r.Groups {
			if m, _ := path.Match(g.Names, name); !m || name == "" {
				continue
			}
			return slices.Contains(g.Join.UIDs, uid) || slices.ContainsFunc(g.Join.GIDs, func(id int) bool { return slices.Contains(gids, id) })
		}
		return false
	}
	return true
}

// privileged reports whether p bypasses access rules: root or the daemon's
// own user.
func privileged(p *peer) bool { return p.uid == 0 || p.uid == os.Geteuid() }

// peerGroups returns the primary gid and the supplementary groups of pid
// (from procRoot/PID/status; only the primary one if unreadable).
func peerGroups(procRoot string, pid, gid int) []int {
	gids := []int{gid}
	b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return gids
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("Groups:"))
		if !ok {
			continue
		}
		for _, f := range bytes.Fields(rest) {
			if g, err := strconv.Atoi(string(f)); err == nil && g != gid {
				gids = append(gids, g)
			}
		}
		break
	}
	return gids
}
