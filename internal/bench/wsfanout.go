package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	agentapi "github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// The WebSocket fan-out benchmark (`agentd bench --ws`): the real event
// stream of internal/api served on 127.0.0.1, clients in this process.

// FanoutConfig sets up RunFanout.
type FanoutConfig struct {
	Clients  int           // WebSocket clients; default 50
	Rate     int           // events per second; default 1000
	Duration time.Duration // publishing time; default 5s
	Payload  int           // bytes of filler in each event's data; default 200
}

// FanoutResult is what RunFanout measured. Latency is from the
// event's publish time (Event.Time) to its arrival at a client.
type FanoutResult struct {
	Clients      int           `json:"clients"`
	Published    int           `json:"published"`
	RatePerSec   float64       `json:"rate_per_sec"`
	Delivered    int           `json:"delivered"`
	Dropped      int           `json:"dropped_clients"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
	Wall         time.Duration `json:"wall_ns"`
	CPU          time.Duration `json:"cpu_ns"` // user+system of this process (server and clients)
	CPUPercent   float64       `json:"cpu_percent"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
	ClientsInPro bool          `json:"clients_in_process"`
}

// Render writes the heading and the figures.
func (r FanoutResult) Render(w io.Writer) {
	fmt.Fprintln(w, "## WebSocket fan-out")
	fmt.Fprintf(w, "%s\n\n", r)
}

func (r FanoutResult) String() string {
	return fmt.Sprintf("%d events at %.0f/s to %d clients: delivered %d, dropped clients %d, latency p50 %v p99 %v max %v; CPU %v over %v (%.0f%% of one core; server and clients in one process)",
		r.Published, r.RatePerSec, r.Clients, r.Delivered, r.Dropped, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond),
		r.Max.Round(time.Microsecond), r.CPU.Round(time.Millisecond), r.Wall.Round(time.Millisecond), r.CPUPercent)
}

// fanoutEngine refuses everything: the benchmark only streams events.
type fanoutEngine struct{}

func (fanoutEngine) Submit(context.Context, agentapi.SubmitRequest) (*run.Run, error) {
	return nil, agentapi.ErrInvalid
}
func (fanoutEngine) Wait(context.Context, string) (*run.Run, error) { return nil, agentapi.ErrNotFound }
func (fanoutEngine) Cancel(context.Context, string, string) error   { return agentapi.ErrNotFound }
func (fanoutEngine) Decide(context.Context, string, string, bool, string, string) error {
	return agentapi.ErrNotFound
}

type fanoutRuns struct{}

func (fanoutRuns) ListRuns(context.Context, agentapi.RunQuery) ([]*run.Run, error) { return nil, nil }
func (fanoutRuns) RunDetail(context.Context, string) (*agentapi.RunDetail, error) {
	return nil, agentapi.ErrNotFound
}
func (fanoutRuns) PendingApprovals(context.Context) ([]agentapi.Approval, error) { return nil, nil }

// RunFanout serves the real event stream on 127.0.0.1 from a bus of
// its own, connects cfg.Clients WebSocket clients, publishes cfg.Rate
// events per second for cfg.Duration, and reports delivery latency and the
// process's CPU time (getrusage before and after).
func RunFanout(ctx context.Context, cfg FanoutConfig) (FanoutResult, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 50
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Payload <= 0 {
		cfg.Payload = 200
	}
	res := FanoutResult{Clients: cfg.Clients, ClientsInPro: true}
	log := slog.New(slog.DiscardHandler)
	bus := events.New(nil, 4096, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "agentd-wsbench")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	tok, err := agentapi.LoadOrCreateToken(filepath.Join(dir, "token"))
	if err != nil {
		return res, err
	}
	srv := agentapi.New(agentapi.Config{AuthRequired: true, MaxRequestBytes: 1 << 20, ShutdownTimeout: 2 * time.Second}, ln, tok,
		func(context.Context) any { return nil }, nil, log)
	if err := agentapi.RegisterRoutes(srv, agentapi.Deps{Engine: fanoutEngine{}, Runs: fanoutRuns{}, Events: bus, WSBuffer: 4096}); err != nil {
		return res, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(sctx) }()
	defer func() { stop(); <-srvDone }()

	url := "ws://" + ln.Addr().String() + "/api/v1/events"
	hdr := http.Header{"Authorization": {"Bearer " + tok.Token()}}
	type clientResult struct {
		lat     []time.Duration
		dropped bool
	}
	results := make([]clientResult, cfg.Clients)
	conns := make([]*websocket.Conn, cfg.Clients)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			return res, fmt.Errorf("client %d: dial %s: %w", i, url, err)
		}
		c.SetReadLimit(1 << 20)
		conns[i] = c
	}
	// Wait until every client is subscribed, so none misses the start.
	total := cfg.Rate * int(cfg.Duration/time.Second)
	if total == 0 {
		total = int(float64(cfg.Rate) * cfg.Duration.Seconds())
	}
	var wg, ready sync.WaitGroup
	ready.Add(cfg.Clients)
	for i, c := range conns {
		wg.Go(func() {
			defer c.CloseNow()
			lat := make([]time.Duration, 0, total)
			isReady := false
			for len(lat) < total {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				now := time.Now()
				var e struct {
					Type string    `json:"type"`
					Time time.Time `json:"time"`
				}
				if json.Unmarshal(b, &e) != nil {
					continue
				}
				if e.Type == "resume" {
					results[i].dropped = true
					if !isReady {
						ready.Done()
					}
					return
				}
				if e.Type == "bench.probe" && !isReady {
					isReady = true
					ready.Done()
				}
				if e.Type != "bench" {
					continue
				}
				lat = append(lat, now.Sub(e.Time))
			}
			results[i].lat = lat
		})
	}
	// Probe events until every client has seen one: then all are
	// subscribed and the clock can start.
	allReady := make(chan struct{})
	go func() { ready.Wait(); close(allReady) }()
	deadline := time.After(10 * time.Second)
probe:
	for {
		bus.Publish("bench.probe", "", nil)
		select {
		case <-allReady:
			break probe
		case <-deadline:
			return res, errors.New("clients did not subscribe within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	filler := strings.Repeat("x", cfg.Payload)
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
	// Publish in small bursts on a ticker: a per-event sleep is coarser than
	// 1ms on most kernels.
	const burstEvery = 5 * time.Millisecond
	tick := time.NewTicker(burstEvery)
	sent := 0
	for sent < total {
		select {
		case <-ctx.Done():
			tick.Stop()
			return res, ctx.Err()
		case <-tick.C:
		}
		due := min(int(time.Since(start)/interval)+1, total)
		for ; sent < due; sent++ {
			bus.Publish("bench", "", map[string]any{"n": sent, "filler": filler})
		}
	}
	tick.Stop()
	pubWall := time.Since(start)
	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(30 * time.Second):
		for _, c := range conns {
			c.CloseNow()
		}
		<-waitDone
	}
	res.Wall = time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	res.CPU = tvDur(ru1.Utime) - tvDur(ru0.Utime) + tvDur(ru1.Stime) - tvDur(ru0.Stime)
	res.CPUPercent = 100 * res.CPU.Seconds() / res.Wall.Seconds()
	res.Published = total
	res.RatePerSec = float64(total) / pubWall.Seconds()
	var all []time.Duration
	for _, r := range results {
		if r.dropped {
			res.Dropped++
		}
		all = append(all, r.lat...)
	}
	res.Delivered = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		res.P50 = all[len(all)/2]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
		res.Max = all[len(all)-1]
	}
	res.GOMAXPROCS = runtime.GOMAXPROCS(0)
	return res, nil
}

func tvDur(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}
