// Package daemon is agentd's composition root: it builds every component
// from the configuration, runs them, and stops them in reverse order. Nothing
// else imports it but cmd/agentd.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/buildinfo"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/sdnotify"
	"github.com/agentd/agentd/internal/telemetry"
	"github.com/agentd/agentd/internal/tools"
	"github.com/agentd/agentd/internal/vram"
	ollama "github.com/ollama/ollama/api"
)

// Options change how the daemon is assembled.
type Options struct {
	// ConfigPath is shown in status and doctor output.
	ConfigPath string
	// Demo labels the daemon loudly as a demo running on the simulator.
	Demo bool
	// Listener replaces binding server.listen (tests).
	Listener net.Listener
	// GPUCapacity overrides the VRAM the residency policy plans with
	// (bytes; 0 = what the GPU probe reports). The demo sets it to the
	// simulator's GPU.
	GPUCapacity uint64
	// Prober replaces the GPU probe vram.probe selects (the demo's
	// simulated GPU).
	Prober vram.Prober
	// DemoExamples are the demo's scripted requests, offered on the
	// dashboard as one-click examples (status.demo_examples).
	DemoExamples []DemoExample
	// Tools replaces the tool registry built from config (demo fixtures).
	Tools func(config.ToolsConfig, tools.Deps) (*tools.Registry, error)
	// Closers run after every component has stopped (the demo's simulator).
	Closers []func()
}

// Daemon is a built, not yet running, agentd.
type Daemon struct {
	cfg     *config.Config
	opts    Options
	paths   config.Paths
	log     *slog.Logger
	started time.Time

	Store   *db.Store
	Bus     *events.Bus
	Server  *api.Server
	Monitor *vram.Monitor

	Residency *vram.Manager
	LLM       *llm.Client
	Tools     *tools.Registry
	Gate      *fallback.Gate
	Engine    *exec.Engine
	// Telemetry is the trace exporter (a no-op tracer with traces off).
	Telemetry *telemetry.Tracing
	// PlanCache is the plan cache; nil when [planner.cache] is off.
	PlanCache *plancache.Cache
	recorder  *usageRecorder
	prefetch  *prefetcher
	deferred  *fallback.Deferred // nil without remote fallback

	ollama []endpointClient
	group  group
}

type endpointClient struct {
	cfg    config.EndpointConfig
	client *ollama.Client
}

// New builds the daemon: state directory, database (locked against a second
// agentd), event bus, token, listener. Every failure here is reported as one
// line naming the path, port or process and the config key that changes it.
func New(ctx context.Context, cfg *config.Config, opts Options, log *slog.Logger) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, opts: opts, paths: cfg.ResolvePaths(), log: log, started: time.Now()}
	d.group.log = log
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := EnsureStateDir(d.paths.StateDir); err != nil {
		return nil, err
	}
	if d.Store, err = db.Open(ctx, d.paths.Database, db.Options{}); err != nil {
		return nil, err
	}
	d.Bus = events.New(d.Store, 4096, log)
	if err := d.Bus.Init(ctx); err != nil {
		return nil, err
	}
	token, err := api.LoadOrCreateToken(d.paths.TokenFile)
	if err != nil {
		return nil, err
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = Listen(cfg.Server.Listen); err != nil {
			return nil, err
		}
	}
	for _, ep := range cfg.Ollama.Endpoints {
		if ep.IsOpenAI() {
			continue // no /api/ps to poll: its models are external (see buildAgent)
		}
		c, err := NewOllamaClient(ep.URL, cfg.Ollama.ConnectTimeout.D())
		if err != nil {
			return nil, err
		}
		d.ollama = append(d.ollama, endpointClient{cfg: ep, client: c})
	}
	prober := opts.Prober
	if prober == nil {
		if prober, err = vram.NewProber(cfg.VRAM); err != nil {
			return nil, fmt.Errorf("vram.probe: %w", err)
		}
	}
	d.Monitor = vram.NewMonitor(prober, &vram.Host{}, log)
	d.Monitor.Interval = cfg.VRAM.SampleInterval.D()
	d.Monitor.Publisher = busPublisher{d.Bus}
	d.Monitor.Thresholds = thresholdsFrom(cfg.VRAM.Thresholds)

	// Start order: storage first, the HTTP server last; stop is the reverse.
	d.group.add("events", d.Bus)
	// Telemetry starts before the executor and so stops after it: the
	// spans of runs that end while the daemon stops are still flushed.
	if d.Telemetry, err = telemetry.New(telemetry.Options{Config: cfg.Telemetry, Log: log,
		Ledger: egressLedger{d.Store}}); err != nil {
		return nil, err
	}
	d.group.add("telemetry", d.Telemetry)
	d.group.add("retention", &db.Pruner{Store: d.Store, Interval: cfg.Storage.PruneInterval.D(), Log: log, Retention: db.Retention{
		Runs: cfg.Storage.Retention.Runs.D(), Events: cfg.Storage.Retention.Events.D(),
		Samples: cfg.Storage.Retention.Samples.D(), Ledgers: cfg.Storage.Retention.Ledgers.D(),
	}})
	d.group.add("vram", d.Monitor)
	if err := d.buildAgent(ctx); err != nil {
		return nil, err
	}

	tlsCfg, err := ServerTLS(cfg.Server, log)
	if err != nil {
		return nil, err
	}
	d.Server = api.New(api.Config{
		AuthRequired:    cfg.Server.Auth == "token",
		MaxRequestBytes: int64(cfg.Server.MaxRequestBytes),
		AllowedOrigins:  cfg.Server.AllowedOrigins,
		AllowedHosts:    AllowedHosts(cfg.Server),
		ShutdownTimeout: cfg.Server.ShutdownTimeout.D(),
		BodyTimeout:     cfg.Server.BodyTimeout.D(),
		TLS:             tlsCfg,
	}, ln, token, d.status, d.Store.Ping, log)

	if err := d.registerAPI(); err != nil {
		return nil, err
	}

	d.group.add("http", d.Server)
	d.group.add("discovery", d.discovery()) // after the listener: the CLI finds this daemon while it serves
	return d, nil
}

