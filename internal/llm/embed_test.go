package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

func TestEmbed(t *testing.T) {
	f := newFake(t)
	f.embed = func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.EmbedResponse{
			Model: "nomic-embed-text", Embeddings: [][]float32{{0.1, 0.2}, {0.3, 0.4}},
			TotalDuration: 50 * time.Millisecond, LoadDuration: 10 * time.Millisecond, PromptEvalCount: 12,
		})
	}
	rec := &recorder{}
	c := newClient(t, single(f), config.ModelsConfig{KeepAlive: config.Duration(time.Hour)}, WithRecorder(rec))
	vecs, u, err := c.Embed(context.Background(), "nomic-embed-text", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 2 || vecs[1][1] != 0.4 {
		t.Errorf("vectors = %v", vecs)
	}
	if u.Op != "embed" || u.Endpoint != "local" || u.PromptTokens != 12 || u.TotalDuration != 50*time.Millisecond ||
		u.LoadDuration != 10*time.Millisecond || u.Attempts != 1 || u.Where != WhereLocal {
		t.Errorf("usage = %+v", u)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0] != u {
		t.Errorf("recorded %+v, want the returned usage", recs)
	}
	f.mu.Lock()
	body := f.embedBody[0]
	f.mu.Unlock()
	in, _ := json.Marshal(body["input"])
	if string(in) != `["a","b"]` || body["keep_alive"] != "1h0m0s" || body["model"] != "nomic-embed-text" {
		t.Errorf("request body = %v", body)
	}
}

func TestEmbedErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		class  Class
		calls  int
	}{
		{"not pulled", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, 404, `model "nomic-embed-text" not found, try pulling it first`)
		}, ClassModelNotFound, 1},
		{"busy is retried", func(w http.ResponseWriter, r *http.Request) { writeError(w, 503, msgBusy) }, ClassBusy, 4},
		{"wrong count", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, api.EmbedResponse{Embeddings: [][]float32{{1}}})
		}, ClassOther, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.embed = tt.answer
			c := newClient(t, single(f), config.ModelsConfig{})
			_, u, err := c.Embed(context.Background(), "nomic-embed-text", []string{"a", "b"})
			if ClassOf(err) != tt.class {
				t.Errorf("err = %v (class %s), want %s", err, ClassOf(err), tt.class)
			}
			if f.count("/api/embed") != tt.calls || u.Attempts != tt.calls {
				t.Errorf("%d requests, usage says %d attempts, want %d", f.count("/api/embed"), u.Attempts, tt.calls)
			}
		})
	}
	t.Run("no inputs sends nothing", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, single(f), config.ModelsConfig{})
		vecs, _, err := c.Embed(context.Background(), "m", nil)
		if err != nil || len(vecs) != 0 || f.count("/api/embed") != 0 {
			t.Errorf("got %v, %v after %d requests", vecs, err, f.count("/api/embed"))
		}
	})
	t.Run("no model", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, single(f), config.ModelsConfig{})
		if _, _, err := c.Embed(context.Background(), "", []string{"a"}); !errors.Is(err, ErrOther) {
			t.Errorf("err = %v", err)
		}
	})
}
