package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// MetricsSource gives the values read at scrape time rather than from
// events. Either field may be nil.
type MetricsSource struct {
	// RunCounts counts runs by status (db.Store.CountRunsByStatus fits).
	RunCounts func(ctx context.Context) (map[run.Status]int, error)
	// Hardware is the latest GPU/host sample (vram.Monitor.Latest, as any):
	// a value with EventData() events.GPUSampleData (vram.Sample has it),
	// or one whose JSON is a gpu.sample event's data.
	Hardware func() (any, bool)
}

// Metrics is agentd's Prometheus registry, fed by the event bus (Run or
// Observe) and, at scrape, by its MetricsSource. It uses its own Registry,
// never the global one, so tests and a second server do not collide.
type Metrics struct {
	reg *prometheus.Registry
	src MetricsSource
	log *slog.Logger

	runs            *prometheus.GaugeVec
	runTransitions  *prometheus.CounterVec
	stepDuration    *prometheus.HistogramVec
	stepTransitions *prometheus.CounterVec
	modelCalls      *prometheus.CounterVec
	modelErrors     *prometheus.CounterVec
	modelTokens     *prometheus.CounterVec
	modelCost       *prometheus.CounterVec
	modelDuration   *prometheus.HistogramVec
	budgetCap       *prometheus.GaugeVec
	budgetSpent     *prometheus.GaugeVec
	budgetReserved  *prometheus.GaugeVec
	budgetAlert     *prometheus.GaugeVec
	vramUsed        *prometheus.GaugeVec
	vramTotal       *prometheus.GaugeVec
	gpuUtil         *prometheus.GaugeVec
	gpuTemp         *prometheus.GaugeVec
	hostCPU         prometheus.Gauge
	hostMem         prometheus.Gauge
	modelVRAM       *prometheus.GaugeVec
	linkState       *prometheus.GaugeVec
	linkRTT         prometheus.Gauge
	linkThroughput  prometheus.Gauge
	thresholds      *prometheus.CounterVec
	eventsSeen      *prometheus.CounterVec
	wsClients       prometheus.Gauge
	wsDropped       prometheus.Counter

	mu         sync.Mutex
	linkStates []string
}

// NewMetrics builds the registry with Go runtime and process collectors.
func NewMetrics(src MetricsSource, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, log: log.With("component", "metrics"),
		linkStates: []string{"online", "constrained", "offline", "disabled"}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "agentd", Name: name, Help: help}, labels)
		f(v)
		return v
	}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agentd", Name: name, Help: help}, labels)
		f(v)
		return v
	}
	g := func(name, help string) prometheus.Gauge {
		v := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "agentd", Name: name, Help: help})
		f(v)
		return v
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.runs = gv("runs", "Runs in the store by status (read at scrape).", "status")
	m.runTransitions = cv("run_status_changes_total", "Run status changes by new status.", "status")
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "agentd", Name: "step_duration_seconds",
		Help:    "Step latency from start to a terminal status, by kind and final status.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}, []string{"kind", "status"})
	f(m.stepDuration)
	m.stepTransitions = cv("step_status_changes_total", "Step status changes by new status.", "status")
	m.modelCalls = cv("model_calls_total", "Model calls by model and location (local|remote).", "model", "location")
	m.modelErrors = cv("model_call_errors_total", "Model calls that failed, by model and location.", "model", "location")
	m.modelTokens = cv("model_tokens_total", "Tokens by model, location and direction (prompt|output).", "model", "location", "direction")
	m.modelCost = cv("model_cost_usd_total", "Model call cost in USD by model and location.", "model", "location")
	m.modelDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "agentd", Name: "model_call_duration_seconds",
		Help: "Model call latency by model and location.", Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120}},
		[]string{"model", "location"})
	f(m.modelDuration)
	m.budgetCap = gv("budget_cap", "Hard cap by name, period and unit (usd|bytes); 0 means none.", "cap", "period", "unit")
	m.budgetSpent = gv("budget_spent", "Spend committed against each cap.", "cap", "period", "unit")
	m.budgetReserved = gv("budget_reserved", "Spend reserved (in flight) against each cap.", "cap", "period", "unit")
	m.budgetAlert = gv("budget_alert_level", "Highest alert level crossed for each cap: 0, 50, 80 or 100 (percent).", "cap", "period", "unit")
	m.vramUsed = gv("gpu_vram_used_bytes", "GPU memory used.", "gpu", "name")
	m.vramTotal = gv("gpu_vram_total_bytes", "GPU memory total.", "gpu", "name")
	m.gpuUtil = gv("gpu_utilization_percent", "GPU utilization.", "gpu", "name")
	m.gpuTemp = gv("gpu_temperature_celsius", "GPU temperature.", "gpu", "name")
	m.hostCPU = g("host_cpu_percent", "Host CPU busy, all cores, 0-100.")
	m.hostMem = g("host_memory_used_percent", "Host memory used (not available), 0-100.")
	m.modelVRAM = gv("model_vram_bytes", "VRAM held by each model resident in Ollama.", "model")
	m.linkState = gv("link_state", "1 for the remote link's current state (online|constrained|offline|disabled), 0 for the others.", "state")
	m.linkRTT = g("link_rtt_seconds", "Measured round-trip time to the remote.")
	m.linkThroughput = g("link_throughput_bytes_per_second", "Measured throughput to the remote.")
	m.thresholds = cv("threshold_events_total", "Threshold crossings by metric and level (high|normal).", "metric", "level")
	m.eventsSeen = cv("events_total", "Events seen on the bus by type.", "type")
	m.wsClients = g("websocket_clients", "Connected event stream clients.")
	m.wsDropped = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "agentd", Name: "websocket_slow_drops_total",
		Help: "Event stream clients dropped for being too slow (they get a resume hint)."})
	f(m.wsDropped)
	return m
}

