package vram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/llm"
	"github.com/ollama/ollama/api"
)

// SizeStore keeps the sizes Ollama reported for loaded models, so a restart
// starts from real sizes instead of download sizes. The SQLite store
// implements it. Sizes are bytes; ModelSizes is keyed by model name.
type SizeStore interface {
	SaveModelSize(ctx context.Context, model, endpoint string, size, sizeVRAM int64) error
	ModelSizes(ctx context.Context) (map[string]int64, error)
}

// Loader loads a model without generating (Ollama's empty-prompt
// /api/generate) and sets how long it stays loaded.
type Loader interface {
	Load(ctx context.Context, model string, keepAlive time.Duration) error
}

// ModelLister lists the models pulled on a server; it matches
// (*api.Client).List, which reads GET /api/tags.
type ModelLister interface {
	List(ctx context.Context) (*api.ListResponse, error)
}

// SampleSource serves the latest GPU sample; *Monitor implements it.
type SampleSource interface {
	Latest() (Sample, bool)
}

var (
	_ ModelLister  = (*api.Client)(nil)
	_ SampleSource = (*Monitor)(nil)
	_ Loader       = APILoader{}
)

// RunningListerFunc adapts a function (such as one calling llm.Client.PS
// for a named endpoint) to RunningLister.
type RunningListerFunc func(ctx context.Context) (*api.ProcessResponse, error)

// ListRunning calls f.
func (f RunningListerFunc) ListRunning(ctx context.Context) (*api.ProcessResponse, error) {
	return f(ctx)
}

// ModelListerFunc adapts a function (such as one calling llm.Client.List
// for a named endpoint) to ModelLister.
type ModelListerFunc func(ctx context.Context) (*api.ListResponse, error)

// List calls f.
func (f ModelListerFunc) List(ctx context.Context) (*api.ListResponse, error) { return f(ctx) }

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(ctx context.Context, model string, keepAlive time.Duration) error

// Load calls f.
func (f LoaderFunc) Load(ctx context.Context, model string, keepAlive time.Duration) error {
	return f(ctx, model, keepAlive)
}

// APILoader loads models through the official client with an empty-prompt
// generate, which Ollama answers with done_reason "load".
type APILoader struct{ Client *api.Client }

// Load asks Ollama to load model and keep it for keepAlive.
func (l APILoader) Load(ctx context.Context, model string, keepAlive time.Duration) error {
	stream := false
	req := &api.GenerateRequest{Model: model, KeepAlive: &api.Duration{Duration: keepAlive}, Stream: &stream}
	if err := l.Client.Generate(ctx, req, func(api.GenerateResponse) error { return nil }); err != nil {
		return fmt.Errorf("load %s: %w", model, err)
	}
	return nil
}

// EventModelSpill is published (data: SpillEvent) when a loaded model's
// CPU share appears or changes; EventModelSpillCleared when it is gone.
const (
	EventModelSpill        = events.ModelSpill
	EventModelSpillCleared = events.ModelSpillCleared
)

// SpillEvent is the data of a spill event: the event payload itself,
// declared once in events (its Residency converts from this package's).
type SpillEvent = events.ModelSpillData

// Endpoint is one Ollama server the Manager watches. Only Name and Running
// are required.
type Endpoint struct {
	Name string
	// ParallelSlots is the server's OLLAMA_NUM_PARALLEL; 0 means 1.
	ParallelSlots int
	Running       RunningLister // /api/ps
	Tags          ModelLister   // /api/tags; nil: no missing-model check or download sizes
	Loader        Loader        // prewarm; nil: never prewarmed here
}

// ManagerConfig wires a Manager. Models, Uses and VRAM come from the config
// file; the rest are the daemon's components and test seams.
type ManagerConfig struct {
	Models config.ModelsConfig
	// Uses are the models configured features call
	// (config.Config.ModelUses): the ones residency plans VRAM for.
	Uses      []config.ModelUse
	VRAM      config.VRAMConfig
	Endpoints []Endpoint
	// External maps the models served by OpenAI-compatible endpoints to
	// their endpoint's name. Their memory is not agentd's to see or plan:
	// they take no part in the fit, are admitted by their concurrency
	// limit alone, and are reported as external.
	External map[string]string
	// Samples gives the GPU's total and free VRAM; nil without a monitor.
	Samples SampleSource
	// CapacityBytes overrides the GPUs' total VRAM (a benchmark, a GPU the
	// probes cannot read); 0 means the monitor's total.
	CapacityBytes uint64
	Store         SizeStore // nil: sizes are not persisted
	Publisher     Publisher // nil: no events
	Logger        *slog.Logger
	// Now is the clock for queue waits and fairness; nil means time.Now.
	Now func() time.Time
	// Tick starts the poll timer; nil means a time.Ticker.
	Tick func(d time.Duration) (ticks <-chan time.Time, stop func())
	// PollInterval between /api/ps reads; 0 means vram.sample_interval, or 5s.
	PollInterval time.Duration
	// SwapKeepAlive is the keep_alive, in swap mode, of the models that must
	// make way for others; 0 means 1m.
	SwapKeepAlive time.Duration
	// MaxBatch is how many calls one model may start in a row, in swap
	// mode, while a model that cannot run beside it waits; 0 means 32.
	MaxBatch int
	// MaxWait is how long a call may wait, in swap mode, before the model
	// being served gives way to its model; 0 means 2m.
	MaxWait time.Duration
}

