//go:build unix

package tools

import (
	"errors"
	"os/exec"
	"syscall"
)

// startInOwnGroup makes the child the leader of a new process group, so
// that it and everything it spawns can be killed together.
func startInOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills the whole process group led by pid. A group that is
// already gone is not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
