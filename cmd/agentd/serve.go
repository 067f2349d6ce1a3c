package main

import (
	"context"
	"fmt"

	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/tools"
	"github.com/kardianos/service"
)

func init() {
	register("serve", "run the daemon (the default command)", (*Main).serve)
}

func (m *Main) serve(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("serve")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, path, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := daemon.NewLogger(cfg.Logging, m.Stderr)
	if path == "" {
		log.Info("no config file found; running with defaults", "lookup", "$AGENTD_CONFIG, /etc/agentd/config.toml, ./config.toml")
	}
	// Orphaned descendants of command tools (a grandchild that called
	// setsid) are re-parented to agentd, so a timeout finds and reaps them.
	if err := tools.BecomeSubreaper(); err != nil {
		log.Warn("cannot become the subreaper of tool processes: a tool's grandchild that leaves its process group may outlive a timeout", "err", err)
	}
	d, err := daemon.New(ctx, cfg, daemon.Options{ConfigPath: path}, log)
	if err != nil {
		return err
	}
	if service.Interactive() || !serviceManaged() {
		return d.Run(ctx)
	}
	// Under a service manager that kardianos drives (Windows SCM, launchd),
	// the same Run is started by the adapter.
	prg := &program{run: d.Run}
	s, err := service.New(prg, serviceConfig(path, ""))
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return s.Run()
}

// program adapts Run(ctx) to kardianos/service: Start must not block; Stop
// cancels and waits.
type program struct {
	run    func(context.Context) error
	cancel context.CancelFunc
	done   chan error
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.run(ctx) }()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.cancel()
	return <-p.done
}