// Manager decides which models stay resident and admits model calls so
// they fit the GPU: all together when they fit (co-resident mode), grouped
// by model when they do not (swap mode), never beyond a model's
// max_concurrent or the server's parallel slots. It implements the
// executor's model limiter and the llm client's keep_alive policy.
type Manager struct {
	cfg   ManagerConfig
	log   *slog.Logger
	roles []RoleModel
	now   func() time.Time
	// outside are the configured models served externally; outsideAt maps
	// their llm.ModelKey to the endpoint serving them.
	outside   []RoleModel
	outsideAt map[string]string

	refreshMu sync.Mutex          // one Refresh at a time; guards the fields below
	spill     map[string]string   // endpoint|model -> warning last reported
	saved     map[string][2]int64 // endpoint|model -> size, size_vram last saved
	epErr     errorChanges        // per endpoint and op
	// lastResidency is what model.residency last announced.
	lastResidency string
	announced     bool

	mu          sync.Mutex
	stored      map[string]uint64 // by llm.ModelKey, from the SizeStore
	tagged      map[string]uint64 // by llm.ModelKey, from /api/tags
	pulled      map[string][]string
	tagsKnown   bool
	learned     map[string]learnedSize // by llm.ModelKey, from /api/ps this run
	sizes       map[string]uint64      // best known, by llm.ModelKey; see sizesLocked
	resident    map[string]residentAt  // by llm.ModelKey
	free        uint64
	freeKnown   bool
	external    uint64
	capacity    uint64
	capSource   string
	pol         policy
	pollErrs    []string
	refreshedAt time.Time

	queue     map[string][]*waiter // by llm.ModelKey, oldest first
	inFlight  map[string]int
	current   string    // swap mode: the model the GPU is serving
	since     time.Time // when current took the GPU
	batch     int       // calls started for current since it became current
	yieldFrom string    // the model that last gave way for fairness
	served    map[string]int64
	switches  int64
}

type learnedSize struct {
	size, vram uint64
	endpoint   string
}

type residentAt struct {
	r        Residency
	endpoint string
}

type waiter struct {
	since   time.Time
	ready   chan struct{}
	granted bool
}

var _ interface {
	Acquire(ctx context.Context, model string) (release func(), err error)
	KeepAliveFor(model string) time.Duration
} = (*Manager)(nil)

// NewManager returns a Manager for the configured models. Until the first
// Refresh it knows no sizes, so with a known capacity it starts in swap
// mode, which never overcommits VRAM.
func NewManager(cfg ManagerConfig) *Manager {
	l := cfg.Logger
	if l == nil {
		l = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	m := &Manager{
		cfg:      cfg,
		log:      l.With("component", "vram.residency"),
		now:      now,
		spill:    map[string]string{},
		saved:    map[string][2]int64{},
		epErr:    errorChanges{},
		stored:   map[string]uint64{},
		tagged:   map[string]uint64{},
		pulled:   map[string][]string{},
		learned:  map[string]learnedSize{},
		resident: map[string]residentAt{},
		queue:    map[string][]*waiter{},
		inFlight: map[string]int{},
		served:   map[string]int64{},
	}
	m.outsideAt = map[string]string{}
	for name, ep := range cfg.External {
		m.outsideAt[llm.ModelKey(name)] = ep
	}
	for _, rm := range RoleModels(cfg.Uses) {
		if _, ok := m.outsideAt[llm.ModelKey(rm.Name)]; ok {
			m.outside = append(m.outside, rm)
		} else {
			m.roles = append(m.roles, rm)
		}
	}
	m.mu.Lock()
	m.recomputeLocked()
	m.mu.Unlock()
	return m
}

// externalKey reports whether the model key is served by an
// OpenAI-compatible endpoint.
func (m *Manager) externalKey(k string) bool {
	_, ok := m.outsideAt[k]
	return ok
}

// Run loads stored sizes, reads the servers, prewarms the models when they
// all fit (and vram.prewarm is on), then re-reads every PollInterval until
// ctx is cancelled, which is a clean stop (nil).
func (m *Manager) Run(ctx context.Context) error {
	if err := m.LoadStoredSizes(ctx); err != nil {
		m.log.Warn("load stored model sizes", "err", err)
	}
	m.Refresh(ctx)
	if m.cfg.VRAM.Prewarm {
		m.Prewarm(ctx)
	}
	interval := m.cfg.PollInterval
	if interval <= 0 {
		interval = m.cfg.VRAM.SampleInterval.D()
	}
	if interval <= 0 {
		interval = defaultPollInterval
	}
	tick := m.cfg.Tick
	if tick == nil {
		tick = startTicker
	}
	ticks, stop := tick(interval)
	defer stop()
	m.log.Info("residency manager started", "mode", m.Mode(), "poll_interval", interval)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			m.Refresh(ctx)
		}
	}
}

