package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/vram"
)

func init() {
	register("demo", "run the real daemon on the built-in Ollama simulator with the scenario tools (no model needed)", (*Main).demo)
}

// demoStateDir is where the demo keeps its own database and token, apart
// from a real agentd's: $XDG_STATE_HOME/agentd-demo or
// ~/.local/state/agentd-demo.
func (m *Main) demoStateDir() string {
	if x := m.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "agentd-demo")
	}
	if h := m.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "agentd-demo")
	}
	return filepath.Join(os.TempDir(), "agentd-demo")
}

func (m *Main) demo(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("demo")
	state := fs.String("state", "", "state directory of the demo (default: $XDG_STATE_HOME/agentd-demo or ~/.local/state/agentd-demo)")
	listen := fs.String("listen", "", "dashboard and API address (default: server.listen from the config, 127.0.0.1:8484)")
	timeScale := fs.Float64("time-scale", 0.05, "real seconds per simulated second (0.05: a 20 s simulated run takes 1 s); 0 = instant")
	submit := fs.Bool("submit", false, "submit every scenario once at start, so the dashboard has runs to show (the order waits for your approval)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *timeScale < 0 || *timeScale > 1 {
		return usagef("--time-scale %g: use a value in [0, 1]", *timeScale)
	}
	cfg := config.Default()
	if *cfgPath != "" {
		c, _, err := m.loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		cfg = c
	}
	if *state == "" {
		*state = m.demoStateDir()
	}
	// Everything the demo writes stays in its own directory.
	cfg.Storage.StateDir, cfg.Storage.Database, cfg.Server.TokenFile = *state, "", ""
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	log := daemon.NewLogger(cfg.Logging, m.Stderr)

	sim := ollamasim.New(ollamasim.Config{Seed: 1, TimeScale: *timeScale, NumParallel: 4, MaxQueue: 512,
		Script: scenarios.Script(), Logger: log.With("component", "ollamasim")})
	simURL, err := sim.Start(ctx)
	if err != nil {
		return fmt.Errorf("start the Ollama simulator: %w", err)
	}
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "demo-simulator", URL: simURL, ParallelSlots: 4, MaxQueue: 512}}
	cfg.VRAM.Probe = "none"
	cfg.Fallback.Enabled = false // nothing leaves the machine in a demo
	cfg.Workflows = append(slices.Clone(cfg.Workflows), scenarios.Workflows()...)
	cfg.Executor.MaxConcurrentSteps = max(cfg.Executor.MaxConcurrentSteps, 10)
	// The reference documents the research scenario cites, for search_docs
	// (embedded by the simulated embedding model).
	docs := filepath.Join(*state, "docs")
	if err := scenarios.WriteDocs(docs); err != nil {
		_ = sim.Close()
		return fmt.Errorf("demo documents: %w", err)
	}
	if len(cfg.Tools.Docs.Folders) == 0 {
		cfg.Tools.Docs.Folders = []string{docs}
	}
	if err := cfg.Validate(); err != nil {
		_ = sim.Close()
		return err
	}

	d, err := daemon.New(ctx, cfg, daemon.Options{ConfigPath: *cfgPath, Demo: true, GPUCapacity: uint64(ollamasim.DefaultVRAM),
		Prober: simulatedGPU{sim}, DemoExamples: demoExamples(),
		Tools: scenarios.Registry(scenarios.Options{TimeScale: *timeScale}), Closers: []func(){func() { _ = sim.Close() }}}, log)
	if err != nil {
		_ = sim.Close()
		return err
	}
	tok, err := api.LoadOrCreateToken(d.Paths().TokenFile)
	if err != nil {
		return err
	}
	log.Warn("DEMO MODE — every model answer comes from the built-in Ollama simulator and scripted scenarios, not from a real model",
		"simulator", simURL, "time_scale", *timeScale, "state_dir", d.Paths().StateDir)
	bar := strings.Repeat("=", 72)
	fmt.Fprintf(m.Stdout, "%s\n  agentd DEMO — simulated models, fixture tools; nothing here is real output\n%s\n", bar, bar)
	fmt.Fprintf(m.Stdout, "dashboard: http://%s/\ntoken:     %s\nstate:     %s\n", d.Addr(), tok.Token(), d.Paths().StateDir)
	fmt.Fprintf(m.Stdout, "try:       %s submit --wait %q\n", cliName(), "What is 17% of 2,340?")
	fmt.Fprintf(m.Stdout, "           (the demo answers arithmetic, the time and questions on its documents with real tools;\n"+
		"           the dashboard's examples run the scripted scenarios: %s)\n", strings.Join(scenarios.Names(), ", "))

	if *submit {
		go func() {
			// Let the engine start before the first run is admitted.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, sc := range scenarios.All() {
				r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: sc.Request, Source: "demo"})
				if err != nil {
					log.Error("demo submit", "scenario", sc.Name, "err", err)
					continue
				}
				log.Info("demo run submitted", "scenario", sc.Name, "run", r.ID)
			}
		}()
	}
	return d.Run(ctx)
}

// simulatedGPU is the demo's GPU probe: the one GPU the Ollama simulator
// models, its memory held by the models it has loaded and its use the share
// of their slots that are busy. It says it is simulated.
type simulatedGPU struct{ sim *ollamasim.Server }

func (g simulatedGPU) Probe(context.Context) ([]vram.GPU, error) {
	dev := g.sim.Device()
	total, used := uint64(dev.VRAMTotal), uint64(max(dev.VRAMUsed, 0))
	free := total - min(used, total)
	util := 0.0
	if dev.Slots > 0 {
		util = 100 * float64(dev.Active) / float64(dev.Slots)
	}
	return []vram.GPU{{Source: "simulated", Name: "Simulated GPU (demo)", MemoryTotalBytes: &total,
		MemoryUsedBytes: &used, MemoryFreeBytes: &free, UtilizationPercent: &util, Simulated: true}}, nil
}

// cliName is how the user started this binary, for commands to copy:
// ./bin/agentd after make demo, agentd when it is on the PATH.
func cliName() string {
	if a := os.Args[0]; strings.HasPrefix(a, "./") || strings.HasPrefix(a, "bin/") {
		return a
	}
	return "agentd"
}

// demoExamples are the scripted scenarios' requests: the simulator answers
// them as planned, so the dashboard offers them as one-click examples.
func demoExamples() []daemon.DemoExample {
	var out []daemon.DemoExample
	for _, sc := range scenarios.All() {
		out = append(out, daemon.DemoExample{Name: sc.Name, Request: sc.Request})
	}
	return out
}
