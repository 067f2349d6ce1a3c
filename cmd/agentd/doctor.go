package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/vram"
	"github.com/ollama/ollama/api"
)

func init() {
	register("doctor", "check config, database, state directory, Ollama, models and GPU", (*Main).doctor)
}

type checkResult struct {
	name, level, detail string // level: ok | warn | FAIL
}

func (m *Main) doctor(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("doctor")
	if err := parse(fs, args); err != nil {
		return err
	}
	var results []checkResult
	add := func(name, level, format string, a ...any) {
		results = append(results, checkResult{name, level, fmt.Sprintf(format, a...)})
	}
	cfg, used, err := m.loadConfig(*cfgPath)
	if err != nil {
		add("config", "FAIL", "%v", err)
		m.printChecks(results)
		return errSilent
	}
	add("config", "ok", "%s", displayPath(used))
	paths := cfg.ResolvePaths()

	if err := daemon.EnsureStateDir(paths.StateDir); err != nil {
		add("state dir", "FAIL", "%v", err)
	} else {
		add("state dir", "ok", "%s is writable", paths.StateDir)
	}

	m.checkDatabase(ctx, paths, add)
	m.checkToken(paths, add)
	m.checkOllama(ctx, cfg, add)
	m.checkGPU(ctx, cfg, add)
	m.checkListener(ctx, cfg, add)

	m.printChecks(results)
	if slices.ContainsFunc(results, func(r checkResult) bool { return r.level == "FAIL" }) {
		return errSilent
	}
	return nil
}

func (m *Main) printChecks(results []checkResult) {
	for _, r := range results {
		fmt.Fprintf(m.Stdout, "%-5s %-10s %s\n", r.level, r.name, r.detail)
	}
}

func (m *Main) checkDatabase(ctx context.Context, paths config.Paths, add func(string, string, string, ...any)) {
	if _, err := os.Stat(paths.Database); errors.Is(err, fs.ErrNotExist) {
		add("database", "ok", "%s not created yet: `agentd serve` creates it", paths.Database)
		return
	}
	s, err := db.Open(ctx, paths.Database, db.Options{NoLock: true, NoMigrate: true})
	if err != nil {
		add("database", "FAIL", "%v", err)
		return
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		add("database", "FAIL", "%s: cannot read schema version: %v — restore a backup (`agentd db backup` makes them)", paths.Database, err)
		return
	}
	var check string
	if err := s.Reader().QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		add("database", "FAIL", "%s: integrity check says %q (%v) — stop agentd and restore a backup", paths.Database, check, err)
		return
	}
	switch latest := db.LatestVersion(); {
	case v < latest:
		add("database", "warn", "%s at schema %d; this agentd migrates it to %d at next start", paths.Database, v, latest)
	case v > latest:
		add("database", "FAIL", "%s at schema %d is newer than this agentd (%d) — upgrade agentd", paths.Database, v, latest)
	default:
		add("database", "ok", "%s, schema %d, integrity ok", paths.Database, v)
	}
}

func (m *Main) checkToken(paths config.Paths, add func(string, string, string, ...any)) {
	st, err := os.Stat(paths.TokenFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add("token", "ok", "%s not created yet: made at first start", paths.TokenFile)
	case err != nil:
		add("token", "FAIL", "%v", err)
	case st.Mode().Perm()&0o077 != 0:
		add("token", "FAIL", "%s is readable by others (mode %o) — run `chmod 600 %s`", paths.TokenFile, st.Mode().Perm(), paths.TokenFile)
	default:
		add("token", "ok", "%s (mode 0600)", paths.TokenFile)
	}
}

