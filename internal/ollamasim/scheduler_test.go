package ollamasim

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

func psNames(t *testing.T, c *api.Client) map[string]api.ProcessModelResponse {
	t.Helper()
	ps, err := c.ListRunning(t.Context())
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	out := map[string]api.ProcessModelResponse{}
	for _, m := range ps.Models {
		out[m.Name] = m
	}
	return out
}

func keep(d time.Duration) *api.Duration { return &api.Duration{Duration: d} }

func TestEvictionWhenModelsCannotCoReside(t *testing.T) {
	s, c := startSim(t, Config{VRAM: 10 * gb})
	mustChat(t, c, &api.ChatRequest{Model: "gemma3:12b", Messages: userMsg("a")})
	mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("b")})
	ps := psNames(t, c)
	if _, ok := ps["gemma3:12b"]; ok || len(ps) != 1 {
		t.Fatalf("gemma3:12b (8.1 GB) and qwen3:8b (5.2 GB) cannot share 10 GB; ps = %v", ps)
	}
	if st := s.Stats().Models; st["gemma3:12b"].Evictions != 1 || st["qwen3:8b"].Loads != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestEvictionOrderShortestKeepAliveFirst(t *testing.T) {
	s, c := startSim(t, Config{VRAM: 6 * gb, Now: newFakeClock().Now})
	mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("a"), KeepAlive: keep(10 * time.Minute)}) // 2.0 GB
	mustChat(t, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("b"), KeepAlive: keep(time.Minute)})       // 1.4 GB
	mustChat(t, c, &api.ChatRequest{Model: "gemma3:4b", Messages: userMsg("c")})                                      // 3.3 GB
	ps := psNames(t, c)
	if _, ok := ps["qwen3:1.7b"]; ok {
		t.Fatalf("qwen3:1.7b had the shortest keep_alive and should be evicted; ps = %v", ps)
	}
	if _, ok := ps["llama3.2:3b"]; !ok {
		t.Fatalf("llama3.2:3b should stay; ps = %v", ps)
	}
	if ev := s.Stats().Models["llama3.2:3b"].Evictions; ev != 0 {
		t.Fatalf("llama3.2:3b evicted %d times", ev)
	}
}

func TestKeepAliveExpiry(t *testing.T) {
	clock := newFakeClock()
	s, c := startSim(t, Config{Now: clock.Now})

	mustChat(t, c, &api.ChatRequest{Model: "granite4:micro", Messages: userMsg("x"), KeepAlive: keep(time.Minute)})
	ps := psNames(t, c)
	if got := ps["granite4:micro"].ExpiresAt; !got.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("expires_at = %v, want now+1m", got)
	}
	clock.Advance(59 * time.Second)
	if _, ok := psNames(t, c)["granite4:micro"]; !ok {
		t.Fatal("unloaded before keep_alive ran out")
	}
	clock.Advance(2 * time.Second)
	if _, ok := psNames(t, c)["granite4:micro"]; ok {
		t.Fatal("still loaded after keep_alive")
	}
	if st := s.Stats().Models["granite4:micro"]; st.Expirations != 1 || st.Unloads != 1 {
		t.Fatalf("stats = %+v", st)
	}

	t.Run("default is 5m", func(t *testing.T) {
		mustChat(t, c, &api.ChatRequest{Model: "phi4-mini", Messages: userMsg("x")})
		if got := psNames(t, c)["phi4-mini:latest"].ExpiresAt; !got.Equal(clock.Now().Add(5 * time.Minute)) {
			t.Fatalf("expires_at = %v", got)
		}
	})
	t.Run("keep_alive 0 unloads after the request", func(t *testing.T) {
		mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x"), KeepAlive: keep(0)})
		if _, ok := psNames(t, c)["llama3.2:3b"]; ok {
			t.Fatal("still loaded")
		}
	})
	t.Run("negative keep_alive never expires", func(t *testing.T) {
		mustChat(t, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("x"), KeepAlive: keep(-1)})
		clock.Advance(1000 * time.Hour)
		m, ok := psNames(t, c)["qwen3:1.7b"]
		if !ok || m.ExpiresAt.Year() < 2200 {
			t.Fatalf("loaded=%v expires_at=%v", ok, m.ExpiresAt)
		}
	})
	t.Run("generate empty prompt loads, keep_alive 0 unloads", func(t *testing.T) {
		var reasons []string
		fn := func(r api.GenerateResponse) error { reasons = append(reasons, r.DoneReason); return nil }
		if err := c.Generate(t.Context(), &api.GenerateRequest{Model: "gemma3:4b"}, fn); err != nil {
			t.Fatal(err)
		}
		if _, ok := psNames(t, c)["gemma3:4b"]; !ok {
			t.Fatal("empty prompt did not load the model")
		}
		if err := c.Generate(t.Context(), &api.GenerateRequest{Model: "gemma3:4b", KeepAlive: keep(0)}, fn); err != nil {
			t.Fatal(err)
		}
		if _, ok := psNames(t, c)["gemma3:4b"]; ok {
			t.Fatal("keep_alive 0 did not unload")
		}
		if strings.Join(reasons, ",") != "load,unload" {
			t.Fatalf("done reasons %v", reasons)
		}
	})
	t.Run("chat without messages and keep_alive 0 unloads", func(t *testing.T) {
		r, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:1.7b", KeepAlive: keep(0)})
		if err != nil || r.DoneReason != "unload" {
			t.Fatalf("err=%v done_reason=%q", err, r.DoneReason)
		}
		if _, ok := psNames(t, c)["qwen3:1.7b"]; ok {
			t.Fatal("still loaded")
		}
	})
}

