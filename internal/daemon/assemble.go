package daemon

import (
	"context"
	"time"

	"fmt"
	"github.com/agentd/agentd/internal/config"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/planning"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/tools"
	"github.com/agentd/agentd/internal/vram"
)

// buildAgent wires the model client, residency manager, tools, planner,
// remote gate and executor, and adds their long-running parts to the group.
func (d *Daemon) buildAgent(ctx context.Context) error {
	cfg := d.cfg
	d.recorder = &usageRecorder{store: d.Store, monitor: d.Monitor, priceKWh: cfg.Fallback.EnergyPriceKWh}

	endpoints := make([]vram.Endpoint, 0, len(d.ollama))
	for _, ep := range d.ollama {
		endpoints = append(endpoints, vram.Endpoint{
			Name: ep.cfg.Name, ParallelSlots: ep.cfg.ParallelSlots,
			Running: ep.client, Tags: ep.client, Loader: clientLoader{ep.client},
		})
	}
	external := map[string]string{}
	for _, ep := range cfg.Ollama.Endpoints {
		if ep.IsOpenAI() {
			for _, m := range ep.Models {
				external[m] = ep.Name
			}
		}
	}
	d.Residency = vram.NewManager(vram.ManagerConfig{
		Models: cfg.Models, Uses: cfg.ModelUses(), VRAM: cfg.VRAM, Endpoints: endpoints, External: external, Samples: d.Monitor,
		CapacityBytes: d.opts.GPUCapacity, Store: d.Store, Publisher: busPublisher{d.Bus}, Logger: d.log,
	})

	var err error
	d.LLM, err = llm.New(cfg.Ollama, cfg.Models, d.log, llm.WithRecorder(d.recorder), llm.WithKeepAlive(d.Residency),
		llm.WithTracer(d.Telemetry.Tracer(), d.Telemetry.IncludeContent()))
	if err != nil {
		return fmt.Errorf("ollama client: %w", err)
	}
	// Only logged: a server may load a model on its first call.
	d.LLM.CheckServedModels(ctx)

	deps := tools.Deps{Logger: d.log, Docs: d.Store, Embedder: embedder{d.LLM}, EmbedModel: cfg.Models.Embedding}
	if d.opts.Tools != nil {
		d.Tools, err = d.opts.Tools(cfg.Tools, deps)
	} else {
		d.Tools, err = tools.NewFromConfig(cfg.Tools, deps)
	}
	if err != nil {
		return err
	}
	catalog := registryTools{r: d.Tools}
	if cfg.Executor.PrefetchTools {
		d.prefetch = newPrefetcher(d.Tools, d.log)
		catalog.pf = d.prefetch
	}

	pm := plannerModel{d.LLM}
	local := localplanner.New(pm, catalog, cfg.Planner, cfg.Models, d.log, localplanner.WithTokens(d.LLM.Tokens()))
	templates, err := localplanner.NewTemplates(cfg.Workflows, pm, catalog, cfg.Planner, cfg.Models, d.log)
	if err != nil {
		return fmt.Errorf("workflows: %w", err)
	}
	if cfg.Fallback.Enabled {
		d.Gate, err = fallback.NewGate(ctx, fallback.GateOptions{Config: cfg.Fallback, Store: d.Store, Logger: d.log,
			Publisher: d.Bus, Tracer: d.Telemetry.Tracer()})
		if err != nil {
			return fmt.Errorf("remote fallback: %w", err)
		}
	}
	if cfg.Planner.Cache.Enabled {
		if d.PlanCache, err = plancache.Open(ctx, cfg.Planner.Cache, d.Store, d.log); err != nil {
			return fmt.Errorf("plan cache: %w", err)
		}
	}
	po := planning.Options{Templates: templates, Local: local, Catalog: catalog, Gate: d.Gate, History: d.Store, Log: d.log,
		Cache: d.PlanCache}
	if d.prefetch != nil {
		po.OnDraft = d.prefetch.draftObserver
	}
	planner := planning.New(cfg, po)

	// Async runs that need the remote planner while the link is down or a
	// budget window is spent wait in the deferred queue, under their own
	// run id, and come back when they can go or plan locally when
	// fallback.deferred_max_age has passed.
	var deferRun func(ctx context.Context, runID string, deadline *time.Time, reason string) error
	if d.Gate != nil {
		d.deferred, err = fallback.NewDeferred(fallback.DeferredOptions{Store: d.Store, Link: d.Gate.Link(),
			Resubmit: func(ctx context.Context, runID string) error { return d.Engine.Resubmit(ctx, runID, "") },
			Expired: func(ctx context.Context, r db.DeferredRun) {
				if err := d.Engine.Resubmit(ctx, r.RunID, "local"); err != nil {
					d.log.Error("plan an expired deferred run locally", "run", r.RunID, "err", err)
				}
			},
			MaxAge: cfg.Fallback.DeferredMaxAge.D(), Logger: d.log,
			Publisher: d.Bus})
		if err != nil {
			return err
		}
		maxAge := cfg.Fallback.DeferredMaxAge.D()
		deferRun = func(ctx context.Context, runID string, deadline *time.Time, reason string) error {
			// The wait is bounded from the run's submission, not from
			// each deferral: a run deferred again keeps its deadline.
			var dl time.Time
			switch r, err := d.Store.GetRun(ctx, runID); {
			case deadline != nil:
				dl = *deadline
			case err == nil && maxAge > 0:
				dl = r.CreatedAt.Add(maxAge)
			}
			return d.deferred.Enqueue(ctx, runID, dl, reason)
		}
	}

	d.Engine = exec.New(exec.Config{Executor: cfg.Executor, MaxSteps: cfg.Planner.MaxSteps}, exec.Deps{
		Store: d.Store, Planner: planner, Chat: execChat{c: d.LLM, recorder: d.recorder}, Models: exec.ModelsFromConfig(cfg.Models),
		Tools: catalog, Limiter: d.Residency, Events: d.Bus, Log: d.log,
		Tracer: d.Telemetry.Tracer(), TraceContent: d.Telemetry.IncludeContent(),
		SupportsTools: func(ctx context.Context, model string) bool {
			ok, err := d.LLM.SupportsTools(ctx, model)
			return err != nil || ok // unknown: try native tools; a refusal switches the step over
		},
		IsNoToolSupport: isNoToolSupport, IsTransient: isTransient, IsBadOutput: isBadOutput,
		IsModelMissing: isModelMissing, Defer: deferRun, BytesPerToken: d.LLM.Tokens().BytesPerToken,
		OnEnded: d.learnFromRun,
	})

	d.Monitor.Sink = sampleSink{d.Store, d.Bus}
	d.group.add("residency", d.Residency)
	if ix := d.Tools.DocsIndexer(); ix != nil {
		d.group.add("docs-index", ix)
	}
	if d.Gate != nil {
		d.group.add("link", d.Gate.Link())
		d.group.add("deferred", d.deferred)
	}
	d.group.add("run-ends", ComponentFunc(d.watchRunEnds))
	d.group.add("executor", d.Engine)
	return nil
}

