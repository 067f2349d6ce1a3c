package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

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

// unitTemplate is the systemd unit `agentd install` writes, in kardianos'
// template language. It carries the same hardening as packaging/agentd.service.
const unitTemplate = `[Unit]
Description={{Description}}
After=network-online.target ollama.service
Wants=network-online.target
ConditionFileIsExecutable={{Path | cmdEscape}}

[Service]
Type=notify
NotifyAccess=main
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
{{if UserName}}User={{UserName}}
Group={{UserName}}
{{end}}EnvironmentFile=-/etc/default/agentd
StateDirectory=agentd
StateDirectoryMode=0750
ConfigurationDirectory=agentd
Restart=on-failure
RestartSec=5s
TimeoutStopSec=15s
UMask=0027
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=

[Install]
WantedBy=multi-user.target
`

func serviceConfig(configPath, user string) *service.Config {
	args := []string{"serve"}
	if configPath != "" {
		if abs, err := filepath.Abs(configPath); err == nil {
			configPath = abs
		}
		args = append(args, "--config", configPath)
	}
	return &service.Config{
		Name:        "agentd",
		DisplayName: "agentd",
		Description: "agentd: local plan-and-execute AI agents on Ollama",
		Arguments:   args,
		UserName:    user,
		Option: service.KeyValue{
			"SystemdScript": unitTemplate,
			"Restart":       "on-failure",
		},
	}
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
		s, err := service.New(&program{}, serviceConfig(path, user))
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
