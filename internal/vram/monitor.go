package vram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/events"
)

// Sample is one observation of the machine: every GPU the probe saw and the
// host's metrics, taken at Time. A failed probe leaves its part empty and
// says why in GPUError or HostError; a partial GPU probe has both GPUs and
// GPUError.
type Sample struct {
	Time time.Time `json:"time"`
	// GPUSource is the source the GPUs came from ("nvidia", "amd", "none");
	// empty while an auto probe has not found one.
	GPUSource string      `json:"gpu_source,omitempty"`
	GPUs      []GPU       `json:"gpus"`
	GPUError  string      `json:"gpu_error,omitempty"`
	Host      *HostSample `json:"host,omitempty"`
	HostError string      `json:"host_error,omitempty"`
}

// LogValue logs the time, each GPU and the host as nested groups.
func (s Sample) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Time("time", s.Time), slog.Int("gpus", len(s.GPUs))}
	if s.GPUSource != "" {
		attrs = append(attrs, slog.String("gpu_source", s.GPUSource))
	}
	for _, g := range s.GPUs {
		attrs = append(attrs, slog.Any("gpu"+strconv.Itoa(g.Index), g))
	}
	if s.GPUError != "" {
		attrs = append(attrs, slog.String("gpu_error", s.GPUError))
	}
	if s.Host != nil {
		attrs = append(attrs, slog.Any("host", *s.Host))
	}
	if s.HostError != "" {
		attrs = append(attrs, slog.String("host_error", s.HostError))
	}
	return slog.GroupValue(attrs...)
}

// EventData is the sample as gpu.sample's data, the one shape the event
// stream, the metrics and the status page share. GPUs convert field for
// field (events.GPUData declares vram.GPU's fields in order), so the two
// cannot drift apart.
func (s Sample) EventData() events.GPUSampleData {
	d := events.GPUSampleData{Time: s.Time, GPUSource: s.GPUSource, GPUs: make([]events.GPUData, len(s.GPUs)),
		GPUError: s.GPUError, HostError: s.HostError}
	for i, g := range s.GPUs {
		d.GPUs[i] = events.GPUData(g)
	}
	if h := s.Host; h != nil {
		// Same fields, in order: a field added to one fails to compile
		// until it is added to the other.
		hd := events.HostData(*h)
		if h.Load != nil {
			l := *h.Load
			hd.Load = &l
		}
		hd.Temperatures = slices.Clone(h.Temperatures)
		d.Host = &hd
	}
	return d
}

// SampleSink receives every sample the Monitor takes, in time order, from a
// single goroutine (never concurrently), once per interval. The same Sample
// is served by Monitor.Latest, so the sink must treat it, and its slices, as
// read-only (the Monitor never modifies a sample once taken). An error is logged (once per distinct error) and does not stop
// sampling; a sink should not block for long, as the next sample waits for it.
// The SQLite store implements this to keep a history of GPU and host use.
type SampleSink interface {
	RecordSample(ctx context.Context, s Sample) error
}

// Publisher receives the package's events as typed payloads (threshold
// crossings, spills, residency), the event's type being the payload's.
// Publish must not block.
type Publisher interface {
	Publish(p events.Payload)
}

// Threshold event types. A "high" event is published when a value rises to
// or above its Threshold.High, and the matching "normal" event only when it
// later falls to or below Threshold.Low, so a value hovering near one mark
// does not produce a stream of events.
const (
	EventVRAMHigh          = events.VRAMHigh
	EventVRAMNormal        = events.VRAMNormal
	EventGPUTempHigh       = events.GPUTempHigh
	EventGPUTempNormal     = events.GPUTempNormal
	EventHostMemoryHigh    = events.HostMemoryHigh
	EventHostMemoryNormal  = events.HostMemoryNormal
	thresholdSubjectHost   = "host"
	defaultMonitorInterval = 10 * time.Second
)

// ThresholdEvent is the data of a threshold event: the event payload
// itself, declared once in events. Type is the event type, Level high or
// normal.
type ThresholdEvent = events.ThresholdData

// Threshold is a pair of marks with hysteresis: High raises the alarm, Low
// (below High) clears it. A zero High disables the threshold.
type Threshold struct {
	High float64 `json:"high"`
	Low  float64 `json:"low"`
}

// Thresholds are the levels the Monitor publishes events for.
type Thresholds struct {
	VRAMUsedPercent       Threshold `json:"vram_used_percent"`
	GPUTemperatureC       Threshold `json:"gpu_temperature_c"`
	HostMemoryUsedPercent Threshold `json:"host_memory_used_percent"`
}

