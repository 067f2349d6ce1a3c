//go:build !unix

package tools

import "io/fs"

// linkCount is 1 where the file info carries no link count.
func linkCount(fs.FileInfo) uint64 { return 1 }
