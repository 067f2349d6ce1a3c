package peers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/scenarios"
)

// SimOptions configure the shared simulator.
type SimOptions struct {
	// Addr to listen on; empty: 127.0.0.1 with a free port.
	Addr string
	// TimeScale: real seconds per simulated second, for the models and the
	// fixture tools alike (0 = instant).
	TimeScale float64
	// Oracle chooses how the oracle plays a tool-calling model.
	Oracle scenarios.OracleOptions
	Log    *slog.Logger
}

// Sim is the Ollama simulator playing every model — agentd's prompts by
// the scenario script, anyone else's by the scenario oracle — with the
// fixture tools served at /tools on the same address. `agentd sim` and
// the peers benchmark both run it.
type Sim struct {
	URL    string
	Server *ollamasim.Server
	Tools  *scenarios.ToolServer
	http   *http.Server
	done   chan struct{}
}

// SimConfig is the simulator's configuration: the same as `agentd bench`'s
// suite (seed 1, 4 parallel slots per model, a queue of 512).
func SimConfig(timeScale float64, oracle scenarios.OracleOptions, log *slog.Logger) ollamasim.Config {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return ollamasim.Config{Seed: 1, TimeScale: timeScale, NumParallel: 4, MaxQueue: 512,
		Script: scenarios.SimScriptWith(oracle), Logger: log}
}

// StartSim serves the simulator and the tools until ctx ends or Close.
func StartSim(ctx context.Context, o SimOptions) (*Sim, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ts, err := scenarios.NewToolServer(scenarios.Options{TimeScale: o.TimeScale})
	if err != nil {
		return nil, fmt.Errorf("scenario tools: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = ts.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Sim{Server: ollamasim.New(SimConfig(o.TimeScale, o.Oracle, o.Log)), Tools: ts, URL: "http://" + ln.Addr().String(), done: make(chan struct{})}
	s.http = &http.Server{Handler: scenarios.Handler(s.Server, ts), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && o.Log != nil {
			o.Log.Error("serve", "error", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Done is closed once the server has stopped.
func (s *Sim) Done() <-chan struct{} { return s.done }

// Close stops serving.
func (s *Sim) Close() error {
	err := s.http.Close()
	<-s.done
	_ = s.Tools.Close()
	return err
}
