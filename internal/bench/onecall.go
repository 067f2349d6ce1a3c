package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/run"
)

// OneCallOptions configure the side-by-side overhead of a one-call run.
type OneCallOptions struct {
	Runs   int    // measured pairs (default 100), after 5 unmeasured
	Model  string // every role (default "tiny")
	Target time.Duration
}

// OneCallResult is agentd's time around one model call: a run that makes
// exactly one call (a pinned one-tool-step workflow and its answer), and
// the very request body that run sent, replayed straight to the server,
// one after the other, pair by pair.
type OneCallResult struct {
	Server    string
	Model     string
	Runs      []time.Duration // submit → done, through the daemon
	Calls     []time.Duration // the run's /api/chat body sent directly
	BodyBytes int
	Target    time.Duration
}

// Overhead is the median run less the median direct call.
func (r *OneCallResult) Overhead() time.Duration { return median(r.Runs) - median(r.Calls) }

// Render writes the comparison and the target.
func (r *OneCallResult) Render(w io.Writer) {
	fmt.Fprintf(w, "## One model call: agentd's run vs the same request sent directly\nserver: %s, model %s; %d pairs, interleaved (run, then its request body replayed: %d bytes)\n",
		r.Server, r.Model, len(r.Runs), r.BodyBytes)
	fmt.Fprintf(w, "run (submit → done):     median %s  p10 %s  p90 %s\n", fmtMs(median(r.Runs)), fmtMs(pct(r.Runs, 0.1)), fmtMs(pct(r.Runs, 0.9)))
	fmt.Fprintf(w, "the call alone:          median %s  p10 %s  p90 %s\n", fmtMs(median(r.Calls)), fmtMs(pct(r.Calls, 0.1)), fmtMs(pct(r.Calls, 0.9)))
	fmt.Fprintf(w, "agentd adds:             %s per one-call run (target ≤ %s: %s)\n", fmtMs(r.Overhead()), fmtMs(r.Target), metOrNot(r.Overhead() <= r.Target))
}

// RunOneCall measures the overhead of a one-call run against the real
// server at ollamaURL.
func RunOneCall(ctx context.Context, base *config.Config, ollamaURL string, o OneCallOptions, log *slog.Logger) (*OneCallResult, error) {
	env, err := newBenchEnv(ctx, base, ollamaURL, 1, nil, log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	return env.oneCall(ctx, o)
}

func (e *benchEnv) oneCall(ctx context.Context, o OneCallOptions) (*OneCallResult, error) {
	if e.sim != nil {
		return nil, errors.New("the one-call benchmark needs a real Ollama: give --ollama URL")
	}
	if o.Model == "" {
		o.Model = "tiny"
	}
	if o.Runs <= 0 {
		o.Runs = 100
	}
	if o.Target <= 0 {
		o.Target = 500 * time.Microsecond
	}
	// A proxy in front of the server keeps the last /api/chat body, to be
	// replayed as is; it is in the run's path, so its own cost counts
	// against agentd, never for it.
	px, err := newRecordingProxy(e.url)
	if err != nil {
		return nil, err
	}
	defer px.close()

	h, _, version, stop, err := e.realDaemon(ctx, RealOptions{Model: o.Model}, px.url, []config.WorkflowConfig{{Name: "bench_onecall",
		Description: "bench: one instant tool step, then the answer (the run's only model call)",
		Steps:       []config.WorkflowStep{{ID: "sum", Tool: "calc", Args: map[string]any{"expression": "17*3"}}},
		Answer:      "Report the result."}})
	if err != nil {
		return nil, err
	}
	defer stop()

	res := &OneCallResult{Server: fmt.Sprintf("Ollama %s at %s", version, e.url), Model: o.Model, Target: o.Target}
	for i := range o.Runs + 5 {
		px.reset()
		start := time.Now()
		r, err := h.d.Engine.Submit(ctx, exec.SubmitRequest{Request: "What is 17 times 3?", Source: "bench", Workflow: "bench_onecall"})
		if err != nil {
			return nil, err
		}
		final, err := h.d.Engine.Wait(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		runWall := time.Since(start)
		body, n := px.last()
		if final.Status != run.Done || n != 1 {
			return nil, fmt.Errorf("run %d ended %s with %d model calls (want done with 1): %s", i+1, final.Status, n, final.Error)
		}
		callWall, err := replay(ctx, e.url, body)
		if err != nil {
			return nil, err
		}
		if i < 5 {
			continue // warm-up: caches, first statements, first connections
		}
		res.Runs = append(res.Runs, runWall)
		res.Calls = append(res.Calls, callWall)
		res.BodyBytes = len(body)
	}
	return res, nil
}

// replay sends body to the server's /api/chat and reads the whole answer.
func replay(ctx context.Context, server string, body []byte) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/api/chat", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("replayed call: HTTP %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// recordingProxy forwards to the server and keeps the /api/chat bodies.
type recordingProxy struct {
	url  string
	srv  *http.Server
	mu   sync.Mutex
	body []byte
	n    int
}

func newRecordingProxy(target string) (*recordingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &recordingProxy{url: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // stream as the server does
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/chat" {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			p.mu.Lock()
			p.body, p.n = b, p.n+1
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *recordingProxy) reset() {
	p.mu.Lock()
	p.body, p.n = nil, 0
	p.mu.Unlock()
}

// last is the newest /api/chat body and how many there were since reset.
func (p *recordingProxy) last() ([]byte, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.body, p.n
}

func (p *recordingProxy) close() { _ = p.srv.Close() }

// fmtMs is milliseconds to two decimals (the figure is sub-millisecond).
func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
