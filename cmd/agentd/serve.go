package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentd/agentd/internal/config"
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
	stateDir := cfg.ResolvePaths().StateDir
	if os.Geteuid() == 0 {
		if owner := ownerOf(stateDir); owner != "" && owner != "root" {
			log.Warn("running as root in a state directory owned by "+owner+": the files this run creates will be root's, and agentd running as "+owner+" (the service) will not be able to open them — run it as "+owner+" instead (`sudo systemctl start agentd`, or `sudo -u "+owner+" agentd serve`)",
				"state_dir", stateDir)
		}
	}
	// Orphaned descendants of command tools (a grandchild that called
	// setsid) are re-parented to agentd, so a timeout finds and reaps them.
	if err := tools.BecomeSubreaper(); err != nil {
		log.Warn("cannot become the subreaper of tool processes: a tool's grandchild that leaves its process group may outlive a timeout", "err", err)
	}
	if err := checkStateFiles(cfg.ResolvePaths()); err != nil {
		return err
	}
	d, err := daemon.New(ctx, cfg, daemon.Options{ConfigPath: path}, log)
	if err != nil {
		return explainStateAccess(err, stateDir)
	}
	m.printStartBanner(ctx, cfg, d)
	if service.Interactive() || !serviceManaged() {
		return d.Run(ctx)
	}
	// Under a service manager that kardianos drives (Windows SCM, launchd),
	// the same Run is started by the adapter.
	exe, err := executable()
	if err != nil {
		return err
	}
	sc, err := serviceConfig(exe, path, "")
	if err != nil {
		return err
	}
	prg := &program{run: d.Run}
	s, err := service.New(prg, sc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return s.Run()
}

// checkStateFiles fails, with the command that fixes it, when a state file
// that exists is not readable and writable by this process: SQLite would
// open a database it cannot write and fail only at the first write, long
// after start.
func checkStateFiles(p config.Paths) error {
	for _, f := range []string{p.Database, p.Database + "-wal", p.Database + "-shm", p.Database + ".lock", p.TokenFile} {
		err := syscall.Access(f, 0o6) // R_OK|W_OK
		if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EPERM) {
			continue // fine, absent, or for daemon.New to explain
		}
		return explainStateAccess(&fs.PathError{Op: "open", Path: f, Err: err}, p.StateDir)
	}
	return nil
}

// explainStateAccess adds, to an error opening agentd's state (database,
// lock, token) in stateDir, the command that fixes it when the cause is
// permissions: typically files left in the service's state directory by
// running agentd as root. Other errors are returned as they are.
func explainStateAccess(err error, stateDir string) error {
	if !isPermission(err) || !strings.Contains(err.Error(), stateDir) {
		return err
	}
	name, owner := "this user", "$USER:"
	if u, uerr := user.Current(); uerr == nil {
		name, owner = u.Username, u.Username+":"
		if g, gerr := user.LookupGroupId(u.Gid); gerr == nil {
			owner += g.Name
		}
	}
	return fmt.Errorf("%w — agentd, running as %s, cannot open its own files in %s (left there by running agentd as another user, such as root?): fix with `sudo chown -R %s %s`",
		err, name, stateDir, owner, stateDir)
}

// isPermission recognizes a permission failure from the filesystem, or from
// SQLite, which reports it in words rather than as an errno.
func isPermission(err error) bool {
	msg := err.Error()
	if strings.Contains(msg, "chown") {
		return false // the error already says what to run
	}
	return errors.Is(err, fs.ErrPermission) || strings.Contains(msg, "readonly database")
}

// printStartBanner tells the person who started agentd, once and in words,
// where the dashboard is, how to get the token it asks for, and, when no
// Ollama answers, the two ways on.
func (m *Main) printStartBanner(ctx context.Context, cfg *config.Config, d *daemon.Daemon) {
	base, _ := baseURL(d.Addr().String())
	if cfg.Server.TLSCert != "" {
		base = "https" + strings.TrimPrefix(base, "http")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "agentd is starting: dashboard %s/\n", base)
	fmt.Fprintf(&b, "  the dashboard asks for the API token: print it with `%s`\n", tokenCommand(currentUser()))
	if down := unreachableOllama(ctx, cfg, time.Second); len(down) == len(ollamaEndpoints(cfg)) && len(down) > 0 {
		fmt.Fprintf(&b, "  no Ollama answers at %s, so runs wait for one. Two ways on:\n", strings.Join(down, ", "))
		for _, line := range ollamaWaysOn(cfg) {
			fmt.Fprintf(&b, "    - %s\n", line)
		}
	}
	fmt.Fprint(m.Stderr, b.String())
}

// unreachableOllama returns the URLs of the configured Ollama endpoints that
// do not answer within timeout.
func unreachableOllama(ctx context.Context, cfg *config.Config, timeout time.Duration) []string {
	eps := ollamaEndpoints(cfg)
	down := make([]bool, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Go(func() {
			c, err := daemon.NewOllamaClient(ep.URL, cfg.Ollama.ConnectTimeout.D())
			if err != nil {
				down[i] = true
				return
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err = c.Version(cctx)
			down[i] = err != nil
		})
	}
	wg.Wait()
	var urls []string
	for i, ep := range eps {
		if down[i] {
			urls = append(urls, ep.URL)
		}
	}
	return urls
}

// ollamaEndpoints are the endpoints that speak Ollama's API; the
// OpenAI-compatible ones have no /api/version to probe.
func ollamaEndpoints(cfg *config.Config) []config.EndpointConfig {
	var out []config.EndpointConfig
	for _, ep := range cfg.Ollama.Endpoints {
		if !ep.IsOpenAI() {
			out = append(out, ep)
		}
	}
	return out
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