// watchRunEnds does what follows the end of a run: it drops the run's
// prefetched tool results and records what the run would have cost with the
// remote model doing every one of its calls, so savings are measured, not
// claimed. A dropped subscription resumes from the last event seen.
func (d *Daemon) watchRunEnds(ctx context.Context) error {
	price, priced := d.cfg.Fallback.Prices[d.cfg.Fallback.Model]
	isStatus := func(e events.Event) bool { return e.Type == events.RunStatus }
	last := d.Bus.LastSeq()
	for {
		backlog, sub, err := d.Bus.Subscribe(ctx, last, 1024, isStatus)
		if err != nil {
			return err
		}
		for _, e := range backlog {
			last = e.Seq
			d.runEnded(ctx, e.RunID, price, priced)
		}
		for open := true; open; {
			select {
			case <-ctx.Done():
				sub.Close()
				return nil
			case e, ok := <-sub.C:
				if open = ok; ok {
					last = e.Seq
					d.runEnded(ctx, e.RunID, price, priced)
				}
			}
		}
	}
}

func (d *Daemon) runEnded(ctx context.Context, runID string, price config.PriceConfig, priced bool) {
	if runID == "" {
		return
	}
	r, err := d.Store.GetRun(ctx, runID)
	if err != nil || !r.Status.Terminal() && r.Status != run.Review {
		return
	}
	if d.prefetch != nil {
		d.prefetch.forget(runID)
	}
	if !priced {
		return
	}
	calls, err := d.Store.RunModelCalls(ctx, runID)
	if err != nil {
		return
	}
	var usd float64
	for _, c := range calls {
		usd += price.Cost(c.PromptTokens, c.OutputTokens)
	}
	if err := d.Store.SetRemoteOnlyCost(ctx, runID, usd); err != nil {
		d.log.Warn("record remote-only cost", "run", runID, "err", err)
	}
}

// sampleSink stores monitor samples and announces each as gpu.sample (the
// dashboard's live GPU and host charts, the GPU gauges).
type sampleSink struct {
	s   *db.Store
	bus *events.Bus
}

func (k sampleSink) RecordSample(ctx context.Context, s vram.Sample) error {
	gpus := make([]db.GPUSample, 0, len(s.GPUs))
	for _, g := range s.GPUs {
		gpus = append(gpus, db.GPUSample{Index: g.Index, Source: g.Source, Name: g.Name,
			MemTotal: i64(g.MemoryTotalBytes), MemUsed: i64(g.MemoryUsedBytes),
			UtilPct: g.UtilizationPercent, TempC: g.TemperatureC, PowerW: g.PowerDrawW})
	}
	var host *db.HostSample
	if s.Host != nil {
		host = &db.HostSample{CPUPct: s.Host.CPUPercent, MemTotal: int64(s.Host.MemoryTotalBytes), MemUsed: int64(s.Host.MemoryUsedBytes)}
		if s.Host.Load != nil {
			l := s.Host.Load.Load1
			host.Load1 = &l
		}
		if t, ok := s.Host.Hottest(); ok {
			c := t.Celsius
			host.TempC = &c
		}
	}
	err := k.s.InsertSamples(ctx, s.Time, gpus, host)
	k.bus.Emit("", s.EventData())
	return err
}

func i64(p *uint64) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

// learnFromRun hands a finished run to the plan cache, which learns from a
// run that ended done and scores the template that planned one.
func (d *Daemon) learnFromRun(ctx context.Context, e exec.Ended) {
	if d.PlanCache == nil {
		return
	}
	d.PlanCache.Ended(ctx, plancache.Outcome{RunID: e.Run.ID, Request: e.Run.Request, Status: e.Run.Status, Error: e.Run.Error,
		Sensitive: e.Run.Sensitive, Workflow: e.Run.Workflow, Plan: e.Plan, PlanVersion: e.PlanVersion, PlanSource: e.PlanSource,
		Template: e.Run.Template, Answer: e.Run.Answer, ToolOutputs: e.ToolOutputs})
}
