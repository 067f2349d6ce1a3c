package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testKey = "sk-test-key-1234567890abcdef"

func testRequest() Request {
	return Request{Model: testModel, SystemPrompt: "You plan.", UserMessage: "Plan a trip to Oslo",
		Schema: json.RawMessage(testSchema), MaxTokens: 777}
}

func newTestProvider(t *testing.T, f *fakeRemote, kind string) Provider {
	t.Helper()
	p, err := NewProvider(testConfig(f, kind), ProviderOptions{Key: testKey, Logger: discardLogger(),
		Client: &http.Client{Timeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProviderWireFormat(t *testing.T) {
	for _, tc := range []struct {
		kind, path string
		header     func(h http.Header) string // "" when the headers are right
		body       func(m map[string]any) string
	}{
		{
			kind: "openai", path: "/v1/chat/completions",
			header: func(h http.Header) string {
				if h.Get("Authorization") != "Bearer "+testKey {
					return "Authorization = " + h.Get("Authorization")
				}
				return ""
			},
			body: func(m map[string]any) string {
				rf, _ := m["response_format"].(map[string]any)
				js, _ := rf["json_schema"].(map[string]any)
				msgs, _ := m["messages"].([]any)
				switch {
				case rf["type"] != "json_schema":
					return "response_format.type is not json_schema"
				case js["schema"] == nil || js["name"] != "plan":
					return "json_schema lacks the schema or its name"
				case m["max_tokens"] != 777.0:
					return "max_tokens missing"
				case len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["content"] != "Plan a trip to Oslo":
					return "messages are not [system, user]"
				case m["stream"] != false:
					return "stream is not false"
				}
				return ""
			},
		},
		{
			kind: "anthropic", path: "/v1/messages",
			header: func(h http.Header) string {
				if h.Get("x-api-key") != testKey || h.Get("anthropic-version") != AnthropicVersion || h.Get("Authorization") != "" {
					return "x-api-key/anthropic-version wrong or Authorization sent"
				}
				return ""
			},
			body: func(m map[string]any) string {
				tools, _ := m["tools"].([]any)
				choice, _ := m["tool_choice"].(map[string]any)
				msgs, _ := m["messages"].([]any)
				switch {
				case m["system"] != "You plan.":
					return "system is not top level"
				case len(tools) != 1 || tools[0].(map[string]any)["input_schema"] == nil:
					return "plan tool with input_schema missing"
				case choice["type"] != "tool" || choice["name"] != "submit_plan":
					return "tool_choice does not force submit_plan"
				case m["max_tokens"] != 777.0:
					return "max_tokens missing"
				case len(msgs) != 1 || msgs[0].(map[string]any)["role"] != "user":
					return "messages are not [user]"
				}
				return ""
			},
		},
		{
			kind: "ollama", path: "/api/chat",
			header: func(h http.Header) string {
				if h.Get("Authorization") != "Bearer "+testKey {
					return "Authorization = " + h.Get("Authorization")
				}
				return ""
			},
			body: func(m map[string]any) string {
				opts, _ := m["options"].(map[string]any)
				format, _ := m["format"].(map[string]any)
				switch {
				case format["type"] != "object":
					return "format is not the schema"
				case m["stream"] != false:
					return "stream is not false"
				case opts["num_predict"] != 777.0:
					return "options.num_predict missing"
				}
				return ""
			},
		},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			f := newFakeRemote(t)
			p := newTestProvider(t, f, tc.kind)
			if p.Name() != tc.kind || p.Destination() != strings.TrimPrefix(f.srv.URL, "http://") {
				t.Fatalf("Name/Destination = %q %q", p.Name(), p.Destination())
			}
			resp, err := Plan(context.Background(), p, testRequest())
			if err != nil {
				t.Fatal(err)
			}
			rec := f.recorded()
			if len(rec) != 1 || rec[0].Path != tc.path {
				t.Fatalf("recorded %d requests, path %v", len(rec), rec)
			}
			if rec[0].Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", rec[0].Header.Get("Content-Type"))
			}
			if msg := tc.header(rec[0].Header); msg != "" {
				t.Error(msg)
			}
			var m map[string]any
			if err := json.Unmarshal(rec[0].Body, &m); err != nil {
				t.Fatal(err)
			}
			if m["model"] != testModel {
				t.Errorf("model = %v", m["model"])
			}
			if msg := tc.body(m); msg != "" {
				t.Errorf("%s: %s", msg, rec[0].Body)
			}
			// Encode is exactly what went on the wire.
			want, _ := p.Encode(testRequest())
			if string(want) != string(rec[0].Body) {
				t.Errorf("sent body differs from Encode:\n%s\n%s", rec[0].Body, want)
			}
			var plan map[string]any
			if err := json.Unmarshal([]byte(resp.Content), &plan); err != nil || plan["goal"] != "Plan a trip to Oslo" {
				t.Errorf("content = %q, %v", resp.Content, err)
			}
			if resp.Usage.InputTokens != len(rec[0].Body)/4 || resp.Usage.OutputTokens != len(resp.Content)/4 || resp.Usage.OutputTokens == 0 {
				t.Errorf("usage = %+v, body %d, content %d", resp.Usage, len(rec[0].Body), len(resp.Content))
			}
			if resp.BytesIn == 0 {
				t.Error("BytesIn not counted")
			}
		})
	}
}

func TestProviderErrors(t *testing.T) {
	for _, kind := range []string{"openai", "anthropic", "ollama"} {
		for _, tc := range []struct {
			name      string
			setup     func(f *fakeRemote)
			wantKind  ErrorKind
			status    int
			transient bool
			contains  string
		}{
			{"429", func(f *fakeRemote) { f.failCode, f.failLeft = 429, -1 }, KindTransient, 429, true, "Rate limit reached"},
			{"500", func(f *fakeRemote) { f.failCode, f.failLeft = 500, -1 }, KindTransient, 500, true, "internal server error"},
			{"401", func(f *fakeRemote) { f.failCode, f.failLeft = 401, -1 }, KindAuth, 401, false, "API key was refused"},
			{"reset", func(f *fakeRemote) { f.reset = true }, KindTransient, 0, true, ""},
			{"timeout", func(f *fakeRemote) { f.hang = true }, KindTransient, 0, true, "timed out"},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				f := newFakeRemote(t)
				f.set(tc.setup)
				cfg := testConfig(f, kind)
				cfg.APIKeyEnv = "AGENTD_TEST_REMOTE_KEY"
				p, err := NewProvider(cfg, ProviderOptions{Key: testKey, Logger: discardLogger(),
					Client: &http.Client{Timeout: 300 * time.Millisecond}})
				if err != nil {
					t.Fatal(err)
				}
				_, err = Plan(context.Background(), p, testRequest())
				var re *RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("err = %v, want *RemoteError", err)
				}
				if re.Kind != tc.wantKind || re.Status != tc.status || IsTransient(err) != tc.transient || !re.Sent {
					t.Errorf("err = %+v", re)
				}
				if !strings.Contains(err.Error(), tc.contains) {
					t.Errorf("err = %q, want it to contain %q", err, tc.contains)
				}
				if tc.status == 401 && !strings.Contains(err.Error(), "AGENTD_TEST_REMOTE_KEY") {
					t.Errorf("401 message does not say where the key comes from: %q", err)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error leaks the key: %q", err)
				}
			})
		}
	}
}