// LoadStoredSizes reads the sizes learned in earlier runs.
func (m *Manager) LoadStoredSizes(ctx context.Context) error {
	if m.cfg.Store == nil {
		return nil
	}
	sizes, err := m.cfg.Store.ModelSizes(ctx)
	if err != nil {
		return fmt.Errorf("read model sizes: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, b := range sizes {
		if b > 0 {
			m.stored[llm.ModelKey(name)] = uint64(b)
		}
	}
	m.recomputeLocked()
	m.dispatchLocked()
	return nil
}

// Refresh reads /api/ps and /api/tags from every endpoint and the latest
// GPU sample, learns sizes, reports spills, re-decides the mode and admits
// any waiting call the new state allows. Failures are logged once per
// change and shown in Snapshot. An endpoint that answers /api/ps with an
// error keeps its last reading; one that does not answer at all holds no
// model any more (see forgetEndpointLocked). Pulled lists and learned
// sizes are kept either way. `agentd doctor` may call it directly.
func (m *Manager) Refresh(ctx context.Context) {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()

	type psResult struct {
		ep  string
		res []Residency
		err error
	}
	var errs []string
	var reads []psResult
	tagged := map[string]uint64{}
	pulled := map[string][]string{}
	tagsKnown := false
	for _, ep := range m.cfg.Endpoints {
		if ctx.Err() != nil {
			return // shutting down: a failed read is not news
		}
		if ep.Running != nil {
			res, err := ReadResidency(ctx, ep.Running)
			m.logOnChange(ep.Name, "ps", err)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", ep.Name, err))
			}
			reads = append(reads, psResult{ep: ep.Name, res: res, err: err})
			if err == nil {
				m.learn(ctx, ep.Name, res)
			}
		}
		if ep.Tags != nil && ctx.Err() == nil {
			list, err := ep.Tags.List(ctx)
			m.logOnChange(ep.Name, "tags", err)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: list pulled models (/api/tags): %v", ep.Name, err))
				continue
			}
			tagsKnown = true
			for _, lm := range list.Models {
				name := lm.Name
				if name == "" {
					name = lm.Model
				}
				k := llm.ModelKey(name)
				pulled[k] = append(pulled[k], ep.Name)
				if lm.Size > 0 {
					tagged[k] = max(tagged[k], uint64(lm.Size))
				}
			}
		}
	}
	if ctx.Err() != nil {
		return // shutdown cut the reads short; keep the last state
	}

	for _, rd := range reads {
		if rd.err != nil && !answered(rd.err) {
			m.forgetSpills(rd.ep)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rd := range reads {
		if rd.err != nil && answered(rd.err) {
			continue // the server is up: its last reading stands
		}
		m.forgetEndpointLocked(rd.ep)
		for _, r := range rd.res {
			k := llm.ModelKey(r.Name)
			m.resident[k] = residentAt{r: r, endpoint: rd.ep}
			if r.SizeBytes > 0 {
				m.learned[k] = learnedSize{size: r.SizeBytes, vram: r.VRAMBytes, endpoint: rd.ep}
			}
		}
	}
	if tagsKnown {
		m.tagged, m.pulled, m.tagsKnown = tagged, pulled, true
	}
	m.pollErrs = errs
	m.refreshedAt = m.now()
	prev := m.pol.mode
	m.recomputeLocked()
	if m.pol.mode != prev {
		m.log.Info("residency mode", "mode", m.pol.mode, "previous", prev, "budget_bytes", m.pol.budget,
			"fits", m.pol.fit.Fits, "do_not_fit", m.pol.fit.DoNotFit, "external_bytes", m.external)
	}
	m.announceResidencyLocked()
	m.dispatchLocked()
}

// announceResidencyLocked publishes model.residency when the set of
// resident models or their sizes changed since the last announcement (the
// dashboard's model panel and the per-model VRAM gauge follow it).
func (m *Manager) announceResidencyLocked() {
	d := events.ModelResidencyData{Models: []events.ResidentModel{}}
	for _, ra := range m.resident {
		d.Models = append(d.Models, events.ResidentModel{Name: ra.r.Name, Endpoint: ra.endpoint,
			SizeBytes: int64(ra.r.SizeBytes), VRAMBytes: int64(ra.r.VRAMBytes), ExpiresAt: ra.r.ExpiresAt})
	}
	slices.SortFunc(d.Models, func(a, b events.ResidentModel) int {
		return strings.Compare(a.Endpoint+"\x00"+a.Name, b.Endpoint+"\x00"+b.Name)
	})
	key := ""
	for _, rm := range d.Models {
		key += fmt.Sprintf("%s\x00%s\x00%d\x00%d\n", rm.Endpoint, rm.Name, rm.SizeBytes, rm.VRAMBytes)
	}
	if m.announced && key == m.lastResidency {
		return
	}
	m.announced, m.lastResidency = true, key
	m.publish(d)
}

// EndpointUnreachable is told, by a caller that has just found it so (the
// status probe), that endpoint does not answer: the models it held stop
// counting as resident at once instead of at the next poll, and Snapshot
// says why until the next Refresh.
func (m *Manager) EndpointUnreachable(endpoint string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.forgetEndpointLocked(endpoint) {
		return
	}
	m.pollErrs = append(m.pollErrs, fmt.Sprintf("%s: not reachable (%v): which models it holds is unknown until it answers", endpoint, err))
	m.recomputeLocked()
	m.dispatchLocked()
}

// forgetEndpointLocked drops what endpoint was last seen holding, and
// reports whether it held anything. A server that does not answer serves
// no call, and what it holds when it is back is unknown until its next
// /api/ps: reporting its old models as resident would be a guess.
func (m *Manager) forgetEndpointLocked(endpoint string) bool {
	held := false
	for k, ra := range m.resident {
		if ra.endpoint == endpoint {
			delete(m.resident, k)
			held = true
		}
	}
	return held
}

// answered reports whether err is the server's own answer (an HTTP error
// status) rather than no answer at all (refused, reset, timed out).
func answered(err error) bool {
	var se api.StatusError
	var ae api.AuthorizationError
	return errors.As(err, &se) || errors.As(err, &ae)
}

// forgetSpills drops the spill warnings reported for endpoint, so a spill
// after it comes back is news again. Called with refreshMu held.
func (m *Manager) forgetSpills(endpoint string) {
	for key := range m.spill {
		if strings.HasPrefix(key, endpoint+"|") {
			delete(m.spill, key)
		}
	}
}

// learn persists sizes that changed and reports spills once per change.
// Called with refreshMu held.
func (m *Manager) learn(ctx context.Context, endpoint string, res []Residency) {
	seen := map[string]bool{}
	for _, r := range res {
		key := endpoint + "|" + llm.ModelKey(r.Name)
		seen[key] = true
		if r.SizeBytes > 0 && m.cfg.Store != nil {
			sz := [2]int64{int64(r.SizeBytes), int64(r.VRAMBytes)}
			if m.saved[key] != sz {
				if err := m.cfg.Store.SaveModelSize(ctx, r.Name, endpoint, sz[0], sz[1]); err != nil {
					m.logOnChange(endpoint, "save size", err)
				} else {
					m.saved[key] = sz
				}
			}
		}
		if r.Warning != m.spill[key] {
			m.spill[key] = r.Warning
			if r.Spill {
				m.log.Warn("model spills to CPU", "endpoint", endpoint, "model", r, "warning", r.Warning)
				m.publish(SpillEvent{Endpoint: endpoint, Residency: events.ResidencyData(r)})
			} else {
				m.log.Info("model fully in VRAM again", "endpoint", endpoint, "model", r)
				m.publish(SpillEvent{Cleared: true, Endpoint: endpoint, Residency: events.ResidencyData(r)})
			}
		}
	}
	for key, w := range m.spill {
		model, ours := strings.CutPrefix(key, endpoint+"|")
		if ours && model != "" && !seen[key] {
			delete(m.spill, key) // unloaded: a spill on the next load is news again
			if w != "" {
				m.log.Info("spilling model unloaded", "endpoint", endpoint, "model", model)
			}
		}
	}
}

// publish announces p under its own type.
func (m *Manager) publish(p events.Payload) {
	if m.cfg.Publisher != nil {
		m.cfg.Publisher.Publish(p)
	}
}

// An Ollama that does not answer at all is one line per endpoint, not one
// per operation with the raw dial error: the start banner and `agentd
// doctor` say how to get going.
func (m *Manager) logOnChange(endpoint, op string, err error) {
	key := "ollama\x00" + endpoint
	if notAnswering(err) {
		if m.epErr[key] == "" {
			m.epErr[key] = "not answering"
			m.log.Warn("ollama not reachable: runs wait until it answers; the start banner and `agentd doctor` say how to get going",
				"endpoint", endpoint)
		}
		return
	}
	if m.epErr[key] != "" {
		delete(m.epErr, key)
		m.log.Info("ollama reachable again", "endpoint", endpoint)
	}
	m.epErr.report(m.log, "residency "+op, err, "endpoint", endpoint)
}

// notAnswering reports whether err means nothing answered at the address
// (refused, unreachable, no such host), as opposed to an error reply.
func notAnswering(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return err != nil && (errors.As(err, &op) || errors.As(err, &dns))
}

// Prewarm loads every configured model not yet resident, planner first,
// when the mode is co-resident, so the first run does not wait for loads.
// In other modes it does nothing: loading ahead would only evict. A model
// used only for embeddings is left to load on first use: Ollama refuses the
// empty generate that loads a model without generating, and it is small.
func (m *Manager) Prewarm(ctx context.Context) {
	m.mu.Lock()
	if m.pol.mode != ModeCoResident {
		m.mu.Unlock()
		return
	}
	type job struct {
		model string
		keep  time.Duration
	}
	var jobs []job
	for _, rm := range m.roles {
		k := llm.ModelKey(rm.Name)
		if _, ok := m.resident[k]; ok {
			continue
		}
		if m.tagsKnown && len(m.pulled[k]) == 0 {
			continue // missing: Snapshot says how to pull it
		}
		if slices.Equal(rm.Roles, []string{"embedding"}) {
			continue
		}
		jobs = append(jobs, job{rm.Name, m.keepAliveLocked(k)})
	}
	m.mu.Unlock()
	loader := m.loader()
	if loader == nil {
		return
	}
	for _, j := range jobs {
		start := time.Now()
		if err := loader.Load(ctx, j.model, j.keep); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("prewarm failed", "model", j.model, "err", err)
			continue
		}
		m.log.Info("prewarmed", "model", j.model, "keep_alive", j.keep, "took", time.Since(start))
	}
	m.Refresh(ctx)
}

