package daemon

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/buildinfo"
	"github.com/agentd/agentd/internal/vram"
)

// Status is /api/v1/status: what an operator needs at a glance.
type Status struct {
	Build         buildinfo.Info `json:"build"`
	Demo          bool           `json:"demo"`
	DemoExamples  []DemoExample  `json:"demo_examples,omitempty"` // demo only: the scripted requests, offered as one-click examples
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	ConfigPath    string         `json:"config_path"`
	Database      DatabaseStatus `json:"database"`
	Ollama        []OllamaStatus `json:"ollama"`
	Hardware      *vram.Sample   `json:"hardware,omitempty"`
	Runs          map[string]int `json:"runs"`
	Residency     any            `json:"residency,omitempty"`
	Link          any            `json:"link,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
}

// DemoExample is one scripted request of the demo.
type DemoExample struct {
	Name    string `json:"name"`
	Request string `json:"request"`
}

// DatabaseStatus reports the store.
type DatabaseStatus struct {
	OK            bool   `json:"ok"`
	Path          string `json:"path"`
	SchemaVersion int    `json:"schema_version"`
	Error         string `json:"error,omitempty"`
}

// OllamaStatus reports one Ollama endpoint.
type OllamaStatus struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Reachable bool   `json:"reachable"`
	Version   string `json:"version,omitempty"`
	Error     string `json:"error,omitempty"`
	// External marks an OpenAI-compatible endpoint: it is not probed,
	// Reachable is the client's view of it, and what it holds is not known.
	External bool `json:"external,omitempty"`

	err error // what the probe met, for the residency manager
}

func (d *Daemon) status(ctx context.Context) any {
	st := Status{
		Build: buildinfo.Get(), Demo: d.opts.Demo, StartedAt: d.started.UTC(),
		UptimeSeconds: time.Since(d.started).Seconds(), ConfigPath: d.opts.ConfigPath,
		Database: DatabaseStatus{Path: d.paths.Database}, Runs: map[string]int{},
	}
	if d.opts.Demo {
		st.DemoExamples = d.opts.DemoExamples
	}
	if v, err := d.Store.SchemaVersion(ctx); err != nil {
		st.Database.Error = err.Error()
	} else {
		st.Database.OK, st.Database.SchemaVersion = true, v
	}
	if counts, err := d.Store.CountRunsByStatus(ctx); err == nil {
		for k, v := range counts {
			st.Runs[string(k)] = v
		}
	}
	st.Ollama = d.probeOllama(ctx)
	if s, ok := d.Monitor.Latest(); ok {
		st.Hardware = &s
	}
	if d.Residency != nil {
		// The probe has just found these endpoints down: what they held is
		// not resident any more, whatever the last poll said.
		for _, o := range st.Ollama {
			if !o.Reachable && !o.External {
				d.Residency.EndpointUnreachable(o.Name, o.err)
			}
		}
		st.Residency = d.Residency.Snapshot()
	}
	if d.Gate != nil {
		st.Link = d.Gate.Link().Stats()
	}
	return st
}

// probeOllama asks every endpoint for its version, in parallel, briefly.
func (d *Daemon) probeOllama(ctx context.Context) []OllamaStatus {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := make([]OllamaStatus, len(d.ollama))
	var wg sync.WaitGroup
	for i, ep := range d.ollama {
		wg.Go(func() {
			s := OllamaStatus{Name: ep.cfg.Name, URL: ep.cfg.URL}
			v, err := ep.client.Version(ctx)
			if err != nil {
				s.err = err
				s.Error = fmt.Sprintf("ollama not reachable at %s — is `ollama serve` running?", ep.cfg.URL)
			} else {
				s.Reachable, s.Version = true, v
			}
			out[i] = s
		})
	}
	wg.Wait()
	if d.LLM != nil {
		for _, ep := range d.LLM.Endpoints() {
			if ep.External {
				out = append(out, OllamaStatus{Name: ep.Name, URL: ep.URL, Reachable: ep.Healthy, Error: ep.LastError, External: true})
			}
		}
	}
	return out
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("ollama endpoint url %q is not a URL like http://127.0.0.1:11434 — fix ollama.endpoints", raw)
	}
	return u, nil
}
