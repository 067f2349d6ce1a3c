package ollamasim

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"
)

// Forever is the keep_alive Ollama stores for a negative value: the model
// never expires (its expires_at lands about 292 years ahead, as in Ollama).
const Forever = time.Duration(math.MaxInt64)

// Why a runner left memory; reported in logs and counted in Stats.
const (
	reasonExpired     = "expired" // keep_alive ran out while idle
	reasonEvicted     = "evicted" // made room for another model
	reasonRequested   = "unload"  // keep_alive 0
	reasonReload      = "reload"  // a request asked for a different num_ctx
	defaultMaxRunners = 3         // OLLAMA_MAX_LOADED_MODELS default per GPU
)

// runner is one loaded (or loading) model, like Ollama's runnerRef.
type runner struct {
	model     *Model
	numCtx    int
	size      int64 // bytes in memory, GPU and CPU parts together
	sizeVRAM  int64 // bytes on the GPU; < size means partial offload
	slots     int
	active    int  // requests holding a slot
	loading   bool // weights still being read; counts as busy
	keepAlive time.Duration
	expiresAt time.Time
	// cache is each parallel slot's KV cache, as the text it last
	// evaluated (prompt and output); it goes with the runner when the
	// model unloads or reloads.
	cache []slotCache
}

// slotCache is one parallel slot's cached context.
type slotCache struct {
	text string
	busy bool
}

func (r *runner) idle() bool { return r.active == 0 && !r.loading }

// gpuFraction is the share of the weights on the GPU; it slows decode and
// prefill of partially offloaded models.
func (r *runner) gpuFraction() float64 {
	if r.size == 0 {
		return 1
	}
	return float64(r.sizeVRAM) / float64(r.size)
}

// LogValue lets slog print a runner compactly.
func (r *runner) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("model", r.model.Name),
		slog.Int64("size", r.size),
		slog.Int64("size_vram", r.sizeVRAM),
		slog.Int("active", r.active),
		slog.Time("expires_at", r.expiresAt),
	)
}

// scheduler reproduces the parts of Ollama's server/sched.go that agentd's
// VRAM policy depends on: one load at a time, eviction of idle models with
// the soonest expiry, waiting for busy models rather than overcommitting,
// partial offload only when the model is alone, parallel slots per model,
// and a bounded number of waiting requests (503 beyond it).
//
// Simplification: Ollama counts only requests waiting in the scheduler
// against OLLAMA_MAX_QUEUE while requests waiting for a runner's slot queue
// inside the runner; here both count, which is the stricter reading agentd
// must survive anyway.
type scheduler struct {
	vram        int64
	ram         int64
	numParallel int
	maxQueue    int
	maxRunners  int
	loadBps     float64
	timeScale   float64 // real/simulated time, to report real waits in simulated time
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	log         *slog.Logger
	stats       *statsCollector

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	runners map[string]*runner
	loading bool
	pending int
}

func newScheduler(cfg Config, sleep func(context.Context, time.Duration) error, stats *statsCollector) *scheduler {
	return &scheduler{
		vram:        cfg.VRAM,
		ram:         cfg.SystemRAM,
		numParallel: cfg.NumParallel,
		maxQueue:    cfg.MaxQueue,
		maxRunners:  defaultMaxRunners,
		loadBps:     cfg.LoadBytesPerSecond,
		timeScale:   cfg.TimeScale,
		now:         cfg.Now,
		sleep:       sleep,
		log:         cfg.Logger.With("component", "ollamasim.scheduler"),
		stats:       stats,
		changed:     make(chan struct{}),
		runners:     make(map[string]*runner),
	}
}

// lease is a held slot on a runner; release it exactly once.
type lease struct {
	s            *scheduler
	r            *runner
	loadDuration time.Duration // simulated load, or the wait for a slot (see acquire)
	gpuFraction  float64
	once         sync.Once
	// slot is the parallel slot whose cache the request took (-1: none
	// yet), and text what that cache holds once the request ends.
	slot int
	text string
}

// release frees the slot; the runner's keep_alive starts counting when its
// last request finishes, as in Ollama.
func (l *lease) release() {
	l.once.Do(func() { l.s.release(l) })
}

// reuse takes the free slot whose cache shares the longest prefix with
// prompt, as Ollama's runner does with one user's cache (MultiUserCache
// off), and returns how many bytes of prompt that cache already holds:
// only the rest is prefilled. The slot's cache becomes prompt, and the
// output once it is known (grow).
func (l *lease) reuse(prompt string) int {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	r := l.r
	if len(r.cache) < r.slots {
		r.cache = append(r.cache, make([]slotCache, r.slots-len(r.cache))...)
	}
	best, common := -1, -1
	for i, c := range r.cache {
		if c.busy {
			continue
		}
		if n := commonPrefix(c.text, prompt); n > common {
			best, common = i, n
		}
	}
	if best < 0 {
		return 0 // every slot busy: acquire admitted past the slots
	}
	r.cache[best].busy = true
	l.slot, l.text = best, prompt
	return common
}