func TestPartialOffloadAndOutOfMemory(t *testing.T) {
	s, c := startSim(t, Config{VRAM: 4 * gb, SystemRAM: 16 * gb})
	r := mustChat(t, c, &api.ChatRequest{Model: "gemma3:12b", Messages: userMsg("x")})
	m := psNames(t, c)["gemma3:12b"]
	if m.SizeVRAM != 4*gb || m.Size != 8_100*mb {
		t.Fatalf("size=%d size_vram=%d, want partial offload", m.Size, m.SizeVRAM)
	}
	full := time.Duration(float64(r.EvalCount) / 55 * float64(time.Second))
	if r.EvalDuration < 3*full {
		t.Fatalf("CPU spill should slow decode: %v vs %v on GPU", r.EvalDuration, full)
	}
	if s.Stats().Models["gemma3:12b"].PartialLoads != 1 {
		t.Fatal("partial load not counted")
	}

	_, small := startSim(t, Config{VRAM: 4 * gb, SystemRAM: 2 * gb})
	_, err := chatOnce(t, t.Context(), small, &api.ChatRequest{Model: "gemma3:12b", Messages: userMsg("x")})
	se := statusError(t, err)
	if se.StatusCode != http.StatusInternalServerError || se.ErrorMessage != "model requires more system memory (3.8 GiB) than is available (1.9 GiB)" {
		t.Fatalf("got %d %q", se.StatusCode, se.ErrorMessage)
	}
}

func TestNumCtxChangeReloads(t *testing.T) {
	s, c := startSim(t, Config{})
	mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x")})
	if got := psNames(t, c)["llama3.2:3b"].ContextLength; got != 4096 {
		t.Fatalf("context_length %d, want default 4096", got)
	}
	mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x"), Options: map[string]any{"num_ctx": 8192}})
	if got := psNames(t, c)["llama3.2:3b"].ContextLength; got != 8192 {
		t.Fatalf("context_length %d, want 8192", got)
	}
	if st := s.Stats().Models["llama3.2:3b"]; st.Loads != 2 || st.Reloads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// waitFor polls cond; the simulator has no hooks for "request is parked".
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestParallelSlotsAndQueueLimit(t *testing.T) {
	s, c := startSim(t, Config{NumParallel: 2, MaxQueue: 1, Faults: []Fault{{Class: FaultTimeout, Probability: 1}}})
	// Two requests hang in the timeout fault, holding both slots.
	hangCtx, release := context.WithCancel(t.Context())
	defer release()
	hung := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := chatOnce(t, hangCtx, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("slow")})
			hung <- err
		}()
	}
	waitFor(t, "both slots busy", func() bool { return s.Stats().FaultsInjected[FaultTimeout] == 2 })
	s.ClearFaults()

	queued := make(chan error, 1)
	go func() {
		_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("queued")})
		queued <- err
	}()
	waitFor(t, "third request queued", func() bool { return s.Pending() == 1 })

	_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("rejected")})
	se := statusError(t, err)
	if se.StatusCode != http.StatusServiceUnavailable || se.ErrorMessage != MsgMaxQueue {
		t.Fatalf("got %d %q", se.StatusCode, se.ErrorMessage)
	}

	release()
	for range 2 {
		if err := <-hung; err == nil {
			t.Error("hung request should fail when its client gives up")
		}
	}
	if err := <-queued; err != nil {
		t.Fatalf("queued request should run once a slot frees: %v", err)
	}
	st := s.Stats()
	if st.QueueRejected != 1 || st.PeakPending != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentMixedLoadIsConsistent(t *testing.T) {
	s, c := startSim(t, Config{VRAM: 8 * gb, NumParallel: 2})
	models := []string{"qwen3:8b", "gemma3:4b", "llama3.2:3b", "granite4:tiny-h"}
	errs := make(chan error, 40)
	for i := range 40 {
		go func() {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: models[i%len(models)], Messages: userMsg("hi")})
			errs <- err
		}()
	}
	for range 40 {
		if err := <-errs; err != nil {
			t.Fatalf("request failed: %v", err)
		}
	}
	var used int64
	for _, m := range psNames(t, c) {
		used += m.SizeVRAM
	}
	if used > 8*gb {
		t.Fatalf("VRAM overcommitted: %d", used)
	}
	var served int64
	for _, m := range s.Stats().Models {
		served += m.Requests
	}
	if served != 40 || s.Pending() != 0 {
		t.Fatalf("served %d, pending %d", served, s.Pending())
	}
}

