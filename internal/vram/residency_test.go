package vram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

type fakeLister struct {
	resp *api.ProcessResponse
	err  error
}

func (f fakeLister) ListRunning(context.Context) (*api.ProcessResponse, error) { return f.resp, f.err }

func TestReadResidency(t *testing.T) {
	expires := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		model       api.ProcessModelResponse
		wantSpill   bool
		wantWarning string
		wantCPU     float64
	}{
		{
			name:  "fully in VRAM",
			model: api.ProcessModelResponse{Name: "qwen3:8b", Model: "qwen3:8b", Size: 6_300_000_000, SizeVRAM: 6_300_000_000, ExpiresAt: expires, ContextLength: 8192},
		},
		{
			name:        "spilling to CPU",
			model:       api.ProcessModelResponse{Name: "gemma3:12b", Model: "gemma3:12b", Size: 8_100_000_000, SizeVRAM: 5_000_000_000, ExpiresAt: expires},
			wantSpill:   true,
			wantCPU:     38.27,
			wantWarning: "gemma3:12b is 38% on CPU (size 8.1 GB, in VRAM 5.0 GB): expect slow generation — free VRAM or choose a smaller model",
		},
		{
			name:        "CPU only",
			model:       api.ProcessModelResponse{Name: "llama3.2:3b", Size: 2_000_000_000, SizeVRAM: 0},
			wantSpill:   true,
			wantCPU:     100,
			wantWarning: "llama3.2:3b is 100% on CPU (size 2.0 GB, in VRAM 0.0 GB)",
		},
		{
			name:        "tiny spill is not rounded to zero",
			model:       api.ProcessModelResponse{Name: "phi4:14b", Size: 9_000_000_000, SizeVRAM: 8_990_000_000},
			wantSpill:   true,
			wantCPU:     0.11,
			wantWarning: "phi4:14b is <1% on CPU",
		},
		{
			name:  "unknown size is no spill",
			model: api.ProcessModelResponse{Name: "odd", Size: 0, SizeVRAM: 0},
		},
		{
			name:        "name falls back to model",
			model:       api.ProcessModelResponse{Model: "mistral:7b", Size: 4_000_000_000, SizeVRAM: 1_000_000_000},
			wantSpill:   true,
			wantCPU:     75,
			wantWarning: "mistral:7b is 75% on CPU",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ReadResidency(context.Background(), fakeLister{resp: &api.ProcessResponse{Models: []api.ProcessModelResponse{tt.model}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("got %d residencies, want 1", len(rs))
			}
			r := rs[0]
			wantEq(t, "spill", r.Spill, tt.wantSpill)
			wantEq(t, "size", r.SizeBytes, uint64(tt.model.Size))
			wantEq(t, "vram", r.VRAMBytes, uint64(tt.model.SizeVRAM))
			wantEq(t, "expires", r.ExpiresAt, tt.model.ExpiresAt)
			if r.CPUPercent < tt.wantCPU-0.01 || r.CPUPercent > tt.wantCPU+0.01 {
				t.Errorf("cpu percent = %v, want %v", r.CPUPercent, tt.wantCPU)
			}
			if tt.wantWarning == "" && r.Warning != "" {
				t.Errorf("unexpected warning %q", r.Warning)
			}
			if !strings.HasPrefix(r.Warning, tt.wantWarning) {
				t.Errorf("warning = %q, want prefix %q", r.Warning, tt.wantWarning)
			}
		})
	}
}

func TestReadResidencyErrors(t *testing.T) {
	down := errors.New("dial tcp 127.0.0.1:11434: connect: connection refused")
	if _, err := ReadResidency(context.Background(), fakeLister{err: down}); !errors.Is(err, down) || !strings.Contains(err.Error(), "/api/ps") {
		t.Errorf("error = %v, want the cause wrapped with /api/ps", err)
	}
	rs, err := ReadResidency(context.Background(), fakeLister{resp: &api.ProcessResponse{}})
	if err != nil || rs == nil || len(rs) != 0 {
		t.Errorf("empty /api/ps = %v, %v; want empty non-nil list", rs, err)
	}
}

// TestReadResidencyRealClient goes through the official client over real
// HTTP on 127.0.0.1, proving the JSON field mapping of /api/ps.
func TestReadResidencyRealClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/ps" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"models":[{"name":"gemma3:12b","model":"gemma3:12b","size":8100000000,"digest":"abc","expires_at":"2026-11-22T08:00:00Z","size_vram":5000000000,"context_length":4096}]}`)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ReadResidency(context.Background(), api.NewClient(u, srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("got %d residencies, want 1", len(rs))
	}
	r := rs[0]
	wantEq(t, "size", r.SizeBytes, 8_100_000_000)
	wantEq(t, "vram", r.VRAMBytes, 5_000_000_000)
	wantEq(t, "context", r.ContextLength, 4096)
	wantEq(t, "expires", r.ExpiresAt, time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC))
	wantEq(t, "warning", r.Warning, "gemma3:12b is 38% on CPU (size 8.1 GB, in VRAM 5.0 GB): expect slow generation — free VRAM or choose a smaller model")
}