// grow records what the request wrote after its prompt: the slot's cache
// holds it too once the request ends.
func (l *lease) grow(output string) { l.text += output }

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// loadDuration is the simulated time to read the weights onto the device.
func (s *scheduler) loadDuration(m *Model) time.Duration {
	return time.Duration(float64(m.Size) / s.loadBps * float64(time.Second))
}

func (s *scheduler) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// acquire returns a slot on a runner for m loaded with numCtx, loading the
// model (and evicting others) when needed. It blocks while the request is
// queued and fails with errMaxQueue when the queue is full.
//
// The lease's loadDuration is what Ollama reports as load_duration: the
// time from the request's arrival until a runner was ready for it. For
// the request that loaded the model that is the simulated load; for the
// others, the time spent in the scheduler (in simulated time, and never 0:
// Ollama always sends the field).
func (s *scheduler) acquire(ctx context.Context, m *Model, numCtx int, keepAlive time.Duration) (*lease, error) {
	start := time.Now()
	l, err := s.acquireSlot(ctx, m, numCtx, keepAlive)
	if err != nil || l.loadDuration > 0 {
		return l, err
	}
	waited := time.Since(start)
	if s.timeScale > 0 {
		waited = time.Duration(float64(waited) / s.timeScale)
	}
	l.loadDuration = max(waited, time.Nanosecond)
	return l, nil
}