func (m *Manager) loader() Loader {
	for _, ep := range m.cfg.Endpoints {
		if ep.Loader != nil {
			return ep.Loader
		}
	}
	return nil
}

// recomputeLocked re-decides the policy from what is known now.
func (m *Manager) recomputeLocked() {
	m.capacity, m.capSource = 0, ""
	m.freeKnown, m.external = false, 0
	var s Sample
	var have bool
	if m.cfg.Samples != nil {
		s, have = m.cfg.Samples.Latest()
	}
	if have {
		var total, used uint64
		known := false
		for _, g := range s.GPUs {
			if g.MemoryTotalBytes == nil {
				continue
			}
			f, ok := g.FreeBytes()
			if !ok {
				continue
			}
			total += *g.MemoryTotalBytes
			used += *g.MemoryTotalBytes - min(f, *g.MemoryTotalBytes)
			known = true
		}
		if f, ok := TotalFreeBytes(s.GPUs); ok {
			m.free, m.freeKnown = f, true
		}
		if known && total > 0 {
			m.capacity, m.capSource = total, "monitor"
			var ours uint64
			for _, ra := range m.resident {
				ours += ra.r.VRAMBytes
			}
			if used > ours && used-ours > externalNoiseFloor {
				m.external = used - ours
			}
		}
	}
	if m.cfg.CapacityBytes > 0 {
		m.capacity, m.capSource = m.cfg.CapacityBytes, "override"
	}
	m.sizes = m.sizesLocked()
	// A model no server has pulled cannot take VRAM; counting it as of
	// unknown size would force swap mode until someone pulls it.
	models := m.roles
	if m.tagsKnown {
		models = slices.DeleteFunc(slices.Clone(m.roles), func(rm RoleModel) bool { return len(m.pulled[llm.ModelKey(rm.Name)]) == 0 })
	}
	m.pol = decidePolicy(policyInput{
		models:        models,
		sizes:         m.sizes,
		capacity:      m.capacity,
		capacityKnown: m.capacity > 0,
		external:      m.external,
		headroom:      uint64(max(m.cfg.VRAM.Headroom, 0)),
		keepAlive:     m.cfg.Models.KeepAlive.D(),
		swapKeepAlive: m.cfg.SwapKeepAlive,
	})
}