func TestWaitsForBusyModelInsteadOfSpilling(t *testing.T) {
	s, c := startSim(t, Config{VRAM: 10 * gb, Faults: []Fault{{Class: FaultTimeout, Probability: 1, Model: "gemma3:12b"}}})
	busyCtx, finish := context.WithCancel(t.Context())
	busy := make(chan error, 1)
	go func() {
		_, err := chatOnce(t, busyCtx, c, &api.ChatRequest{Model: "gemma3:12b", Messages: userMsg("long job")})
		busy <- err
	}()
	waitFor(t, "gemma3:12b busy", func() bool { return s.Stats().FaultsInjected[FaultTimeout] == 1 })

	next := make(chan api.ChatResponse, 1)
	go func() {
		r, _ := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("next")})
		next <- r
	}()
	waitFor(t, "qwen3:8b waiting for VRAM", func() bool { return s.Pending() == 1 })
	if _, ok := psNames(t, c)["qwen3:8b"]; ok {
		t.Fatal("qwen3:8b loaded next to a busy model that leaves no room")
	}

	finish()
	<-busy
	r := <-next
	if !r.Done || r.LoadDuration == 0 {
		t.Fatalf("qwen3:8b should load once gemma3:12b is idle: %+v", r)
	}
	ps := psNames(t, c)
	if m, ok := ps["qwen3:8b"]; !ok || m.SizeVRAM != m.Size || len(ps) != 1 {
		t.Fatalf("ps = %+v", ps)
	}
}

func TestCPUOnlyMachine(t *testing.T) {
	_, c := startSim(t, Config{VRAM: -1, SystemRAM: 8 * gb})
	r1 := mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x")})
	mustChat(t, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("x")})
	ps := psNames(t, c)
	if len(ps) != 2 || ps["llama3.2:3b"].SizeVRAM != 0 {
		t.Fatalf("both models should sit in RAM with size_vram 0: %+v", ps)
	}
	gpu := time.Duration(float64(r1.EvalCount) / 150 * float64(time.Second))
	if r1.EvalDuration < 5*gpu {
		t.Fatalf("CPU decode %v should be much slower than GPU %v", r1.EvalDuration, gpu)
	}
}

func TestTimeScaleSleepsScaledDurations(t *testing.T) {
	models := []Model{{Name: "tick:1b", Size: 2 * gb, Family: "llama", ContextLength: 8192, Capabilities: []string{CapCompletion}, PrefillTPS: 1000, DecodeTPS: 100}}
	_, c := startSim(t, Config{Models: models, TimeScale: 0.02}) // 2 GB at 2 GB/s = 1 s load -> 20 ms
	start := time.Now()
	r := mustChat(t, c, &api.ChatRequest{Model: "tick:1b", Messages: userMsg("hello")})
	wall := time.Since(start)
	simulated := r.TotalDuration
	if simulated < time.Second {
		t.Fatalf("reported total %v should include the 1 s load", simulated)
	}
	if scaled := time.Duration(float64(simulated) * 0.02); wall < scaled {
		t.Fatalf("wall %v shorter than the scaled simulation %v", wall, scaled)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
	defer cancel()
	_, err := chatOnce(t, ctx, c, &api.ChatRequest{Model: "tick:1b", Messages: userMsg(strings.Repeat("long prompt ", 2000))})
	if err == nil {
		t.Fatal("a client deadline shorter than the scaled latency should end the request")
	}
}
