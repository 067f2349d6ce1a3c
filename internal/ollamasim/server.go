package ollamasim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a simulated Ollama server. It is an http.Handler; Start or
// Listen also serve it on a real TCP listener. Safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	catalog catalog
	sched   *scheduler
	gen     *generator
	faults  *faultInjector
	stats   *statsCollector
	sleeper sleeper
	mux     *http.ServeMux
	// openAIIDs numbers /v1 completions ("chatcmpl-N", N < 999 as in Ollama).
	openAIIDs atomic.Uint64

	mu      sync.Mutex
	httpSrv *http.Server
	url     string
	done    chan struct{}
}

var _ http.Handler = (*Server)(nil)

// New builds a simulator from cfg; unset fields take their defaults.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "ollamasim"),
		catalog: newCatalog(cfg.Models),
		stats:   newStatsCollector(),
		sleeper: sleeper{scale: cfg.TimeScale},
		gen:     &generator{seed: cfg.Seed, script: cfg.Script},
		faults:  newFaultInjector(cfg.Seed, cfg.Faults),
	}
	s.sched = newScheduler(cfg, s.sleeper.sleep, s.stats)
	s.mux = s.routes()
	return s
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("HEAD /{$}", s.handleRoot)
	mux.HandleFunc("GET /api/version", s.handleVersion)
	mux.HandleFunc("HEAD /api/version", s.handleVersion)
	mux.HandleFunc("GET /api/tags", s.handleTags)
	mux.HandleFunc("GET /api/ps", s.handlePS)
	mux.HandleFunc("POST /api/show", s.handleShow)
	mux.HandleFunc("POST /api/pull", s.handlePull)
	mux.HandleFunc("POST /api/chat", s.handleChat)
	mux.HandleFunc("POST /api/generate", s.handleGenerate)
	mux.HandleFunc("POST /api/embed", s.handleEmbed)
	mux.HandleFunc("POST /v1/chat/completions", s.handleOpenAIChat)
	return mux
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Start serves on 127.0.0.1 with a free port until ctx ends or Close is
// called, and returns the base URL ("http://127.0.0.1:PORT").
func (s *Server) Start(ctx context.Context) (string, error) {
	u, err := s.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-done:
		}
	}()
	return u, nil
}

// Listen serves on addr (e.g. "127.0.0.1:11434") in the background and
// returns the base URL.
func (s *Server) Listen(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil {
		return "", fmt.Errorf("ollamasim: already serving at %s", s.url)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("ollamasim: listen on %s: %w", addr, err)
	}
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	s.done = make(chan struct{})
	srv := s.httpSrv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "error", err)
		}
	}()
	s.log.Info("simulated ollama listening", "url", s.url)
	return s.url, nil
}

// URL is the base URL while serving, empty otherwise.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving and drops open connections, which also ends
// requests hanging in a timeout fault. Safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv == nil {
		return nil
	}
	err := s.httpSrv.Close()
	close(s.done)
	s.httpSrv = nil
	s.url = ""
	if err != nil {
		return fmt.Errorf("ollamasim: close: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters (keep_alive expiry is applied
// first, so expired models count as unloaded).
func (s *Server) Stats() Stats {
	s.sched.snapshot()
	return s.stats.snapshot()
}

// SetFault adds or replaces the fault for (f.Class, f.Model); a
// Probability of 0 removes it.
func (s *Server) SetFault(f Fault) { s.faults.set(f) }

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// Pending reports requests currently waiting for a slot or a model load.
func (s *Server) Pending() int { return s.sched.pendingCount() }

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Ollama's {"error": "..."} body.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.code, map[string]string{"error": he.msg})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, 499, map[string]string{"error": "request canceled"})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	}
}

// lookupModel finds the model a request names. A name Ollama cannot
// parse (an empty one included) is answered with badName, which each
// handler words its own way; an unknown one with "model 'NAME' not found".
func (s *Server) lookupModel(w http.ResponseWriter, name string, badName *httpError) (m *Model, ok bool) {
	if !validName(name) {
		writeError(w, badName)
		return nil, false
	}
	if m, ok = s.catalog.lookup(name); !ok {
		writeError(w, errModelNotFound(name))
	}
	return m, ok
}

// decodeBody decodes a JSON request body with Ollama's error wording.
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		return errMissingBody
	case err != nil:
		return &httpError{http.StatusBadRequest, err.Error()}
	}
	return nil
}

// Device is the simulated accelerator as the scheduler models it now.
type Device struct {
	VRAMTotal int64 // bytes
	VRAMUsed  int64 // bytes held by loaded models
	Active    int   // requests running on a slot
	Slots     int   // slots of the loaded models
}

// ForgetPrompts empties every loaded model's prompt cache, as if each had
// just loaded: the next request on each slot prefills its whole prompt.
func (s *Server) ForgetPrompts() {
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	for _, r := range s.sched.runners {
		for i := range r.cache {
			if !r.cache[i].busy {
				r.cache[i].text = ""
			}
		}
	}
}

// Device reports the simulated GPU's memory and use (keep_alive expiry is
// applied first), for a demo's GPU panel.
func (s *Server) Device() Device {
	s.sched.snapshot()
	return s.sched.device()
}