// Run runs every component until ctx ends, then stops them in reverse order
// within server.shutdown_timeout.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	err := d.group.run(ctx, d.cfg.Server.ShutdownTimeout.D(), func() {
		d.Server.SetReady(true)
		d.Bus.Emit("", events.DaemonStateData{State: "ready", Demo: d.opts.Demo})
		if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
			d.log.Warn("systemd notify failed", "err", err)
		}
		d.log.Info("agentd ready", "version", buildinfo.Version, "listen", d.Server.Addr().String(),
			"state_dir", d.paths.StateDir, "demo", d.opts.Demo)
		if d.opts.Demo {
			d.log.Warn("DEMO MODE: models are simulated by the built-in Ollama-protocol simulator; nothing here is a real model's output")
		}
	})
	_, _ = sdnotify.Notify(sdnotify.Stopping)
	d.log.Info("agentd stopped")
	return err
}

// Addr is the HTTP listener's address.
func (d *Daemon) Addr() net.Addr { return d.Server.Addr() }

// Paths are the resolved state locations.
func (d *Daemon) Paths() config.Paths { return d.paths }

func (d *Daemon) close() {
	if d.Tools != nil {
		_ = d.Tools.Close()
		d.Tools = nil
	}
	if d.Gate != nil {
		d.Gate.Budget().Wait()
	}
	for _, c := range d.opts.Closers {
		c()
	}
	d.opts.Closers = nil
	if d.Store != nil {
		d.Store.Close()
		d.Store = nil
	}
}

// EnsureStateDir creates the state directory and proves it writable.
func EnsureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state directory %s cannot be created: %v — set storage.state_dir to a writable directory", dir, unwrapPath(err))
	}
	probe := filepath.Join(dir, ".write-test")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("state directory %s is not writable: %v — set storage.state_dir, or give agentd's user ownership (chown -R agentd: %s)", dir, unwrapPath(err), dir)
	}
	f.Close()
	return os.Remove(probe)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Listen binds the HTTP address, explaining the usual failures.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	_, port, _ := net.SplitHostPort(addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("cannot listen on %s: port %s is already in use by another process (find it with `ss -ltnp 'sport = :%s'`) — stop it, or change server.listen", addr, port, port)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges) — change server.listen to a port above 1023", addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("cannot listen on %s: no such address on this machine — change server.listen", addr)
	}
	return nil, fmt.Errorf("cannot listen on %s: %w — check server.listen", addr, err)
}

// ServerTLS loads server.tls_cert and server.tls_key (nil, nil when TLS is
// off) and warns when a network listener serves plain HTTP because
// server.insecure_plaintext says so.
func ServerTLS(sc config.ServerConfig, log *slog.Logger) (*tls.Config, error) {
	if sc.TLSCert == "" {
		if host, _, err := net.SplitHostPort(sc.Listen); err == nil && !config.IsLoopback(host) {
			log.Warn("serving plain HTTP on a network address: the API token and the dashboard's cookie cross the network in clear (server.insecure_plaintext = true); set server.tls_cert and server.tls_key unless TLS ends in front of agentd",
				"listen", sc.Listen)
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert = %q, server.tls_key = %q: %w — point them at a PEM certificate and its private key, readable by agentd's user", sc.TLSCert, sc.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// AllowedHosts are the host names the API answers to besides IP literals
// and "localhost": the listen host when it is a name, and
// server.allowed_hosts.
func AllowedHosts(sc config.ServerConfig) []string {
	hosts := append([]string{}, sc.AllowedHosts...)
	if host, _, err := net.SplitHostPort(sc.Listen); err == nil && host != "" && net.ParseIP(host) == nil {
		hosts = append(hosts, host)
	}
	return hosts
}

// NewOllamaClient returns an official Ollama client for one endpoint.
func NewOllamaClient(rawURL string, connectTimeout time.Duration) (*ollama.Client, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	return ollama.NewClient(u, &http.Client{Transport: tr}), nil
}

type busPublisher struct{ bus *events.Bus }

func (p busPublisher) Publish(data events.Payload) { p.bus.Emit("", data) }

func thresholdsFrom(t config.Thresholds) vram.Thresholds {
	th := vram.DefaultThresholds()
	th.VRAMUsedPercent = vram.Threshold{High: t.VRAMPercent, Low: t.VRAMPercent - 10}
	th.GPUTemperatureC = vram.Threshold{High: t.GPUTempC, Low: t.GPUTempC - 10}
	th.HostMemoryUsedPercent = vram.Threshold{High: t.HostMemPercent, Low: t.HostMemPercent - 10}
	return th
}