// sizesLocked is the best known size of every model: measured this run,
// then stored, then the download size.
func (m *Manager) sizesLocked() map[string]uint64 {
	out := make(map[string]uint64, len(m.tagged)+len(m.stored)+len(m.learned))
	for k, b := range m.tagged {
		out[k] = b
	}
	for k, b := range m.stored {
		out[k] = b
	}
	for k, l := range m.learned {
		out[k] = l.size
	}
	return out
}

func (m *Manager) sizeOfLocked(k string) (uint64, string) {
	if l, ok := m.learned[k]; ok {
		return l.size, SizeFromPS
	}
	if b, ok := m.stored[k]; ok {
		return b, SizeFromStore
	}
	if b, ok := m.tagged[k]; ok {
		return b, SizeFromTags
	}
	return 0, SizeFromUnknown
}

// Mode is the current residency mode.
func (m *Manager) Mode() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pol.mode
}

// KeepAliveFor is the keep_alive to send with a call to model: the
// configured models.keep_alive while it may stay resident, the short swap
// keep_alive when it must make way for others. It never returns zero,
// which would unload the model after every call.
func (m *Manager) KeepAliveFor(model string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keepAliveLocked(llm.ModelKey(model))
}

func (m *Manager) keepAliveLocked(k string) time.Duration {
	if d, ok := m.pol.keepAlive[k]; ok && d != 0 {
		return d
	}
	if d := m.cfg.Models.KeepAlive.D(); d != 0 {
		return d
	}
	return defaultCoKeepAlive
}

