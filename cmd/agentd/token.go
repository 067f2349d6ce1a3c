package main

import (
	"context"
	"fmt"

	"github.com/agentd/agentd/internal/api"
)

func init() {
	register("token", "print the API token (--rotate to replace it)", (*Main).token)
}

func (m *Main) token(_ context.Context, args []string) error {
	fs, cfgPath := m.flags("token")
	rotate := fs.Bool("rotate", false, "replace the token with a new one (a running agentd picks it up within a second)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, _, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path := cfg.ResolvePaths().TokenFile
	if *rotate {
		tok, err := api.RotateToken(path)
		if err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, tok)
		return nil
	}
	t, err := api.LoadOrCreateToken(path)
	if err != nil {
		return fmt.Errorf("%w — run as the agentd user (sudo -u agentd agentd token) or as root", err)
	}
	fmt.Fprintln(m.Stdout, t.Token())
	return nil
}
