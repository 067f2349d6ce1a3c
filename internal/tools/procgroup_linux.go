//go:build linux

package tools

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// subreaper is set once this process adopts its orphaned descendants.
var subreaper atomic.Bool

// BecomeSubreaper makes this process the child subreaper of everything it
// starts: a tool's grandchild whose parent dies (one that called setsid to
// leave the tool's process group, say) is re-parented here instead of to
// init, so it stays findable, and killTree reaps it. The daemon calls it
// once at start.
func BecomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	subreaper.Store(true)
	return nil
}

// procStat is what /proc/PID/stat says of a process's family.
type procStat struct{ pid, ppid, pgrp int }

// processes lists every process with its parent and process group.
func processes() []procStat {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		out = append(out, procStat{pid: pid, ppid: ppid, pgrp: pgrp})
	}
	return out
}

// family is every process in pid's process group and every descendant of
// those, and of pid itself when it is still ours (not yet waited for: a
// waited-for pid may have been reused); pid excluded.
func family(pid int, alive bool) []int {
	procs := processes()
	children := map[int][]int{}
	in := map[int]bool{}
	if alive {
		in[pid] = true
	}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		if p.pgrp == pid {
			in[p.pid] = true
		}
	}
	queue := make([]int, 0, len(in))
	for p := range in {
		queue = append(queue, p)
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !in[c] {
				in[c] = true
				queue = append(queue, c)
			}
		}
	}
	delete(in, pid)
	out := make([]int, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	return out
}

// killTree kills the tool's child pid (alive: not yet waited for), its
// process group, and every descendant, including those that left the group
// with setsid. Everything found is stopped first, so nothing forks or is
// re-parented while the tree is walked; then all are killed. Descendants
// re-parented to this process (as the subreaper) are reaped; pid itself is
// left for its own Wait. A waited-for pid is never signalled (it may have
// been reused): only its group and what descends from the group are.
func killTree(pid int, alive bool) error {
	if pid <= 0 {
		return nil
	}
	if alive {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	seen := map[int]bool{}
	for range 16 {
		grew := false
		for _, p := range family(pid, alive) {
			if !seen[p] {
				seen[p], grew = true, true
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
		}
		if !grew {
			break
		}
	}
	err := killGroup(pid)
	if alive {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	killed := make([]int, 0, len(seen))
	for p := range seen {
		if e := syscall.Kill(p, syscall.SIGKILL); e == nil {
			killed = append(killed, p)
		} else if !errors.Is(e, syscall.ESRCH) && err == nil {
			err = e
		}
	}
	if subreaper.Load() && len(killed) > 0 {
		go reap(killed)
	}
	return err
}

// reap collects the exit status of killed descendants that were
// re-parented here, so none is left a zombie. Each is waited for by pid
// alone, never "any child": the os/exec Waits of other children are not
// disturbed.
func reap(pids []int) {
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) > 0 && time.Now().Before(deadline) {
		left := pids[:0]
		for _, p := range pids {
			var ws syscall.WaitStatus
			if got, err := syscall.Wait4(p, &ws, syscall.WNOHANG, nil); got == p || (err != nil && !errors.Is(err, syscall.ECHILD) && !errors.Is(err, syscall.EINTR)) {
				continue
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err != nil {
				continue // gone: reaped by its own parent or by init
			}
			left = append(left, p)
		}
		pids = left
		time.Sleep(20 * time.Millisecond)
	}
}