// MaxConcurrent is how many calls model may run at once now: the least of
// its max_concurrent, the server's parallel slots, and one while other
// processes have left less free VRAM than the headroom.
func (m *Manager) MaxConcurrent(model string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.limitLocked(llm.ModelKey(model))
}

func (m *Manager) limitLocked(k string) int {
	n := defaultParallelSlots
	for _, ep := range m.cfg.Endpoints {
		n = max(n, ep.ParallelSlots)
	}
	for name, o := range m.cfg.Models.Options {
		if o.MaxConcurrent > 0 && llm.ModelKey(name) == k {
			n = min(n, o.MaxConcurrent)
		}
	}
	if m.pressureLocked() {
		n = 1
	}
	return n
}

// pressureLocked: free VRAM is below the headroom, so another process (or
// KV cache growth) has taken what the policy assumed was spare.
func (m *Manager) pressureLocked() bool {
	return m.freeKnown && m.free < uint64(max(m.cfg.VRAM.Headroom, 0))
}

// Acquire waits until model may start a call and returns the function that
// ends it (call it exactly once; later calls do nothing). When ctx ends
// first it returns ctx.Err() and holds nothing.
func (m *Manager) Acquire(ctx context.Context, model string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := llm.ModelKey(model)
	w := &waiter{since: m.now(), ready: make(chan struct{})}
	m.mu.Lock()
	m.queue[k] = append(m.queue[k], w)
	m.dispatchLocked()
	m.mu.Unlock()

	select {
	case <-w.ready:
		return m.releaser(k), nil
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.granted {
		m.inFlight[k]-- // granted as ctx ended: hand the slot on
	} else {
		m.queue[k] = slices.DeleteFunc(m.queue[k], func(x *waiter) bool { return x == w })
		if len(m.queue[k]) == 0 {
			delete(m.queue, k)
		}
	}
	m.dispatchLocked()
	return nil, ctx.Err()
}

func (m *Manager) releaser(k string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.inFlight[k]--
			if m.inFlight[k] <= 0 {
				delete(m.inFlight, k)
			}
			m.dispatchLocked()
		})
	}
}

// dispatchLocked starts every waiting call the policy allows now.
func (m *Manager) dispatchLocked() {
	now := m.now()
	for m.grantOneLocked(now) {
	}
}

func (m *Manager) grantOneLocked(now time.Time) bool {
	// An externally served model holds none of this GPU: only its limit
	// holds it back, in any mode, and it never becomes the served model.
	order := m.waitingLocked(now)
	for _, k := range order {
		if m.externalKey(k) && m.inFlight[k] < m.limitLocked(k) {
			m.grantLocked(k)
			return true
		}
	}
	order = slices.DeleteFunc(order, m.externalKey)
	if m.pol.mode != ModeSwap {
		m.current, m.batch = "", 0
		for _, k := range order {
			if m.inFlight[k] < m.limitLocked(k) {
				m.grantLocked(k)
				return true
			}
		}
		return false
	}
	m.settleCurrentLocked(now)
	order = slices.DeleteFunc(m.waitingLocked(now), m.externalKey)
	if len(order) == 0 {
		return false
	}
	if m.current == "" {
		// Only the first in line may take the GPU, so a model that fits
		// beside what is still running cannot jump the queue.
		next := order[0]
		if !m.fitsWithActiveLocked(next) || m.inFlight[next] >= m.limitLocked(next) {
			return false
		}
		m.log.Debug("gpu serves model", "model", next, "queued", len(m.queue[next]), "gave_way", m.yieldFrom)
		m.current, m.since, m.batch, m.yieldFrom = next, now, 0, ""
		m.switches++
		m.grantLocked(next)
		return true
	}
	blocked := m.fairnessBlockedLocked(now)
	for _, k := range order {
		if m.inFlight[k] >= m.limitLocked(k) || blocked {
			continue
		}
		if k != m.current && !m.fitsWithActiveLocked(k) {
			continue
		}
		m.grantLocked(k)
		return true
	}
	return false
}

func (m *Manager) grantLocked(k string) {
	q := m.queue[k]
	w := q[0]
	m.queue[k] = q[1:]
	if len(m.queue[k]) == 0 {
		delete(m.queue, k)
	}
	w.granted = true
	close(w.ready)
	m.inFlight[k]++
	m.served[k]++
	if k == m.current {
		m.batch++
	}
}

// settleCurrentLocked lets the served model go once it has nothing left in
// flight and either nothing queued or a waiter it has kept waiting too long.
func (m *Manager) settleCurrentLocked(now time.Time) {
	if m.current == "" || m.inFlight[m.current] > 0 {
		return
	}
	if len(m.queue[m.current]) > 0 && !m.fairnessBlockedLocked(now) {
		return
	}
	if len(m.queue[m.current]) > 0 {
		m.yieldFrom = m.current
	}
	m.current, m.batch = "", 0
}

