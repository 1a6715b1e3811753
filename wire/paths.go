package wire

import (
	"os"
	"path/filepath"
	"strconv"
)

// DefaultSocketPath is the control socket both kaelixd and clients use when
// none is configured: /run/kaelix/kaelixd.sock for root,
// $XDG_RUNTIME_DIR/kaelix/kaelixd.sock otherwise, and
// $TMPDIR/kaelix-UID/kaelixd.sock when XDG_RUNTIME_DIR is unset.
func DefaultSocketPath() string {
	uid := os.Geteuid()
	var dir string
	switch {
	case uid == 0:
		dir = "/run/kaelix"
	case os.Getenv("XDG_RUNTIME_DIR") != "":
		dir = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "kaelix")
	default:
		dir = filepath.Join(os.TempDir(), "kaelix-"+strconv.Itoa(uid))
	}
	return filepath.Join(dir, "kaelixd.sock")
}
