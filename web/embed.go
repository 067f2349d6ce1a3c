// Package web holds agentd's dashboard: static HTML, CSS and JavaScript
// modules embedded in the binary. There is no build step and nothing is
// fetched from the network, so it works on sites with no internet.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS is the dashboard's files, rooted at the directory holding index.html.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the directory is embedded above; this cannot fail
	}
	return sub
}