// fairnessBlockedLocked: a model that cannot run beside the current one has
// waited MaxWait, or the current one has started MaxBatch calls while it
// waited. Waits count from when the current model took the GPU, so a model
// that just took over is sure of a full turn and two models with old
// waiters cannot flip the GPU back and forth after every call.
func (m *Manager) fairnessBlockedLocked(now time.Time) bool {
	maxBatch := m.cfg.MaxBatch
	if maxBatch <= 0 {
		maxBatch = defaultMaxBatch
	}
	maxWait := m.maxWait()
	for k, q := range m.queue {
		if k == m.current || len(q) == 0 || m.externalKey(k) || m.fitsTogetherLocked(k, m.current) {
			continue
		}
		waited := now.Sub(q[0].since)
		if turn := now.Sub(m.since); turn < waited {
			waited = turn
		}
		if m.batch >= maxBatch || waited >= maxWait {
			return true
		}
	}
	return false
}

// maxWait is MaxWait, or its default.
func (m *Manager) maxWait() time.Duration {
	if m.cfg.MaxWait > 0 {
		return m.cfg.MaxWait
	}
	return defaultMaxWait
}

// waitingLocked orders the models with queued calls: the current one, then
// any whose oldest call has waited MaxWait (oldest first), then the most
// queued calls, then the oldest call; the model that just gave way goes last.
func (m *Manager) waitingLocked(now time.Time) []string {
	maxWait := m.maxWait()
	keys := make([]string, 0, len(m.queue))
	for k, q := range m.queue {
		if len(q) > 0 {
			keys = append(keys, k)
		}
	}
	rank := func(k string) int {
		switch {
		case k == m.current:
			return 0
		case k == m.yieldFrom:
			return 3
		case now.Sub(m.queue[k][0].since) >= maxWait:
			return 1
		}
		return 2
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		qa, qb := m.queue[a], m.queue[b]
		if rank(a) != 1 && len(qa) != len(qb) {
			return len(qa) > len(qb)
		}
		if !qa[0].since.Equal(qb[0].since) {
			return qa[0].since.Before(qb[0].since)
		}
		return a < b
	})
	return keys
}

// fitsWithActiveLocked: k can be resident together with the current model
// and every model with a call in flight.
func (m *Manager) fitsWithActiveLocked(k string) bool {
	set := map[string]bool{k: true}
	if m.current != "" {
		set[m.current] = true
	}
	for a, n := range m.inFlight {
		if n > 0 && !m.externalKey(a) {
			set[a] = true
		}
	}
	if len(set) == 1 {
		return true // alone on the GPU: Ollama loads it, spilling if it must
	}
	if m.pressureLocked() {
		return false // no extra model while others squeeze VRAM
	}
	return m.pol.fits(m.sizes, set)
}

func (m *Manager) fitsTogetherLocked(a, b string) bool {
	if a == b || b == "" {
		return true
	}
	if m.pressureLocked() {
		return false
	}
	return m.pol.fits(m.sizes, map[string]bool{a: true, b: true})
}

// ResidencySnapshot is the Manager's state for /api/v1/status and doctor.
type ResidencySnapshot struct {
	Mode string `json:"mode"`
	// CapacityBytes is the GPU's total VRAM; CapacitySource is "monitor",
	// "override" or empty when unknown.
	CapacityBytes  uint64 `json:"capacity_bytes"`
	CapacitySource string `json:"capacity_source,omitempty"`
	// FreeBytes is free VRAM in the latest sample (absent when unknown);
	// ExternalBytes is what other processes hold, beyond agentd's models.
	FreeBytes     *uint64 `json:"free_bytes,omitempty"`
	ExternalBytes uint64  `json:"external_bytes"`
	HeadroomBytes uint64  `json:"headroom_bytes"`
	// BudgetBytes is what agentd's models may hold at once.
	BudgetBytes uint64 `json:"budget_bytes"`
	// Pressure is true while free VRAM is below the headroom: one call per
	// model, no extra model loaded beside others.
	Pressure bool `json:"pressure"`
	// Serving is the model the GPU serves in swap mode; empty otherwise.
	Serving  string          `json:"serving,omitempty"`
	Models   []ModelStatus   `json:"models"`
	Missing  []MissingModel  `json:"missing"`
	Warnings []string        `json:"warnings"`
	Errors   []string        `json:"errors,omitempty"`
	Switches int64           `json:"switches"`
	Updated  time.Time       `json:"updated"`
	Fit      FitResult       `json:"fit"`
	Other    []ModelActivity `json:"other_models,omitempty"`
}

