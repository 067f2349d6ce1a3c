//go:build unix

package tools

import (
	"io/fs"
	"syscall"
)

// linkCount is the number of hard links to the file behind st (1 when the
// system does not say).
func linkCount(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Nlink)
	}
	return 1
}
