package ollamasim

import (
	"log/slog"
	"time"
)

// Config describes the simulated machine and Ollama server. The zero value
// is usable: New fills every unset field from DefaultConfig.
type Config struct {
	// Models is the catalog served by /api/tags; nil means DefaultModels().
	Models []Model
	// VRAM is the GPU memory capacity in bytes (0 = 24 GB). A negative
	// value simulates a CPU-only machine: everything loads with size_vram 0.
	VRAM int64
	// SystemRAM is the memory available to the CPU part of a partially
	// offloaded model (0 = 32 GB).
	SystemRAM int64
	// NumParallel is OLLAMA_NUM_PARALLEL: request slots per loaded model
	// (0 = 1). Embedding-only models always get one slot, as in Ollama.
	NumParallel int
	// MaxQueue is OLLAMA_MAX_QUEUE: requests that may wait for a slot or a
	// load at once; one more is refused with 503 (0 = 512, Ollama's default).
	MaxQueue int
	// KeepAlive is the default keep_alive (0 = 5m, like OLLAMA_KEEP_ALIVE).
	KeepAlive time.Duration
	// DefaultNumCtx is the context length used when a request sets no
	// num_ctx (0 = 4096, Ollama's default below 24 GiB of VRAM).
	DefaultNumCtx int
	// LoadBytesPerSecond is how fast weights reach the GPU (0 = 2 GB/s);
	// load time = Size / LoadBytesPerSecond.
	LoadBytesPerSecond float64
	// CPUSlowdown is how many times slower the CPU part of a partially
	// offloaded model decodes and prefills than the GPU part (0 = 10).
	CPUSlowdown float64
	// Seed makes generated text, ids and fault draws reproducible.
	Seed uint64
	// TimeScale maps simulated durations to real sleeps: 1 sleeps the
	// simulated time, 0.01 sleeps 1%, 0 never sleeps. Durations reported in
	// responses are always the simulated ones.
	TimeScale float64
	// Script, if set, decides replies before the default generator.
	Script Script
	// Faults are injected errors; adjust at runtime with Server.SetFault.
	Faults []Fault
	// Now is the clock for keep_alive expiry and timestamps (nil = time.Now),
	// so tests can move time without sleeping.
	Now func() time.Time
	// Version is reported by /api/version (empty = "0.17.4").
	Version string
	// Logger receives scheduler events (nil = slog.Default()).
	Logger *slog.Logger
}

// Defaults used for unset Config fields.
const (
	DefaultVRAM               = 24 * gb
	DefaultSystemRAM          = 32 * gb
	DefaultMaxQueue           = 512
	DefaultKeepAlive          = 5 * time.Minute
	DefaultNumCtx             = 4096
	DefaultLoadBytesPerSecond = 2 * gb
	DefaultCPUSlowdown        = 10
	DefaultVersion            = "0.17.4"
)

// withDefaults returns cfg with every unset field filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Models == nil {
		cfg.Models = DefaultModels()
	}
	if cfg.VRAM == 0 {
		cfg.VRAM = DefaultVRAM
	}
	if cfg.VRAM < 0 {
		cfg.VRAM = 0
	}
	if cfg.SystemRAM <= 0 {
		cfg.SystemRAM = DefaultSystemRAM
	}
	if cfg.NumParallel <= 0 {
		cfg.NumParallel = 1
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.DefaultNumCtx <= 0 {
		cfg.DefaultNumCtx = DefaultNumCtx
	}
	if cfg.LoadBytesPerSecond <= 0 {
		cfg.LoadBytesPerSecond = DefaultLoadBytesPerSecond
	}
	if cfg.CPUSlowdown <= 0 {
		cfg.CPUSlowdown = DefaultCPUSlowdown
	}
	if cfg.TimeScale < 0 {
		cfg.TimeScale = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}
