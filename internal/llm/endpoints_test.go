package llm

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func pulledModels(names ...string) []api.ListModelResponse {
	var out []api.ListModelResponse
	for _, n := range names {
		out = append(out, api.ListModelResponse{Name: n, Model: n})
	}
	return out
}

func loaded(name string, vram int64) api.ProcessModelResponse {
	return api.ProcessModelResponse{Name: name, Model: name, SizeVRAM: vram, Size: vram}
}

func TestPickEndpoint(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name         string
		aPS, bPS     []api.ProcessModelResponse
		aTags, bTags []api.ListModelResponse
		want         string
	}{
		{"model held by B goes to B",
			nil, []api.ProcessModelResponse{loaded("qwen3:8b", 6*gib)},
			pulledModels("qwen3:8b"), pulledModels("qwen3:8b"), "b"},
		{"held wins over pulled even with more memory in use",
			nil, []api.ProcessModelResponse{loaded("qwen3:8b", 6*gib), loaded("gemma3:12b", 9*gib)},
			pulledModels("qwen3:8b"), nil, "b"},
		{"pulled only on A goes to A",
			nil, nil, pulledModels("qwen3:8b"), pulledModels("gemma3:12b"), "a"},
		{"pulled on both goes to the one with more free memory",
			[]api.ProcessModelResponse{loaded("gemma3:12b", 9*gib)}, nil,
			pulledModels("qwen3:8b", "gemma3:12b"), pulledModels("qwen3:8b"), "b"},
		{"untagged name matches :latest",
			nil, []api.ProcessModelResponse{loaded("nomic-embed-text:latest", gib)},
			nil, nil, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newFake(t), newFake(t)
			a.ps, a.tags, b.ps, b.tags = tt.aPS, tt.aTags, tt.bPS, tt.bTags
			c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{})
			model := "qwen3:8b"
			if strings.HasPrefix(tt.name, "untagged") {
				model = "nomic-embed-text"
			}
			resp, err := c.Chat(context.Background(), Request{Model: model, Messages: userMsg("x")})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Usage.Endpoint != tt.want {
				t.Errorf("ran on %q, want %q", resp.Usage.Endpoint, tt.want)
			}
			wantA, wantB := 0, 1
			if tt.want == "a" {
				wantA, wantB = 1, 0
			}
			if a.count("/api/chat") != wantA || b.count("/api/chat") != wantB {
				t.Errorf("chat calls a=%d b=%d", a.count("/api/chat"), b.count("/api/chat"))
			}
		})
	}
}

func TestPickLeastInFlight(t *testing.T) {
	a, b := newFake(t), newFake(t)
	held := []api.ProcessModelResponse{loaded("m:latest", 1)}
	a.ps, b.ps = held, held
	release := make(chan struct{})
	started := make(chan struct{})
	a.chat = func(w http.ResponseWriter, r *http.Request, n int) {
		close(started)
		<-release
		writeChunks(w, done("a", "stop"))
	}
	c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{})
	first := make(chan error, 1)
	go func() {
		_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
		first <- err
	}()
	<-started
	resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("y")})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Endpoint != "b" {
		t.Errorf("second call ran on %q while a was busy, want b", resp.Usage.Endpoint)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestPickSkipsUnreachableAndRecovers(t *testing.T) {
	deadA := deadURL(t)
	b := newFake(t)
	b.tags = pulledModels("m:latest")
	clock := newClock()
	c := newClient(t, []endpointURL{{"a", deadA}, {"b", b.URL()}}, config.ModelsConfig{}, WithClock(clock.Now))

	resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Endpoint != "b" {
		t.Fatalf("ran on %q, want b", resp.Usage.Endpoint)
	}
	st := c.Endpoints()
	if st[0].Healthy || !st[1].Healthy || !strings.Contains(st[0].LastError, "refused") {
		t.Fatalf("status = %+v, want a down, b healthy", st)
	}

	// A comes up on the same address holding the model; while its down
	// window lasts it is still skipped, after it the model goes to A.
	a := newFake(t)
	a.ps = []api.ProcessModelResponse{loaded("m:latest", 1)}
	ln, err := net.Listen("tcp", strings.TrimPrefix(deadA, "http://"))
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", deadA, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	if resp, _ := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")}); resp == nil || resp.Usage.Endpoint != "b" {
		t.Fatalf("within the down window the call should stay on b, got %+v", resp)
	}
	if a.count("/api/ps") != 0 {
		t.Errorf("a was probed %d times while marked down", a.count("/api/ps"))
	}
	clock.Advance(downMin + time.Second)
	resp, err = c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Endpoint != "a" || !c.Endpoints()[0].Healthy {
		t.Errorf("after recovery ran on %q, status %+v", resp.Usage.Endpoint, c.Endpoints()[0])
	}
}