func TestProviderConnectionRefusedIsNotSent(t *testing.T) {
	f := newFakeRemote(t)
	cfg := testConfig(f, "openai")
	f.srv.Close()
	p, err := NewProvider(cfg, ProviderOptions{Key: testKey, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Plan(context.Background(), p, testRequest())
	var re *RemoteError
	if !errors.As(err, &re) || re.Sent || !re.Transient() {
		t.Fatalf("err = %#v; want a transient error with Sent false", err)
	}
}

func TestNewProviderNeedsKnownProviderAndKey(t *testing.T) {
	f := newFakeRemote(t)
	cfg := testConfig(f, "nope")
	if _, err := NewProvider(cfg, ProviderOptions{Key: "k"}); err == nil || !strings.Contains(err.Error(), "openai, anthropic or ollama") {
		t.Errorf("unknown provider: %v", err)
	}
	cfg = testConfig(f, "anthropic")
	cfg.APIKeyEnv = "AGENTD_TEST_UNSET_KEY_VAR"
	if _, err := NewProvider(cfg, ProviderOptions{}); err == nil || !strings.Contains(err.Error(), "AGENTD_TEST_UNSET_KEY_VAR") {
		t.Errorf("missing key: %v", err)
	}
	t.Setenv("AGENTD_TEST_SET_KEY_VAR", "sk-from-env-0123456789")
	cfg.APIKeyEnv = "AGENTD_TEST_SET_KEY_VAR"
	p, err := NewProvider(cfg, ProviderOptions{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Plan(context.Background(), p, testRequest()); err != nil {
		t.Fatal(err)
	}
	if got := f.recorded()[0].Header.Get("x-api-key"); got != "sk-from-env-0123456789" {
		t.Errorf("key from env not sent: %q", got)
	}
}

func TestProviderTruncatedPlan(t *testing.T) {
	for _, kind := range []string{"openai", "anthropic", "ollama"} {
		t.Run(kind, func(t *testing.T) {
			f := newFakeRemote(t)
			f.set(func(f *fakeRemote) { f.truncate = true })
			resp, err := Plan(context.Background(), newTestProvider(t, f, kind), testRequest())
			var re *RemoteError
			if !errors.As(err, &re) || re.Kind != KindResponse || !strings.Contains(err.Error(), "fallback.max_tokens") {
				t.Fatalf("err = %v", err)
			}
			if resp.Usage.OutputTokens == 0 {
				t.Error("usage of a truncated answer not parsed: it is still billed")
			}
		})
	}
}

func TestSecretNeverFormats(t *testing.T) {
	s := newSecret(testKey)
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("k", "key", s, "struct", struct{ K secret }{s})
	b, _ := json.Marshal(struct{ K secret }{s})
	out := fmt.Sprint(s) + fmt.Sprintf("%v %+v %#v %s", s, s, s, s) + buf.String() + string(b)
	if strings.Contains(out, testKey) || s.reveal() != testKey {
		t.Errorf("formatted: %s", out)
	}
	if newSecret("").set() || newSecret("").reveal() != "" {
		t.Error("empty secret is set")
	}
}
