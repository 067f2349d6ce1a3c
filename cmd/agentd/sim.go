package main

import (
	"context"
	"fmt"

	"github.com/agentd/agentd/internal/bench/peers"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
)

func init() {
	register("sim", "serve the Ollama simulator with the scenario oracle and the scenario tools (/tools), for other frameworks and tests", (*Main).sim)
}

// sim serves, until interrupted, the simulator every benchmark uses: agentd's
// prompts answered by the scenario script, any other client's by the
// scenario oracle (a perfect model for the scenarios' requests), the
// fixture tools over HTTP at /tools, all under one latency model.
func (m *Main) sim(ctx context.Context, args []string) error {
	fs, _ := m.flags("sim")
	listen := fs.String("listen", "127.0.0.1:11435", "address to serve on (127.0.0.1:0 = a free port); not 11434, so it never shadows a real Ollama")
	timeScale := fs.Float64("time-scale", 0.5, "real seconds per simulated second, for models and tools (0 = instant)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *timeScale < 0 || *timeScale > 1 {
		return usagef("--time-scale %g: use a value in [0, 1]", *timeScale)
	}
	log := daemon.NewLogger(config.Default().Logging, m.Stderr).With("component", "ollamasim")
	s, err := peers.StartSim(ctx, peers.SimOptions{Addr: *listen, TimeScale: *timeScale, Log: log})
	if err != nil {
		return fmt.Errorf("start the simulator: %w — is another process on %s? pick another with --listen", err, *listen)
	}
	fmt.Fprintf(m.Stdout, "agentd sim: Ollama simulator at %s (OpenAI-compatible at %s/v1, scenario tools at %s/tools), time scale %g\n", s.URL, s.URL, s.URL, *timeScale)
	<-s.Done()
	return nil
}
