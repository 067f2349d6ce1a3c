//go:build !unix

package tools

import (
	"os"
	"os/exec"
)

// startInOwnGroup has no process groups to use here; only the child itself
// is killed on timeout.
func startInOwnGroup(*exec.Cmd) {}

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}
