package main

import (
	"context"
	"fmt"

	agentd "github.com/agentd/agentd"
)

func init() {
	register("config", "config check [FILE] | config example", (*Main).configCmd)
}

func (m *Main) configCmd(_ context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("need a subcommand: `config check [FILE]` or `config example`")
	}
	switch args[0] {
	case "example":
		fmt.Fprint(m.Stdout, agentd.ConfigExample)
		return nil
	case "check":
		fs, cfgPath := m.flags("config check")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		path := *cfgPath
		if fs.NArg() > 0 {
			path = fs.Arg(0)
		}
		cfg, used, err := m.loadConfig(path)
		if err != nil {
			return err
		}
		p := cfg.ResolvePaths()
		fmt.Fprintf(m.Stdout, "config ok: %s\n  listen:   %s (auth %s)\n  state:    %s\n  database: %s\n  planner:  %s, executors: fast=%s standard=%s\n  remote fallback: %v\n",
			displayPath(used), cfg.Server.Listen, cfg.Server.Auth, p.StateDir, p.Database, cfg.Models.Planner, cfg.Models.Fast, cfg.Models.Standard, onOff(cfg.Fallback.Enabled))
		return nil
	}
	return usagef("unknown config subcommand %q: use `check` or `example`", args[0])
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