// DefaultThresholds are conservative marks: Ollama starts spilling to CPU
// near full VRAM, consumer GPUs throttle in the high 80s C, and a host low on
// memory cannot load a model without swapping.
func DefaultThresholds() Thresholds {
	return Thresholds{
		VRAMUsedPercent:       Threshold{High: 95, Low: 85},
		GPUTemperatureC:       Threshold{High: 85, Low: 75},
		HostMemoryUsedPercent: Threshold{High: 90, Low: 80},
	}
}

// ErrInvalidThreshold is wrapped by Thresholds.Validate errors.
var ErrInvalidThreshold = errors.New("invalid threshold")

// Validate checks that every enabled threshold has 0 <= Low < High, and
// that percentages stay within 100.
func (t Thresholds) Validate() error {
	checks := []struct {
		name    string
		th      Threshold
		percent bool
	}{
		{"vram_used_percent", t.VRAMUsedPercent, true},
		{"gpu_temperature_c", t.GPUTemperatureC, false},
		{"host_memory_used_percent", t.HostMemoryUsedPercent, true},
	}
	var errs []error
	for _, c := range checks {
		switch {
		case c.th.High == 0 && c.th.Low == 0:
			// disabled
		case c.th.High <= 0:
			errs = append(errs, fmt.Errorf("%w: %s.high = %v: must be above 0 (or both high and low 0 to disable)", ErrInvalidThreshold, c.name, c.th.High))
		case c.percent && c.th.High > 100:
			errs = append(errs, fmt.Errorf("%w: %s.high = %v: a percentage must be at most 100", ErrInvalidThreshold, c.name, c.th.High))
		case c.th.Low < 0 || c.th.Low >= c.th.High:
			errs = append(errs, fmt.Errorf("%w: %s.low = %v: must be at least 0 and below high (%v)", ErrInvalidThreshold, c.name, c.th.Low, c.th.High))
		}
	}
	return errors.Join(errs...)
}

// Monitor samples GPUs and host on an interval, keeps the latest sample,
// hands each to a sink and publishes threshold events. Set the fields, or
// use NewMonitor, before Run; do not change them while it runs.
type Monitor struct {
	GPU        Prober     // required; None{} for CPU-only machines
	Host       HostProber // nil: no host metrics
	Sink       SampleSink // nil: samples are kept in memory only
	Publisher  Publisher  // nil: no events
	Thresholds Thresholds
	// Interval between samples; zero means 10s.
	Interval time.Duration
	// Now stamps samples; nil means time.Now.
	Now func() time.Time
	// Tick starts the interval timer; nil means a time.Ticker. Tests pass a
	// channel they control.
	Tick func(d time.Duration) (ticks <-chan time.Time, stop func())
	// Logger is the parent logger; the Monitor adds component=vram.
	Logger *slog.Logger

	collectMu sync.Mutex // one sample at a time, and guards the fields below
	above     map[string]bool
	lastErr   errorChanges
	source    string

	latestMu sync.RWMutex
	latest   Sample
	have     bool
}

// NewMonitor returns a Monitor with the default interval and thresholds.
func NewMonitor(gpu Prober, host HostProber, log *slog.Logger) *Monitor {
	return &Monitor{GPU: gpu, Host: host, Thresholds: DefaultThresholds(), Interval: defaultMonitorInterval, Logger: log}
}

func (m *Monitor) log() *slog.Logger {
	l := m.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("component", "vram")
}