func (m *Main) checkOllama(ctx context.Context, cfg *config.Config, add func(string, string, string, ...any)) {
	wanted := roleModels(cfg)
	for _, ep := range cfg.Ollama.Endpoints {
		c, err := daemon.NewOllamaClient(ep.URL, cfg.Ollama.ConnectTimeout.D())
		if err != nil {
			add("ollama", "FAIL", "%v", err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := c.Version(cctx)
		if err != nil {
			cancel()
			add("ollama", "FAIL", "%s: not reachable at %s — is `ollama serve` running? (or fix ollama.endpoints)", ep.Name, ep.URL)
			continue
		}
		add("ollama", "ok", "%s: %s, version %s", ep.Name, ep.URL, v)
		tags, err := c.List(cctx)
		cancel()
		if err != nil {
			add("models", "FAIL", "%s: cannot list models: %v", ep.Name, err)
			continue
		}
		have := map[string]bool{}
		for _, t := range tags.Models {
			have[t.Name] = true
			have[strings.TrimSuffix(t.Name, ":latest")] = true
		}
		var missing []string
		for _, w := range wanted {
			if !have[w] && !have[w+":latest"] {
				missing = append(missing, w)
			}
		}
		if ps, err := c.ListRunning(ctx); err == nil {
			res, _ := vram.ReadResidency(ctx, runningList{ps})
			for _, r := range res {
				level := "ok"
				detail := fmt.Sprintf("%s: %s loaded, %.1f GB, all in VRAM", ep.Name, r.Name, float64(r.SizeBytes)/1e9)
				if r.Spill {
					level, detail = "warn", ep.Name+": "+r.Warning
				}
				add("loaded", level, "%s", detail)
			}
		}
		if len(missing) > 0 {
			cmds := make([]string, len(missing))
			for i, name := range missing {
				cmds[i] = "ollama pull " + name
			}
			add("models", "FAIL", "%s: missing %s — run: %s", ep.Name, strings.Join(missing, ", "), strings.Join(cmds, " && "))
		} else {
			add("models", "ok", "%s: all %d configured models pulled", ep.Name, len(wanted))
		}
	}
}

// roleModels lists each configured model once.
func roleModels(cfg *config.Config) []string {
	mc := cfg.Models
	var out []string
	for _, n := range []string{mc.Planner, mc.Fast, mc.Standard, mc.Router, mc.Summarizer, mc.Validator, mc.Embedding} {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (m *Main) checkGPU(ctx context.Context, cfg *config.Config, add func(string, string, string, ...any)) {
	p, err := vram.NewProber(cfg.VRAM.Probe, cfg.VRAM.SysfsRoot)
	if err != nil {
		add("gpu", "FAIL", "vram.probe: %v", err)
		return
	}
	if nv, ok := p.(*vram.NVIDIA); ok {
		nv.Path, nv.Timeout = cfg.VRAM.NvidiaSMI, cfg.VRAM.ProbeTimeout.D()
	}
	gpus, err := p.Probe(ctx)
	switch {
	case err != nil && !errors.Is(err, vram.ErrUnavailable):
		add("gpu", "FAIL", "%v", err)
	case len(gpus) == 0:
		add("gpu", "warn", "no GPU found (probe %s): models will run on CPU — slow; check the driver, or set vram.probe = \"none\" to silence this", cfg.VRAM.Probe)
	default:
		for _, g := range gpus {
			mem := "memory unknown"
			if g.MemoryTotalBytes != nil && g.MemoryUsedBytes != nil {
				mem = fmt.Sprintf("%.1f of %.1f GiB used", float64(*g.MemoryUsedBytes)/(1<<30), float64(*g.MemoryTotalBytes)/(1<<30))
			}
			add("gpu", "ok", "%s %d: %s, %s", g.Source, g.Index, g.Name, mem)
		}
	}
}

func (m *Main) checkListener(ctx context.Context, cfg *config.Config, add func(string, string, string, ...any)) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+cfg.Server.Listen+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		add("daemon", "ok", "not running on %s (start it with `agentd serve` or `sudo agentd start`)", cfg.Server.Listen)
		return
	}
	resp.Body.Close()
	add("daemon", "ok", "answering on http://%s", cfg.Server.Listen)
}

// runningList serves an already-fetched /api/ps answer.
type runningList struct{ ps *api.ProcessResponse }

func (r runningList) ListRunning(context.Context) (*api.ProcessResponse, error) { return r.ps, nil }
