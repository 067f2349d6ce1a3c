package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/agentd/agentd/internal/api"
)

func init() {
	register("token", "print the API token (--rotate to replace it)", (*Main).token)
}

// token prints the token of the agentd running on this machine (found
// through its discovery file, a demo included), else the config's, so what
// it prints is what the dashboard and the API accept.
func (m *Main) token(_ context.Context, args []string) error {
	flags, cfgPath := m.flags("token")
	rotate := flags.Bool("rotate", false, "replace the token with a new one (a running agentd picks it up within a second)")
	if err := parse(flags, args); err != nil {
		return err
	}
	cfg, _, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path := cfg.ResolvePaths().TokenFile
	if d, ok := m.runningDaemon(cfg, *cfgPath != "", ""); ok {
		path = d.TokenFile
		if d.Demo {
			fmt.Fprintf(m.Stderr, "agentd token: the running DEMO's token (%s, pid %d)\n", d.URL, d.PID)
		}
	}
	if *rotate {
		tok, err := api.RotateToken(path)
		if err != nil {
			return tokenAccessError(err, path)
		}
		keepStateDirOwner(path)
		fmt.Fprintln(m.Stdout, tok)
		return nil
	}
	_, statErr := os.Stat(path)
	t, err := api.LoadOrCreateToken(path)
	if err != nil {
		return tokenAccessError(err, path)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		keepStateDirOwner(path)
	}
	fmt.Fprintln(m.Stdout, t.Token())
	return nil
}

// tokenAccessError explains a token this user may not read: it names the
// command that can, as the owner of the token's directory (on a packaged
// host, `sudo -u agentd agentd token`), rather than printing a token from
// somewhere else.
func tokenAccessError(err error, path string) error {
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	owner := ownerOf(filepath.Dir(path))
	return fmt.Errorf("cannot read the API token at %s (permission denied): it is %s's — run `%s`", path, displayOwner(owner), tokenCommand(owner))
}

// tokenCommand is the command that prints the token as its owner.
func tokenCommand(owner string) string {
	switch {
	case owner == "":
		return "sudo agentd token"
	case owner == "root":
		return "sudo agentd token"
	case currentUser() == owner:
		return "agentd token"
	}
	return "sudo -u " + owner + " agentd token"
}

func displayOwner(owner string) string {
	if owner == "" {
		return "another user"
	}
	return owner
}

// ownerOf is the name of the user owning path, "" when unknown.
func ownerOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	u, err := user.LookupId(strconv.Itoa(int(sys.Uid)))
	if err != nil {
		return ""
	}
	return u.Username
}

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}

// keepStateDirOwner gives a token file that root just wrote to the owner of
// its directory: `sudo agentd token --rotate` on a packaged host must not
// leave a token the agentd service cannot read.
func keepStateDirOwner(path string) {
	if os.Geteuid() != 0 {
		return
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
		_ = os.Lchown(path, int(sys.Uid), int(sys.Gid))
	}
}
