//go:build !linux

package tools

// BecomeSubreaper is Linux's; elsewhere a tool's descendants that left its
// process group are not tracked.
func BecomeSubreaper() error { return nil }

// killTree kills pid's process group.
func killTree(pid int, _ bool) error { return killGroup(pid) }