func TestPickFailures(t *testing.T) {
	t.Run("not pulled anywhere", func(t *testing.T) {
		a, b := newFake(t), newFake(t)
		a.tags, b.tags = pulledModels("other:1b"), nil
		c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{})
		_, err := c.Chat(context.Background(), Request{Model: "qwen3:8b", Messages: userMsg("x")})
		var e *Error
		if !errors.As(err, &e) || e.Class != ClassModelNotFound {
			t.Fatalf("err = %v, want model not found", err)
		}
		if want := "model qwen3:8b is not pulled on endpoint a, b — run `ollama pull qwen3:8b`"; e.Message != want {
			t.Errorf("message = %q, want %q", e.Message, want)
		}
		if a.count("/api/chat")+b.count("/api/chat") != 0 {
			t.Error("a chat was sent although no endpoint has the model")
		}
	})
	t.Run("all unreachable", func(t *testing.T) {
		u1, u2 := deadURL(t), deadURL(t)
		c := newClient(t, []endpointURL{{"a", u1}, {"b", u2}}, config.ModelsConfig{})
		_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
		var e *Error
		if !errors.As(err, &e) || e.Class != ClassUnreachable {
			t.Fatalf("err = %v, want unreachable", err)
		}
		if want := "ollama not reachable at " + u1 + ", " + u2 + " — is `ollama serve` running?"; e.Message != want {
			t.Errorf("message = %q, want %q", e.Message, want)
		}
	})
	t.Run("stale residency fails over to the next endpoint", func(t *testing.T) {
		a, b := newFake(t), newFake(t)
		a.ps = []api.ProcessModelResponse{loaded("m:latest", 1)}
		a.chat = func(w http.ResponseWriter, r *http.Request, n int) {
			writeError(w, http.StatusNotFound, `model "m" not found, try pulling it first`)
		}
		b.tags = pulledModels("m")
		c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{})
		resp, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Usage.Endpoint != "b" || resp.Usage.Attempts != 2 || a.count("/api/chat") != 1 {
			t.Errorf("ran on %q after %d attempts (a saw %d)", resp.Usage.Endpoint, resp.Usage.Attempts, a.count("/api/chat"))
		}
	})
}

func TestResidencyCache(t *testing.T) {
	a, b := newFake(t), newFake(t)
	a.ps = []api.ProcessModelResponse{loaded("m:latest", 1)}
	clock := newClock()
	c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{},
		WithClock(clock.Now), WithResidencyTTL(2*time.Second, 30*time.Second))
	call := func() {
		t.Helper()
		if _, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	call()
	if a.count("/api/ps") != 1 || b.count("/api/ps") != 1 || b.count("/api/tags") != 1 {
		t.Errorf("within the TTL: ps a=%d b=%d tags b=%d, want 1 each", a.count("/api/ps"), b.count("/api/ps"), b.count("/api/tags"))
	}
	clock.Advance(3 * time.Second)
	call()
	if a.count("/api/ps") != 2 || b.count("/api/tags") != 1 {
		t.Errorf("after the ps TTL: ps a=%d tags b=%d, want 2 and 1", a.count("/api/ps"), b.count("/api/tags"))
	}
}

func TestSingleEndpointIsNotProbed(t *testing.T) {
	f := newFake(t)
	c := newClient(t, single(f), config.ModelsConfig{})
	if _, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")}); err != nil {
		t.Fatal(err)
	}
	if f.count("/api/ps")+f.count("/api/tags") != 0 {
		t.Errorf("single endpoint probed: ps=%d tags=%d", f.count("/api/ps"), f.count("/api/tags"))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		eps  []config.EndpointConfig
		want string
	}{
		{"no endpoints", nil, "no ollama endpoints configured"},
		{"bad url", []config.EndpointConfig{{Name: "x", URL: "127.0.0.1:11434"}}, `url "127.0.0.1:11434" is not an http(s) URL`},
		{"duplicate name", []config.EndpointConfig{{Name: "x", URL: "http://a:1"}, {Name: "x", URL: "http://b:1"}}, `name "x" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(config.OllamaConfig{Endpoints: tt.eps}, config.ModelsConfig{}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestModelKey(t *testing.T) {
	for in, want := range map[string]string{
		"nomic-embed-text":                     "nomic-embed-text:latest",
		"qwen3:8b":                             "qwen3:8b",
		" qwen3:8b ":                           "qwen3:8b",
		"Qwen3:8B":                             "qwen3:8b",
		"registry.ollama.ai/library/gemma3:4b": "gemma3:4b",
		"hf.co/org/model":                      "hf.co/org/model:latest",
		"localhost:5000/m":                     "localhost:5000/m:latest",
		"":                                     "",
	} {
		if got := ModelKey(in); got != want {
			t.Errorf("ModelKey(%q) = %q, want %q", in, got, want)
		}
	}
}