// Registry is the dedicated registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' text format, reading the
// scrape-time values first. RegisterRoutes puts it behind the token:
// scrapers send `authorization: {credentials_file: ...}` (Prometheus
// scrape_config) with agentd's token.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.refresh(r.Context())
		h.ServeHTTP(w, r)
	})
}

func (m *Metrics) refresh(ctx context.Context) {
	if m.src.RunCounts != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		counts, err := m.src.RunCounts(ctx)
		cancel()
		if err != nil {
			m.log.Warn("count runs for metrics", "err", err)
		} else {
			m.runs.Reset()
			for st := range runStatuses {
				m.runs.WithLabelValues(string(st)).Set(float64(counts[st]))
			}
		}
	}
	if m.src.Hardware != nil {
		if s, ok := m.src.Hardware(); ok {
			if h, ok := s.(interface{ EventData() events.GPUSampleData }); ok {
				m.observeGPU(h.EventData())
			} else if b, err := json.Marshal(s); err == nil {
				var d events.GPUSampleData
				if json.Unmarshal(b, &d) == nil {
					m.observeGPU(d)
				}
			}
		}
	}
}

// Run feeds the metrics from the bus until ctx ends. When the bus drops it
// for being slow it resubscribes after the last event seen, so nothing is
// counted twice and little is missed.
func (m *Metrics) Run(ctx context.Context, bus EventSource) error {
	return m.RunSince(ctx, bus, bus.LastSeq())
}

