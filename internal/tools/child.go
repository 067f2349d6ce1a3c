package tools

import (
	"fmt"
	"os"
	"os/exec"
)

// The child processes of command tools and MCP servers are started alike:
// a scrubbed environment, our own pipes, a process group of their own.

// defaultPath is given to children when agentd itself has no PATH.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// childEnv builds a child's whole environment: PATH (defaultPath when
// agentd has none) and those of names that are set in agentd's
// environment. Nothing else is passed.
func childEnv(names []string, lookup func(string) (string, bool)) []string {
	path, ok := lookup("PATH")
	if !ok || path == "" {
		path = defaultPath
	}
	env := []string{"PATH=" + path}
	for _, name := range names {
		if name == "PATH" {
			continue
		}
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// stdioPipes are a child's standard streams as our own *os.File pipes: with
// them Wait returns when the child exits, instead of waiting for every
// grandchild that inherited them.
type stdioPipes struct {
	stdin, stdout, stderr *os.File // our ends
}

// startChild starts cmd in its own process group with fresh stdioPipes as
// its standard streams. Our copies of the child's ends are closed once it
// has started, so EOF can happen; on error nothing is left open.
func startChild(cmd *exec.Cmd) (*stdioPipes, error) {
	var ends [6]*os.File // read and write end of stdin, stdout, stderr
	for i, name := range [...]string{"stdin", "stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(ends[:2*i]...)
			return nil, fmt.Errorf("%s pipe: %w", name, err)
		}
		ends[2*i], ends[2*i+1] = r, w
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ends[0], ends[3], ends[5]
	startInOwnGroup(cmd)
	err := cmd.Start()
	closeFiles(ends[0], ends[3], ends[5])
	p := &stdioPipes{stdin: ends[1], stdout: ends[2], stderr: ends[4]}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	return p, nil
}

// close closes our ends.
func (p *stdioPipes) close() { closeFiles(p.stdin, p.stdout, p.stderr) }

func closeFiles(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
