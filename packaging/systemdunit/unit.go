// Package systemdunit holds agentd's systemd unit: agentd.service here is
// the file the .deb ships, and Render gives the unit `agentd install`
// writes from the same text, so the two cannot drift apart.
package systemdunit

import (
	_ "embed"
	"fmt"
	"strings"
)

// Packaged is the unit the package installs as
// /lib/systemd/system/agentd.service.
//
//go:embed agentd.service
var Packaged string

// Render returns the packaged unit with its ExecStart running exe with args,
// and User=/Group= set to user (both removed when user is "", so the
// service runs as root). Nothing else changes: the hardening is the
// packaged unit's, line for line.
func Render(exe string, args []string, user string) (string, error) {
	var b strings.Builder
	var sawExec bool
	for _, line := range strings.SplitAfter(Packaged, "\n") {
		key, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch key {
		case "ExecStart":
			sawExec = true
			b.WriteString("ExecStart=" + execLine(exe, args) + "\n")
		case "User", "Group":
			if user != "" {
				b.WriteString(key + "=" + user + "\n")
			}
		default:
			b.WriteString(line)
		}
	}
	if !sawExec {
		return "", fmt.Errorf("packaged unit has no ExecStart line")
	}
	return b.String(), nil
}

// execLine writes a command line in systemd's syntax: words with spaces,
// quotes or backslashes are double-quoted, and "%" and "$" are doubled so
// systemd expands neither specifiers nor variables in them.
func execLine(exe string, args []string) string {
	words := make([]string, 0, 1+len(args))
	for _, w := range append([]string{exe}, args...) {
		w = strings.NewReplacer("%", "%%", "$", "$$").Replace(w)
		if w == "" || strings.ContainsAny(w, " \t\"'\\;") {
			w = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}