// startTicker is the real Tick of Monitor and Manager.
func startTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Run samples at once and then every Interval until ctx is cancelled, which
// is a clean stop (nil). It returns an error only for a Monitor that cannot
// start: no GPU prober or invalid thresholds.
func (m *Monitor) Run(ctx context.Context) error {
	if m.GPU == nil {
		return errors.New("vram monitor: no GPU prober (use vram.None{} for a CPU-only machine)")
	}
	if err := m.Thresholds.Validate(); err != nil {
		return fmt.Errorf("vram monitor thresholds: %w", err)
	}
	interval := m.Interval
	if interval <= 0 {
		interval = defaultMonitorInterval
	}
	tick := m.Tick
	if tick == nil {
		tick = startTicker
	}
	ticks, stop := tick(interval)
	defer stop()

	log := m.log()
	log.Info("monitor started", "interval", interval)
	for {
		if _, err := m.Collect(ctx); err != nil {
			return nil // only a cancelled context fails Collect
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}

// Latest is the most recent sample, and false before the first one.
func (m *Monitor) Latest() (Sample, bool) {
	m.latestMu.RLock()
	defer m.latestMu.RUnlock()
	return m.latest, m.have
}

// Collect takes one sample now: it probes, stores the sample as Latest,
// records it in the sink and publishes threshold events. Run calls it on
// every tick; `agentd doctor` can call it directly. It fails only when ctx
// is cancelled, and then records nothing.
func (m *Monitor) Collect(ctx context.Context) (Sample, error) {
	m.collectMu.Lock()
	defer m.collectMu.Unlock()
	if m.above == nil {
		m.above = map[string]bool{}
		m.lastErr = errorChanges{}
	}
	log := m.log()
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}

	s := Sample{Time: now()}
	gpus, gpuErr := m.GPU.Probe(ctx)
	s.GPUs = gpus
	if s.GPUs == nil {
		s.GPUs = []GPU{}
	}
	if gpuErr != nil {
		s.GPUError = gpuErr.Error()
	}
	var hostErr error
	if m.Host != nil {
		h, err := m.Host.Probe(ctx)
		if err != nil {
			hostErr = err
			s.HostError = err.Error()
		} else {
			s.Host = &h
		}
	}
	if err := ctx.Err(); err != nil {
		return Sample{}, err // a probe cut short by shutdown is not a reading
	}
	s.GPUSource = m.sourceOf(s.GPUs)
	if s.GPUSource != m.source {
		log.Info("gpu source", "source", s.GPUSource, "gpus", len(s.GPUs))
		m.source = s.GPUSource
	}
	m.lastErr.report(log, "gpu probe", gpuErr)
	m.lastErr.report(log, "host probe", hostErr)

	m.latestMu.Lock()
	m.latest, m.have = s, true
	m.latestMu.Unlock()

	m.checkThresholds(s)
	if m.Sink != nil {
		m.lastErr.report(log, "record sample", m.Sink.RecordSample(ctx, s))
	}
	log.Debug("sample", "sample", s)
	return s, nil
}

// sourceOf prefers the prober's own answer (Auto knows what it chose), then
// the GPUs' source.
func (m *Monitor) sourceOf(gpus []GPU) string {
	if sp, ok := m.GPU.(interface{ Source() string }); ok {
		return sp.Source()
	}
	switch m.GPU.(type) {
	case None, *None:
		return SourceNone
	}
	if len(gpus) > 0 {
		return gpus[0].Source
	}
	return ""
}

// errorChanges remembers the last error of each operation, so a failure is
// logged when it first appears or changes and its recovery once, and a
// broken probe does not log every tick.
type errorChanges map[string]string

// report logs err of operation what if it differs from the last one. attrs
// (key-value pairs, such as the endpoint) go on the log line and also tell
// the same operation on different subjects apart.
func (c errorChanges) report(log *slog.Logger, what string, err error, attrs ...any) {
	key := what
	for _, a := range attrs {
		key += "\x00" + fmt.Sprint(a)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	prev := c[key]
	if msg == prev {
		return
	}
	c[key] = msg
	if msg != "" {
		log.Warn(what+" failed", append(attrs, "err", msg)...)
	} else {
		log.Info(what+" recovered", append(attrs, "previous_err", prev)...)
	}
}

func (m *Monitor) checkThresholds(s Sample) {
	t := m.Thresholds
	for _, g := range s.GPUs {
		if pct, ok := g.VRAMUsedPercent(); ok {
			m.crossing(s.Time, "vram_used_percent", g.ID(), g.Name, pct, t.VRAMUsedPercent, EventVRAMHigh, EventVRAMNormal)
		}
		if g.TemperatureC != nil {
			m.crossing(s.Time, "gpu_temperature_c", g.ID(), g.Name, *g.TemperatureC, t.GPUTemperatureC, EventGPUTempHigh, EventGPUTempNormal)
		}
	}
	if s.Host != nil && s.Host.MemoryTotalBytes > 0 {
		m.crossing(s.Time, "host_memory_used_percent", thresholdSubjectHost, "", s.Host.MemoryUsedPercent, t.HostMemoryUsedPercent, EventHostMemoryHigh, EventHostMemoryNormal)
	}
}

// crossing applies hysteresis to one metric of one subject. An unknown
// value never reaches here, so a missing reading keeps the current state.
func (m *Monitor) crossing(at time.Time, metric, subject, name string, v float64, th Threshold, highType, normalType string) {
	if th.High == 0 {
		return
	}
	key := metric + "|" + subject
	typ := ""
	switch above := m.above[key]; {
	case !above && v >= th.High:
		m.above[key] = true
		typ = highType
	case above && v <= th.Low:
		m.above[key] = false
		typ = normalType
	default:
		return
	}
	ev := ThresholdEvent{Type: typ, Time: at, Metric: metric, Subject: subject, GPUName: name, Value: v,
		High: th.High, Low: th.Low, Level: "high"}
	lvl := slog.LevelWarn
	if typ == normalType {
		lvl, ev.Level = slog.LevelInfo, "normal"
	}
	m.log().Log(context.Background(), lvl, "threshold "+typ, "metric", metric, "subject", subject, "value", v)
	if m.Publisher != nil {
		m.Publisher.Publish(ev)
	}
}
