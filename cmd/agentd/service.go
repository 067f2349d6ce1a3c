package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/agentd/agentd/packaging/systemdunit"
	"github.com/kardianos/service"
)

func init() {
	register("install", "install agentd as a system service (records the config path)", serviceAction("install"))
	register("uninstall", "remove the system service", serviceAction("uninstall"))
	register("start", "start the system service", serviceAction("start"))
	register("stop", "stop the system service", serviceAction("stop"))
	register("restart", "restart the system service", serviceAction("restart"))
	register("status", "show whether the system service is running", serviceAction("status"))
}

// serviceManaged reports whether a kardianos-driven manager runs agentd.
// On Linux systemd runs `agentd serve` directly (Type=notify), so the
// foreground path serves it too.
func serviceManaged() bool { return runtime.GOOS != "linux" }

// serviceConfig describes the service for kardianos/service: on systemd
// the unit is the packaged one (packaging/systemdunit), rendered for this
// executable, config and user, so `agentd install` and the .deb install
// the same hardening.
func serviceConfig(exe, configPath, user string) (*service.Config, error) {
	args := []string{"serve"}
	if configPath != "" {
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
		args = append(args, "--config", configPath)
	}
	unit, err := systemdunit.Render(exe, args, user)
	if err != nil {
		return nil, err
	}
	return &service.Config{
		Name:        "agentd",
		DisplayName: "agentd",
		Description: "agentd: local plan-and-execute AI agents on Ollama",
		Executable:  exe,
		Arguments:   args,
		UserName:    user,
		Option:      service.KeyValue{"SystemdScript": unit},
	}, nil
}

// executable is this binary's absolute path, which the service runs.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find agentd's own path: %w", err)
	}
	return filepath.Abs(exe)
}

func serviceAction(action string) func(*Main, context.Context, []string) error {
	return func(m *Main, ctx context.Context, args []string) error {
		fs, cfgPath := m.flags(action)
		user := "agentd"
		if action == "install" {
			fs.StringVar(&user, "user", user, "user the service runs as (created by the package; \"\" for root)")
		}
		if err := parse(fs, args); err != nil {
			return err
		}
		path := *cfgPath
		if action == "install" {
			cfg, used, err := m.loadConfig(path)
			if err != nil {
				return fmt.Errorf("refusing to install with a broken config: %w", err)
			}
			_ = cfg
			path = used
		}
		exe, err := executable()
		if err != nil {
			return err
		}
		sc, err := serviceConfig(exe, path, user)
		if err != nil {
			return err
		}
		s, err := service.New(&program{}, sc)
		if err != nil {
			return fmt.Errorf("service: %w", err)
		}
		if action == "status" {
			st, err := s.Status()
			if err != nil {
				return fmt.Errorf("service status: %w — is it installed? (`agentd install`)", err)
			}
			names := map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped", service.StatusUnknown: "unknown"}
			fmt.Fprintf(m.Stdout, "agentd service: %s\n", names[st])
			if st != service.StatusRunning {
				return errSilent
			}
			return nil
		}
		if err := service.Control(s, action); err != nil {
			hint := ""
			if os.Geteuid() != 0 {
				hint = " — service changes need root: run with sudo"
			}
			return fmt.Errorf("%s: %w%s", action, err, hint)
		}
		fmt.Fprintf(m.Stdout, "agentd service: %s done\n", action)
		if action == "install" {
			fmt.Fprintf(m.Stdout, "config: %s\nstart it with: sudo agentd start\n", displayPath(path))
		}
		return nil
	}
}

func displayPath(p string) string {
	if p == "" {
		return "(none: defaults)"
	}
	return p
}