// ModelStatus is one configured model.
type ModelStatus struct {
	Name          string   `json:"name"`
	Roles         []string `json:"roles"`
	SizeBytes     uint64   `json:"size_bytes"`
	SizeSource    string   `json:"size_source"`
	SizeVRAMBytes uint64   `json:"size_vram_bytes,omitempty"`
	Resident      bool     `json:"resident"`
	Endpoint      string   `json:"endpoint,omitempty"`
	Spill         bool     `json:"spill"`
	Warning       string   `json:"warning,omitempty"`
	// KeepAlive is what KeepAliveFor returns, as Go duration text.
	KeepAlive     string `json:"keep_alive"`
	MaxConcurrent int    `json:"max_concurrent"`
	Pulled        *bool  `json:"pulled,omitempty"`
	// External marks a model an OpenAI-compatible endpoint serves: its
	// size and residency are that server's, unknown here.
	External bool `json:"external,omitempty"`
	ModelActivity
}

// ModelActivity is the admission state of one model.
type ModelActivity struct {
	Model    string `json:"model,omitempty"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	Served   int64  `json:"served"`
	// OldestWait is how long the oldest queued call has waited, as Go
	// duration text; empty when nothing waits.
	OldestWait string `json:"oldest_wait,omitempty"`
}

// MissingModel is a configured model no endpoint has pulled, with the
// command that fixes it.
type MissingModel struct {
	Name        string   `json:"name"`
	Roles       []string `json:"roles"`
	PullCommand string   `json:"pull_command"`
}

// Snapshot reports the mode, every configured model's size, residency,
// spill and queue, and the configured models that are not pulled.
func (m *Manager) Snapshot() ResidencySnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s := ResidencySnapshot{
		Mode:           m.pol.mode,
		CapacityBytes:  m.capacity,
		CapacitySource: m.capSource,
		ExternalBytes:  m.external,
		HeadroomBytes:  uint64(max(m.cfg.VRAM.Headroom, 0)),
		BudgetBytes:    m.pol.budget,
		Pressure:       m.pressureLocked(),
		Serving:        m.current,
		Models:         []ModelStatus{},
		Missing:        []MissingModel{},
		Warnings:       []string{},
		Errors:         slices.Clone(m.pollErrs),
		Switches:       m.switches,
		Updated:        m.refreshedAt,
		Fit:            m.pol.fit,
	}
	if m.freeKnown {
		f := m.free
		s.FreeBytes = &f
	}
	configured := map[string]bool{}
	for _, rm := range m.roles {
		k := llm.ModelKey(rm.Name)
		configured[k] = true
		ms := ModelStatus{
			Name:          rm.Name,
			Roles:         slices.Clone(rm.Roles),
			KeepAlive:     m.keepAliveLocked(k).String(),
			MaxConcurrent: m.limitLocked(k),
			ModelActivity: m.activityLocked(k, now),
		}
		ms.Model = ""
		ms.SizeBytes, ms.SizeSource = m.sizeOfLocked(k)
		if ra, ok := m.resident[k]; ok {
			ms.Resident, ms.Endpoint = true, ra.endpoint
			ms.SizeVRAMBytes, ms.Spill, ms.Warning = ra.r.VRAMBytes, ra.r.Spill, ra.r.Warning
			if ra.r.Warning != "" {
				s.Warnings = append(s.Warnings, ra.r.Warning)
			}
		}
		if m.tagsKnown {
			pulled := len(m.pulled[k]) > 0
			ms.Pulled = &pulled
			if !pulled {
				s.Missing = append(s.Missing, MissingModel{Name: rm.Name, Roles: slices.Clone(rm.Roles), PullCommand: pullCommandPrefix + rm.Name})
			}
		}
		s.Models = append(s.Models, ms)
	}
	for _, rm := range m.outside {
		k := llm.ModelKey(rm.Name)
		configured[k] = true
		ms := ModelStatus{Name: rm.Name, Roles: slices.Clone(rm.Roles), External: true, Endpoint: m.outsideAt[k],
			SizeSource: SizeFromUnknown, MaxConcurrent: m.limitLocked(k), ModelActivity: m.activityLocked(k, now)}
		ms.Model = ""
		s.Models = append(s.Models, ms)
	}
	// Spills of models outside the configuration still slow the GPU down.
	var others []string
	for k, ra := range m.resident {
		if !configured[k] && ra.r.Warning != "" {
			others = append(others, ra.r.Warning)
		}
	}
	sort.Strings(others)
	s.Warnings = append(s.Warnings, others...)
	for _, k := range m.activeKeysLocked() {
		if !configured[k] {
			s.Other = append(s.Other, m.activityLocked(k, now))
		}
	}
	return s
}

func (m *Manager) activityLocked(k string, now time.Time) ModelActivity {
	a := ModelActivity{Model: k, InFlight: m.inFlight[k], Queued: len(m.queue[k]), Served: m.served[k]}
	if q := m.queue[k]; len(q) > 0 {
		a.OldestWait = now.Sub(q[0].since).String()
	}
	return a
}

// activeKeysLocked lists models with calls queued, in flight or served, sorted.
func (m *Manager) activeKeysLocked() []string {
	set := map[string]bool{}
	for k := range m.queue {
		set[k] = true
	}
	for k := range m.inFlight {
		set[k] = true
	}
	for k := range m.served {
		set[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
