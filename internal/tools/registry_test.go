package tools

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTool is a Tool whose behaviour the test sets.
type fakeTool struct {
	spec Spec
	call func(ctx context.Context, args json.RawMessage) (Result, error)
}

func (f *fakeTool) Spec() Spec { return f.spec }
func (f *fakeTool) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	if f.call == nil {
		return Result{Output: json.RawMessage(`{"ok":true}`)}, nil
	}
	return f.call(ctx, args)
}

const weatherSchema = `{"type":"object","properties":{
	"city":{"type":"string","minLength":1},
	"units":{"type":"string","enum":["c","f"]},
	"days":{"type":"integer","minimum":1,"maximum":7},
	"stops":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}},
	"required":["city"],"additionalProperties":false}`

func weather() *fakeTool {
	return &fakeTool{spec: Spec{Name: "get_weather", Description: "Weather for a city.", ArgsSchema: json.RawMessage(weatherSchema)}}
}

func TestRegisterRejects(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"bad name", Spec{Name: "Get-Weather", Description: "x"}, "lower_snake_case"},
		{"no description", Spec{Name: "a"}, "needs a description"},
		{"bad approval", Spec{Name: "a", Description: "x", Approval: "maybe"}, "approval"},
		{"negative concurrency", Spec{Name: "a", Description: "x", Concurrency: -1}, "concurrency"},
		{"schema not an object", Spec{Name: "a", Description: "x", ArgsSchema: json.RawMessage(`{"type":"string"}`)}, "must describe an object"},
		{"schema not JSON", Spec{Name: "a", Description: "x", ArgsSchema: json.RawMessage(`{"type":`)}, "not valid JSON"},
		{"schema does not compile", Spec{Name: "a", Description: "x", ArgsSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"nope"}}}`)}, "does not compile"},
		{"schema reads a file", Spec{Name: "a", Description: "x", ArgsSchema: json.RawMessage(`{"type":"object","properties":{"n":{"$ref":"file:///etc/passwd"}}}`)}, "does not compile"},
		{"schema fetches a URL", Spec{Name: "a", Description: "x", ArgsSchema: json.RawMessage(`{"type":"object","$ref":"http://127.0.0.1:1/s.json"}`)}, "does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewRegistry(nil).Register(&fakeTool{spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	r := NewRegistry(nil)
	if err := r.Register(weather()); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(weather()); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate: err = %v", err)
	}
}

func TestListGetSpecDefaults(t *testing.T) {
	r := NewRegistry(nil)
	for _, n := range []string{"zeta", "alpha", "mid"} {
		if err := r.Register(&fakeTool{spec: Spec{Name: n, Description: n + " tool"}}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, s := range r.List() {
		names = append(names, s.Name)
		if s.Approval != ApprovalNone || s.Concurrency != DefaultConcurrency || s.Timeout != DefaultTimeout {
			t.Errorf("%s: defaults not applied: %+v", s.Name, s)
		}
		if string(s.ArgsSchema) != `{"type":"object"}` {
			t.Errorf("%s: empty schema became %s", s.Name, s.ArgsSchema)
		}
	}
	if !slices.Equal(names, []string{"alpha", "mid", "zeta"}) || !slices.Equal(r.Names(), names) {
		t.Fatalf("List order = %v, Names = %v", names, r.Names())
	}
	if _, ok := r.Get("mid"); !ok {
		t.Fatal("Get(mid) missing")
	}
	if _, ok := r.Get("nope"); ok {
		t.Fatal("Get(nope) found")
	}
}

func TestArgsSchemaIsACopy(t *testing.T) {
	r := NewRegistry(nil)
	if err := r.Register(weather()); err != nil {
		t.Fatal(err)
	}
	m, ok := r.ArgsSchema("get_weather")
	if !ok || m["type"] != "object" {
		t.Fatalf("ArgsSchema = %v, %v", m, ok)
	}
	m["type"] = "string"
	m2, _ := r.ArgsSchema("get_weather")
	if m2["type"] != "object" {
		t.Fatal("modifying the returned schema changed the registry's")
	}
	if _, ok := r.ArgsSchema("nope"); ok {
		t.Fatal("unknown tool has a schema")
	}
}

func TestValidateMessages(t *testing.T) {
	r := NewRegistry(nil)
	if err := r.Register(weather()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args string
		want []string // problems, exactly
	}{
		{"ok", `{"city":"Austin, TX"}`, nil},
		{"ok with all", `{"city":"Oslo","units":"c","days":3,"stops":[{"name":"a"}]}`, nil},
		{"missing", `{}`, []string{"args.city: missing property"}},
		{"null args", `null`, []string{"args.city: missing property"}},
		{"empty args", ``, []string{"args.city: missing property"}},
		{"wrong type", `{"city":5}`, []string{"args.city: is number, must be string"}},
		{"unknown property", `{"city":"x","town":"y"}`, []string{"args.town: unknown property, remove it"}},
		{"enum", `{"city":"x","units":"k"}`, []string{`args.units: value must be one of 'c', 'f'`}},
		{"range", `{"city":"x","days":9}`, []string{"args.days: maximum: got 9, want 7"}},
		{"nested", `{"city":"x","stops":[{"name":"a"},{}]}`, []string{"args.stops[1].name: missing property"}},
		{"several", `{"units":"k","extra":1}`, []string{"args.city: missing property", "args.extra: unknown property, remove it", "args.units: value must be one of 'c', 'f'"}},
		{"not json", `{"city":`, []string{"args: not valid JSON"}},
		{"not an object", `["Austin"]`, []string{"args: is array, must be object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate("get_weather", json.RawMessage(tt.args))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ae *ArgsError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidArgs) || ae.Tool != "get_weather" {
				t.Fatalf("err = %#v, want *ArgsError wrapping ErrInvalidArgs", err)
			}
			if len(ae.Problems) != len(tt.want) {
				t.Fatalf("problems = %q, want %q", ae.Problems, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(ae.Problems[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, ae.Problems[i], w)
				}
			}
		})
	}
	err := r.Validate("get_wether", json.RawMessage(`{}`))
	wantErr(t, err, ErrUnknownTool, `"get_wether"`, "get_weather")
}

func TestSubsetSharesLimits(t *testing.T) {
	r := NewRegistry(nil)
	w := weather()
	w.spec.Concurrency = 1
	if err := r.Register(w); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(Calc{}); err != nil {
		t.Fatal(err)
	}
	sub, err := r.Subset([]string{"get_weather"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sub.Names(), []string{"get_weather"}) {
		t.Fatalf("subset names = %v", sub.Names())
	}
	if err := sub.Validate("calc", json.RawMessage(`{"expression":"1"}`)); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("calc in subset: %v", err)
	}
	if _, err := r.Subset([]string{"get_weather", "nope"}); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("unknown in subset: %v", err)
	}
	release, err := r.Acquire(context.Background(), "get_weather")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Acquire(ctx, "get_weather"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("subset acquired a slot the parent holds: %v", err)
	}
	release()
	release() // harmless
	rel2, err := sub.Acquire(context.Background(), "get_weather")
	if err != nil {
		t.Fatal(err)
	}
	rel2()
}

func TestAcquireBoundsConcurrency(t *testing.T) {
	r := NewRegistry(nil)
	var running, peak atomic.Int32
	tool := &fakeTool{spec: Spec{Name: "slow", Description: "slow", Concurrency: 2}, call: func(ctx context.Context, _ json.RawMessage) (Result, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return Result{Output: json.RawMessage(`{}`)}, nil
	}}
	if err := r.Register(tool); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := r.Call(context.Background(), "slow", nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency = %d, want 2", p)
	}
	if _, err := r.Acquire(context.Background(), "nope"); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("Acquire(nope) = %v", err)
	}
}

func TestCallValidatesAndTimesOut(t *testing.T) {
	r := NewRegistry(nil)
	called := false
	w := weather()
	w.call = func(ctx context.Context, args json.RawMessage) (Result, error) {
		called = true
		return Result{Output: json.RawMessage(`{"temp":21}`)}, nil
	}
	slow := &fakeTool{spec: Spec{Name: "slow", Description: "slow", Timeout: 30 * time.Millisecond}, call: func(ctx context.Context, _ json.RawMessage) (Result, error) {
		<-ctx.Done()
		return Result{}, ctx.Err()
	}}
	bad := &fakeTool{spec: Spec{Name: "bad", Description: "bad"}, call: func(context.Context, json.RawMessage) (Result, error) {
		return Result{Output: json.RawMessage(`not json`)}, nil
	}}
	for _, tool := range []Tool{w, slow, bad} {
		if err := r.Register(tool); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Call(context.Background(), "get_weather", json.RawMessage(`{"town":"x"}`))
	wantErr(t, err, ErrInvalidArgs, "args.city: missing property")
	if called {
		t.Fatal("tool ran with invalid args")
	}
	res, err := r.Call(context.Background(), "get_weather", json.RawMessage(`{"city":"x"}`))
	if err != nil || string(res.Output) != `{"temp":21}` {
		t.Fatalf("Call = %s, %v", res.Output, err)
	}
	_, err = r.Call(context.Background(), "slow", nil)
	wantErr(t, err, context.DeadlineExceeded, "slow")
	_, err = r.Call(context.Background(), "bad", nil)
	if err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("non-JSON output: %v", err)
	}
	_, err = r.Call(context.Background(), "nope", nil)
	wantErr(t, err, ErrUnknownTool)
}

func TestSetApproval(t *testing.T) {
	r := NewRegistry(nil)
	if err := r.Register(weather()); err != nil {
		t.Fatal(err)
	}
	if err := r.SetApproval("get_weather", ApprovalRequired); err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Spec("get_weather"); s.Approval != ApprovalRequired {
		t.Fatalf("approval = %q", s.Approval)
	}
	if err := r.SetApproval("get_weather", "sometimes"); err == nil {
		t.Fatal("bad approval accepted")
	}
	if err := r.SetApproval("nope", ApprovalNone); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestCallTimeoutIsDeadlineExceeded(t *testing.T) {
	// A tool that ignores its context's error and reports its own is still
	// classified as a timeout, so the executor retries it as transient.
	r := NewRegistry(nil)
	tool := &fakeTool{spec: Spec{Name: "stubborn", Description: "x", Timeout: 20 * time.Millisecond}, call: func(ctx context.Context, _ json.RawMessage) (Result, error) {
		<-ctx.Done()
		return Result{}, errors.New("connection reset")
	}}
	if err := r.Register(tool); err != nil {
		t.Fatal(err)
	}
	_, err := r.Call(context.Background(), "stubborn", nil)
	wantErr(t, err, context.DeadlineExceeded, "timed out after 20ms", "connection reset")
}
