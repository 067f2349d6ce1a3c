// Package buildinfo carries the version stamped into the binary with
// -ldflags "-X github.com/agentd/agentd/internal/buildinfo.Version=...".
package buildinfo

import "runtime/debug"

// Set at link time by the Makefile.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is the build as reported by `agentd version` and /api/v1/status.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
}

// Get returns the build info, filling the commit from the Go toolchain's VCS
// stamp when the linker did not set it.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.Go = bi.GoVersion
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	return i
}
