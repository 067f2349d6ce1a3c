//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach makes cmd the leader of a new session, as a daemonizing program
// does.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