// RunSince is Run counting every event after since, so a caller that must
// not lose events published before the subscription (a test, a restart
// that knows where it was) says where to start.
func (m *Metrics) RunSince(ctx context.Context, bus EventSource, since int64) error {
	for {
		backlog, sub, err := bus.Subscribe(ctx, since, 4096, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range backlog {
			m.Observe(e)
			since = e.Seq
		}
		for alive := true; alive; {
			select {
			case <-ctx.Done():
				sub.Close()
				return nil
			case e, ok := <-sub.C:
				if !ok {
					if !errors.Is(sub.Err(), events.ErrSlow) {
						return sub.Err()
					}
					m.log.Warn("metrics fell behind the event bus; resubscribing", "since", since)
					alive = false
					continue
				}
				m.Observe(e)
				since = e.Seq
			}
		}
	}
}

// Observe updates the metrics from one event. Payloads are read with the
// types their producers publish (package events); one that does not decode
// is counted by type and otherwise ignored.
func (m *Metrics) Observe(e events.Event) {
	m.eventsSeen.WithLabelValues(e.Type).Inc()
	switch e.Type {
	case events.RunStatus:
		if d, ok := events.Decode[events.RunStatusData](e); ok && d.Status != "" {
			m.runTransitions.WithLabelValues(d.Status).Inc()
		}
	case events.StepStatus:
		if d, ok := events.Decode[events.StepStatusData](e); ok && d.Status != "" {
			m.observeStep(d)
		}
	case events.ModelCall:
		if d, ok := events.Decode[events.ModelCallData](e); ok && d.Model != "" {
			m.observeModelCall(d)
		}
	case events.BudgetChanged:
		d, ok := events.Decode[events.BudgetChangedData](e)
		if !ok {
			return
		}
		for _, c := range d.Caps {
			l := []string{c.Name, c.Period, c.Unit}
			m.budgetCap.WithLabelValues(l...).Set(c.Cap)
			m.budgetSpent.WithLabelValues(l...).Set(c.Spent)
			m.budgetReserved.WithLabelValues(l...).Set(c.Reserved)
			m.budgetAlert.WithLabelValues(l...).Set(float64(c.Alert))
		}
	case events.BudgetAlert:
		if d, ok := events.Decode[events.BudgetAlertData](e); ok && d.Cap != "" {
			name, period, unit, level := alertLabels(d)
			m.budgetAlert.WithLabelValues(name, period, unit).Set(level)
		}
	case events.GPUSample:
		if d, ok := events.Decode[events.GPUSampleData](e); ok {
			m.observeGPU(d)
		}
	case events.LinkState:
		if d, ok := events.Decode[events.LinkStateData](e); ok {
			m.observeLink(d)
		}
	case events.ModelResidency:
		d, ok := events.Decode[events.ModelResidencyData](e)
		if !ok {
			return
		}
		m.modelVRAM.Reset()
		for _, lm := range d.Models {
			m.modelVRAM.WithLabelValues(lm.Name).Set(float64(lm.VRAMBytes))
		}
	default:
		d, ok := events.Decode[events.ThresholdData](e)
		if !ok || d.Metric == "" {
			return
		}
		level := d.Level
		if i := strings.LastIndexByte(e.Type, '.'); level == "" && i >= 0 {
			level = e.Type[i+1:]
		}
		m.thresholds.WithLabelValues(d.Metric, orDefault(level, "unknown")).Inc()
	}
}

func (m *Metrics) observeModelCall(d events.ModelCallData) {
	loc := orDefault(d.Location, orDefault(d.Where, "local"))
	m.modelCalls.WithLabelValues(d.Model, loc).Inc()
	if d.Error != "" {
		m.modelErrors.WithLabelValues(d.Model, loc).Inc()
	}
	m.modelTokens.WithLabelValues(d.Model, loc, "prompt").Add(float64(max(d.PromptTokens, 0)))
	m.modelTokens.WithLabelValues(d.Model, loc, "output").Add(float64(max(d.OutputTokens, 0)))
	if d.CostUSD > 0 {
		m.modelCost.WithLabelValues(d.Model, loc).Add(d.CostUSD)
	}
	if d.TotalMS > 0 {
		m.modelDuration.WithLabelValues(d.Model, loc).Observe(float64(d.TotalMS) / 1000)
	}
}

// alertLabels names a budget alert's cap as the budget gauges do: the cap
// (run_usd, day_bytes...), its period (run, day, month; never a run id)
// and unit, and the level crossed in percent.
func alertLabels(d events.BudgetAlertData) (name, period, unit string, level float64) {
	period, unit = d.Period, "usd"
	if strings.Contains(d.Cap, "bytes") {
		unit = "bytes"
	}
	for _, p := range []string{"run", "day", "month"} {
		if strings.Contains(d.Cap, p) {
			period = p
		}
	}
	level = d.Threshold
	if level <= 1 {
		level = math.Round(level * 100)
	}
	return d.Cap, period, unit, level
}

func (m *Metrics) observeLink(d events.LinkStateData) {
	state := orDefault(d.State, d.To)
	if state == "" {
		return
	}
	m.mu.Lock()
	if !slices.Contains(m.linkStates, state) {
		m.linkStates = append(m.linkStates, state)
	}
	for _, s := range m.linkStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.linkState.WithLabelValues(s).Set(v)
	}
	m.mu.Unlock()
	if d.RTTMS > 0 {
		m.linkRTT.Set(d.RTTMS / 1000)
	}
	if d.ThroughputBPS > 0 {
		m.linkThroughput.Set(d.ThroughputBPS)
	}
}

// observeStep counts a step's transition and, when it has ended, observes
// its latency from the executor's own timings.
func (m *Metrics) observeStep(d events.StepStatusData) {
	m.stepTransitions.WithLabelValues(d.Status).Inc()
	switch run.StepStatus(d.Status) {
	case run.StepDone, run.StepFailed, run.StepSkipped, run.StepCanceled:
	default:
		return
	}
	var secs float64
	switch {
	case d.DurationMS != nil:
		secs = *d.DurationMS / 1000
	case d.StartedAt != nil && d.FinishedAt != nil:
		secs = d.FinishedAt.Sub(*d.StartedAt).Seconds()
	default:
		return // never started (skipped before it ran)
	}
	if secs >= 0 {
		m.stepDuration.WithLabelValues(orDefault(d.Kind, "unknown"), d.Status).Observe(secs)
	}
}

func (m *Metrics) observeGPU(d events.GPUSampleData) {
	for _, g := range d.GPUs {
		id := g.UUID
		if id == "" {
			id = strconv.Itoa(g.Index)
		}
		if g.MemoryUsedBytes != nil {
			m.vramUsed.WithLabelValues(id, g.Name).Set(float64(*g.MemoryUsedBytes))
		}
		if g.MemoryTotalBytes != nil {
			m.vramTotal.WithLabelValues(id, g.Name).Set(float64(*g.MemoryTotalBytes))
		}
		if g.UtilizationPercent != nil {
			m.gpuUtil.WithLabelValues(id, g.Name).Set(*g.UtilizationPercent)
		}
		if g.TemperatureC != nil {
			m.gpuTemp.WithLabelValues(id, g.Name).Set(*g.TemperatureC)
		}
	}
	if d.Host != nil {
		if d.Host.CPUPercent != nil {
			m.hostCPU.Set(*d.Host.CPUPercent)
		}
		m.hostMem.Set(d.Host.MemoryUsedPercent)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
