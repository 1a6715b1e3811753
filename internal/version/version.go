// Package version reports what a Kaelix binary was built from, from the
// build information the Go toolchain embeds (runtime/debug.ReadBuildInfo):
// the main module's version ("(devel)" for a build in a checkout), the
// VCS commit and whether the tree was modified, and the Go version.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/kaelix-io/kaelix/wire"
)

// commit and dirty are set by the Makefile's -ldflags -X when the
// toolchain did not stamp VCS information (GOFLAGS=-buildvcs=false, a
// tree it cannot read): `make build` and `make install` pass them.
var commit, dirty string

// Info is a binary's build.
type Info struct {
	// Module is the main module's version: a tag or pseudo-version for a
	// `go install module@version` build, "(devel)" in a checkout.
	Module string `json:"module"`
	// Commit is the VCS revision ("" when built without VCS stamping, as
	// test binaries are); Modified: the tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Time is the commit's time (RFC 3339), if known.
	Time string `json:"time,omitempty"`
	// Go is the toolchain version, e.g. "go1.26.0".
	Go string `json:"go"`
	// Protocol is the control protocol version (wire.Version).
	Protocol int `json:"protocol"`
}

// Get reads the running binary's build information.
func Get() Info {
	in := Info{Module: "unknown", Go: runtime.Version(), Protocol: wire.Version}
	in.Commit, in.Modified = commit, dirty == "true"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Module = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "vcs.time":
			in.Time = s.Value
		}
	}
	return in
}

// ShortCommit is the first 12 hex digits of the commit, "+dirty" if the
// tree was modified, or "unknown".
func (in Info) ShortCommit() string {
	if in.Commit == "" {
		return "unknown"
	}
	c := in.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if in.Modified {
		c += "+dirty"
	}
	return c
}

// String renders one line for --version: "NAME VERSION (commit C, TIME,
// GO, protocol vN)".
func (in Info) String(name string) string {
	parts := []string{"commit " + in.ShortCommit()}
	if in.Time != "" {
		parts = append(parts, in.Time)
	}
	parts = append(parts, in.Go, fmt.Sprintf("protocol v%d", in.Protocol))
	return fmt.Sprintf("%s %s (%s)", name, in.Module, strings.Join(parts, ", "))
}
