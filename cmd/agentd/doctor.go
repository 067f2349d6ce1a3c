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
	"github.com/agentd/agentd/internal/llm"
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

	if owner := ownerOf(paths.StateDir); os.Geteuid() != 0 && owner != "" && owner != currentUser() {
		// Another user's agentd (the service's): checking it from here would
		// only report permission errors.
		again := "sudo -u " + owner + " agentd doctor"
		if *cfgPath != "" {
			again += " --config " + *cfgPath
		}
		add("state dir", "FAIL", "%s belongs to %s: run doctor as that user, `%s`", paths.StateDir, owner, again)
		m.printChecks(results)
		return errSilent
	}
	if err := daemon.EnsureStateDir(paths.StateDir); err != nil {
		add("state dir", "FAIL", "%v", err)
	} else if err := checkStateFiles(paths); err != nil {
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
		add("database", "FAIL", "%v", explainStateAccess(err, paths.StateDir))
		return
	}
	defer func() {
		s.Close()
		// SQLite may have created the -wal and -shm files: as root, they
		// must stay the service's, or it cannot open its database.
		for _, f := range []string{paths.Database, paths.Database + "-wal", paths.Database + "-shm"} {
			keepStateDirOwner(f)
		}
	}()
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
		add("token", "FAIL", "%v", tokenAccessError(err, paths.TokenFile))
	case st.Mode().Perm()&0o077 != 0:
		add("token", "FAIL", "%s is readable by others (mode %o) — run `chmod 600 %s`", paths.TokenFile, st.Mode().Perm(), paths.TokenFile)
	default:
		add("token", "ok", "%s (mode 0600)", paths.TokenFile)
	}
}

func (m *Main) checkOllama(ctx context.Context, cfg *config.Config, add func(string, string, string, ...any)) {
	needed := neededModels(cfg)
	reachable := 0
	defer func() {
		if reachable == 0 && len(cfg.Ollama.Endpoints) > 0 {
			add("ollama", "hint", "no Ollama answers, so runs would wait for one. Two ways on:")
			for _, line := range ollamaWaysOn(cfg) {
				add("ollama", "hint", "- %s", line)
			}
		}
	}()
	for _, ep := range cfg.Ollama.Endpoints {
		if ep.IsOpenAI() {
			reachable++ // not Ollama: its models are checked when the daemon starts
			add("ollama", "ok", "%s: %s is OpenAI-compatible (external, not probed here; the daemon checks its /models at start), serves %s", ep.Name, ep.URL, strings.Join(ep.Models, ", "))
			continue
		}
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
		reachable++
		add("ollama", "ok", "%s: %s, version %s", ep.Name, ep.URL, v)
		tags, err := c.List(cctx)
		cancel()
		if err != nil {
			add("models", "FAIL", "%s: cannot list models: %v", ep.Name, err)
			continue
		}
		have := map[string]bool{}
		for _, t := range tags.Models {
			have[llm.ModelKey(t.Name)] = true
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
		for _, n := range needed {
			if have[llm.ModelKey(n.name)] {
				add("models", "ok", "%s: %s is pulled", ep.Name, n)
			} else {
				add("models", "FAIL", "%s: %s is missing — run: ollama pull %s", ep.Name, n, n.name)
			}
		}
	}
}

// ollamaWaysOn is what to do when no Ollama answers: install it and pull the
// models the config uses, or try agentd on its simulator. The startup banner
// and doctor say the same words.
func ollamaWaysOn(cfg *config.Config) []string {
	pulls := make([]string, 0, 4)
	for _, n := range neededModels(cfg) {
		pulls = append(pulls, "ollama pull "+n.name)
	}
	return []string{
		"install Ollama (https://ollama.com/download), start it (`ollama serve`) and pull the configured models: " + strings.Join(pulls, "; "),
		"or try agentd without any model, on its built-in Ollama simulator: `agentd demo` (`make demo` in the source tree)",
	}
}

// modelNeed is a model that configured features call, and which features:
// doctor checks only these, so a model no feature uses (the embedding model
// without [tools.docs] folders) never fails the check.
type modelNeed struct {
	name string
	uses []modelUse
}

// modelUse is one feature's need: what the model is to it, and the config
// that sets or asks for it.
type modelUse struct{ role, why string }

// String reads "fast-tier and summarizer model tiny (models.fast; models.summarizer)".
func (n modelNeed) String() string {
	roles := make([]string, len(n.uses))
	whys := make([]string, len(n.uses))
	for i, u := range n.uses {
		roles[i], whys[i] = u.role, u.why
	}
	role := roles[0]
	if k := len(roles); k > 1 {
		role = strings.Join(roles[:k-1], ", ") + " and " + roles[k-1]
	}
	return fmt.Sprintf("%s model %s (%s)", role, n.name, strings.Join(whys, "; "))
}

// neededModels groups config.ModelUses by model: doctor checks exactly the
// models configured features call, each once, naming every use.
func neededModels(cfg *config.Config) []modelNeed {
	var out []modelNeed
next:
	for _, u := range cfg.ModelUses() {
		role := u.Role
		if role == "standard" || role == "fast" {
			role += "-tier"
		}
		for i := range out {
			if llm.ModelKey(out[i].name) == llm.ModelKey(u.Model) {
				out[i].uses = append(out[i].uses, modelUse{role, u.Why})
				continue next
			}
		}
		out = append(out, modelNeed{name: u.Model, uses: []modelUse{{role, u.Why}}})
	}
	return out
}

func (m *Main) checkGPU(ctx context.Context, cfg *config.Config, add func(string, string, string, ...any)) {
	p, err := vram.NewProber(cfg.VRAM)
	if err != nil {
		add("gpu", "FAIL", "vram.probe: %v", err)
		return
	}
	gpus, err := p.Probe(ctx)
	switch {
	case err != nil && !errors.Is(err, vram.ErrUnavailable):
		add("gpu", "FAIL", "%v", err)
	case len(gpus) == 0 && cfg.VRAM.Probe == "none":
		add("gpu", "ok", "not probed (vram.probe = \"none\")")
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