func (s *scheduler) acquireSlot(ctx context.Context, m *Model, numCtx int, keepAlive time.Duration) (*lease, error) {
	s.mu.Lock()
	queued := false
	dequeue := func() {
		if queued {
			s.pending--
			queued = false
		}
	}
	for {
		now := s.now()
		s.expireLocked(now)
		r := s.runners[m.Name]
		if r != nil && !r.loading && r.numCtx == numCtx && r.active < r.slots {
			r.active++
			r.keepAlive = keepAlive
			r.expiresAt = now.Add(keepAlive)
			dequeue()
			s.mu.Unlock()
			return &lease{s: s, r: r, gpuFraction: r.gpuFraction(), slot: -1}, nil
		}
		if !queued {
			if s.pending >= s.maxQueue {
				s.stats.rejected()
				s.mu.Unlock()
				return nil, errMaxQueue
			}
			s.pending++
			queued = true
			s.stats.pendingPeak(s.pending)
		}
		if r != nil && r.idle() && r.numCtx != numCtx {
			// Ollama's needsReload: changed runner options force a reload.
			s.unloadLocked(r, reasonReload)
			r = nil
		}
		if r == nil && !s.loading {
			sizeVRAM, ok, err := s.placeLocked(m, now)
			if err != nil {
				dequeue()
				s.stats.outOfMemory()
				s.mu.Unlock()
				return nil, err
			}
			if ok {
				dequeue()
				return s.loadLocked(ctx, m, numCtx, sizeVRAM, keepAlive)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			dequeue()
			s.mu.Unlock()
			return nil, ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
	}
}

// loadLocked registers a loading runner holding one slot for the caller,
// sleeps the load time without the lock, and hands the slot over. Called
// with s.mu held; returns with it released.
func (s *scheduler) loadLocked(ctx context.Context, m *Model, numCtx int, sizeVRAM int64, keepAlive time.Duration) (*lease, error) {
	slots := s.numParallel
	if !m.Has(CapCompletion) {
		slots = 1 // embedding models always run with parallel=1 in Ollama
	}
	r := &runner{model: m, numCtx: numCtx, size: m.Size, sizeVRAM: sizeVRAM, slots: slots, active: 1, loading: true, keepAlive: keepAlive}
	s.runners[m.Name] = r
	s.loading = true
	d := s.loadDuration(m)
	s.log.Info("loading model", "runner", r, "load_duration", d)
	s.mu.Unlock()

	err := s.sleep(ctx, d)

	s.mu.Lock()
	r.loading = false
	r.expiresAt = s.now().Add(r.keepAlive)
	s.loading = false
	s.stats.loaded(m.Name, d, sizeVRAM < m.Size)
	s.mu.Unlock()
	if err != nil {
		// The load completes on its own, as Ollama's does; only the caller
		// gives up its slot.
		s.release(&lease{r: r, slot: -1})
		return nil, err
	}
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
	return &lease{s: s, r: r, loadDuration: d, gpuFraction: r.gpuFraction(), slot: -1}, nil
}

// placeLocked decides where m goes. It returns the bytes to put on the GPU
// and ok=true when the load can start now, ok=false when the request must
// wait for busy runners, or an out-of-memory error when m can never fit.
func (s *scheduler) placeLocked(m *Model, now time.Time) (int64, bool, error) {
	fits := func() bool {
		if len(s.runners) >= s.maxRunners {
			return false
		}
		if s.vram == 0 {
			return s.ramUsedLocked()+m.Size <= s.ram
		}
		return s.vramUsedLocked()+m.Size <= s.vram
	}
	for !fits() {
		victim := s.victimLocked(now)
		if victim == nil {
			break
		}
		s.unloadLocked(victim, reasonEvicted)
	}
	if fits() {
		if s.vram == 0 {
			return 0, true, nil
		}
		return m.Size, true, nil
	}
	if len(s.runners) > 0 {
		return 0, false, nil // wait for a busy runner to finish
	}
	// Alone and still too big: Ollama offloads what fits and keeps the rest
	// in system memory, or fails if that does not fit either.
	cpu := m.Size - s.vram
	if cpu > s.ram {
		return 0, false, errOutOfMemory(cpu, s.ram)
	}
	return s.vram, true, nil
}

// victimLocked picks the idle runner with the shortest remaining
// keep_alive, ties broken by name, so eviction order is deterministic.
func (s *scheduler) victimLocked(now time.Time) *runner {
	var idle []*runner
	for _, r := range s.runners {
		if r.idle() {
			idle = append(idle, r)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	sort.Slice(idle, func(i, j int) bool {
		ri, rj := idle[i].expiresAt.Sub(now), idle[j].expiresAt.Sub(now)
		if ri != rj {
			return ri < rj
		}
		return idle[i].model.Name < idle[j].model.Name
	})
	return idle[0]
}

func (s *scheduler) vramUsedLocked() int64 {
	var n int64
	for _, r := range s.runners {
		n += r.sizeVRAM
	}
	return n
}

func (s *scheduler) ramUsedLocked() int64 {
	var n int64
	for _, r := range s.runners {
		n += r.size - r.sizeVRAM
	}
	return n
}

// release returns a slot and starts the keep_alive clock when the runner
// goes idle; keep_alive 0 unloads at once.
func (s *scheduler) release(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := l.r
	if l.slot >= 0 && l.slot < len(r.cache) {
		r.cache[l.slot] = slotCache{text: l.text}
	}
	r.active--
	if r.idle() {
		now := s.now()
		r.expiresAt = now.Add(r.keepAlive)
		if r.keepAlive <= 0 {
			s.unloadLocked(r, reasonRequested)
		}
	}
	s.notifyLocked()
}

// expire handles a request with keep_alive 0 and nothing to generate: the
// model unloads now if idle, or as soon as its last request finishes.
func (s *scheduler) expire(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.runners[name]
	if r == nil {
		return
	}
	r.keepAlive = 0
	r.expiresAt = s.now()
	if r.idle() {
		s.unloadLocked(r, reasonRequested)
		s.notifyLocked()
	}
}

// expireLocked unloads idle runners whose keep_alive has run out. Expiry is
// evaluated lazily on every scheduler call and on /api/ps, which clients
// cannot tell apart from Ollama's timers and lets tests drive time via Now.
func (s *scheduler) expireLocked(now time.Time) {
	changed := false
	for _, r := range s.runners {
		if r.idle() && !now.Before(r.expiresAt) {
			s.unloadLocked(r, reasonExpired)
			changed = true
		}
	}
	if changed {
		s.notifyLocked()
	}
}

func (s *scheduler) unloadLocked(r *runner, reason string) {
	delete(s.runners, r.model.Name)
	s.stats.unloaded(r.model.Name, reason)
	s.log.Info("unloading model", "runner", r, "reason", reason)
}

// runnerInfo is a snapshot of one runner for /api/ps.
type runnerInfo struct {
	model     *Model
	numCtx    int
	size      int64
	sizeVRAM  int64
	expiresAt time.Time
}

// snapshot expires due runners and lists the rest, longest remaining
// keep_alive first, as /api/ps orders them.
func (s *scheduler) snapshot() []runnerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	out := make([]runnerInfo, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, runnerInfo{model: r.model, numCtx: r.numCtx, size: r.size, sizeVRAM: r.sizeVRAM, expiresAt: r.expiresAt})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].expiresAt.Equal(out[j].expiresAt) {
			return out[i].expiresAt.After(out[j].expiresAt)
		}
		return out[i].model.Name < out[j].model.Name
	})
	return out
}

// pendingCount reports requests waiting for a slot or a load.
func (s *scheduler) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// device sums the runners into the simulated GPU's state.
func (s *scheduler) device() Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := Device{VRAMTotal: s.vram, VRAMUsed: s.vramUsedLocked()}
	for _, r := range s.runners {
		d.Active += r.active
		d.Slots += r.slots
	}
	return d
}
