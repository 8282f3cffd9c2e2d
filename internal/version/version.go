// Package version says which build of Baton is running, from what the Go toolchain embeds
// in every binary (the module version and, built from a git checkout, the commit).
package version

import (
	"fmt"
	"runtime/debug"
)

// Info is one build.
type Info struct {
	Version  string // the module's version: a tag, or "(devel)" for a build from a checkout
	Revision string // the commit's first 12 hex digits, "-dirty" when built with local changes; "" if unknown
	Go       string // the toolchain
}

// revision, when the build sets it (-ldflags "-X github.com/baton-db/baton/internal/version.revision=..."),
// names the commit where the toolchain's own stamp is off (-buildvcs=false).
var revision string

// Get reads this binary's build.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", Revision: revision}
	}
	in := fromBuild(bi)
	if revision != "" {
		in.Revision = revision
	}
	return in
}

func fromBuild(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && in.Revision != "" {
		in.Revision += "-dirty"
	}
	return in
}

// String is the version in one word, then the commit and the toolchain.
func (i Info) String() string {
	if i.Revision == "" {
		return fmt.Sprintf("%s (%s)", i.Version, i.Go)
	}
	return fmt.Sprintf("%s %s (%s)", i.Version, i.Revision, i.Go)
}
