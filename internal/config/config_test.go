package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	// nil and empty collections mean the same thing in a config.
	s := strings.ReplaceAll(string(b), "null", "[]")
	return strings.ReplaceAll(s, "{}", "[]")
}

func TestExampleParsesAndMatchesDefaults(t *testing.T) {
	f, err := os.Open("../../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := Parse(f, "config.toml.example")
	if err != nil {
		t.Fatalf("example does not parse: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("example does not validate: %v", err)
	}
	if got, want := mustJSON(t, cfg), mustJSON(t, Default()); got != want {
		t.Errorf("config.toml.example differs from Default():\nexample: %s\ndefault: %s", got, want)
	}
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		is      error
		mention []string
	}{
		{"malformed", "[server]\nlisten = \"127.0.0.1:1\"\nauth = token\n", ErrSyntax, []string{"test.toml:3"}},
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\n\n[fallback.caps]\nday_usdd = 3\n", ErrUnknownKey, []string{"fallback.caps.day_usdd", "test.toml:5"}},
		{"unknown section", "[serverr]\nx = 1\n", ErrUnknownKey, []string{"serverr"}},
		{"bad duration", "[executor]\nstep_timeout = \"5 mins\"\n", ErrInvalid, []string{"5 mins", "\"5m\""}},
		{"bad size", "[executor]\ntool_output_cap = \"lots\"\n", ErrInvalid, []string{"lots", "512MiB"}},
		{"wrong type", "[executor]\nmax_concurrent_runs = \"four\"\n", ErrInvalid, []string{"test.toml:2: executor.max_concurrent_runs: must be a whole number, got the string \"four\""}},
		{"two wrong types", "[executor]\nqueue_size = 1.5\n[logging]\nlevel = 3\n", ErrInvalid, []string{"test.toml:2: executor.queue_size", "test.toml:4: logging.level: must be a string, got the whole number 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.toml), "test.toml")
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestValidateNamesField(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		mention []string
	}{
		{"negative budget", "[fallback.caps]\nday_usd = -1.0\n", []string{"fallback.caps.day_usd", "-1", "zero or more"}},
		{"bad level", "[logging]\nlevel = \"loud\"\n", []string{"logging.level", `"loud"`, `"debug"`}},
		{"no auth on lan", "[server]\nlisten = \"0.0.0.0:8484\"\nauth = \"none\"\n", []string{"server.auth", "loopback"}},
		{"bad listen", "[server]\nlisten = \"8484\"\n", []string{"server.listen", "host:port"}},
		{"lan without tls", "[server]\nlisten = \"0.0.0.0:8484\"\n", []string{"server.tls_cert", "server.tls_key", "0.0.0.0:8484", "server.insecure_plaintext"}},
		{"cert without key", "[server]\ntls_cert = \"/etc/agentd/cert.pem\"\n", []string{"server.tls_cert", "/etc/agentd/cert.pem", "server.tls_key"}},
		{"short body timeout", "[server]\nbody_timeout = \"1ms\"\n", []string{"server.body_timeout", "at least"}},
		{"bad tool name", "[[tools.command]]\nname = \"Bad Name\"\nargv = [\"/bin/true\"]\n", []string{"tools.command[0].name"}},
		{"command without argv", "[[tools.command]]\nname = \"x\"\n", []string{"tools.command[0].argv", "no shell"}},
		{"mcp without argv or url", "[[tools.mcp]]\nname = \"fs\"\n", []string{"tools.mcp[0].argv", "url"}},
		{"mcp with argv and url", "[[tools.mcp]]\nname = \"fs\"\nargv = [\"/bin/mcp\"]\nurl = \"http://127.0.0.1:8931/mcp\"\n", []string{"tools.mcp[0].url", "either", "argv"}},
		{"mcp bad url", "[[tools.mcp]]\nname = \"fs\"\nurl = \"ftp://files.example/mcp\"\n", []string{"tools.mcp[0].url", "http://", "tools.http.allow_hosts"}},
		{"unpriced remote", "[fallback]\nenabled = true\nmodel = \"mystery\"\n", []string{"fallback.model", "fallback.prices"}},
		{"zone", "[fallback]\ntime_zone = \"Mars/Olympus\"\n", []string{"fallback.time_zone"}},
		{"workflow step", "[[workflows]]\nname = \"w\"\n[[workflows.steps]]\nid = \"a\"\n", []string{"workflows[0].steps[0]", "exactly one of tool or task"}},
		{"short timeout", "[executor]\nstep_timeout = \"1ms\"\n", []string{"executor.step_timeout", "at least"}},
		{"traces without endpoint", "[telemetry]\ntraces = true\n", []string{"telemetry.otlp_endpoint", "telemetry.traces"}},
		{"traces bad endpoint", "[telemetry]\ntraces = true\notlp_endpoint = \"127.0.0.1:4318\"\n", []string{"telemetry.otlp_endpoint", "http://"}},
		{"traces plaintext off loopback", "[telemetry]\ntraces = true\notlp_endpoint = \"http://collector.lan:4318\"\n", []string{"telemetry.otlp_endpoint", "https://", "telemetry.insecure"}},
		{"sample ratio", "[telemetry]\nsample_ratio = 1.5\n", []string{"telemetry.sample_ratio", "1.5", "between 0 and 1"}},
		{"empty header env", "[telemetry]\nheaders_env = { Authorization = \"\" }\n", []string{"telemetry.headers_env", "Authorization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(tt.toml), "test.toml")
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = cfg.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v holds no FieldError", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestTelemetryEndpoints(t *testing.T) {
	for _, body := range []string{
		"[telemetry]\ntraces = true\notlp_endpoint = \"http://127.0.0.1:4318\"\n",
		"[telemetry]\ntraces = true\notlp_endpoint = \"http://localhost:4318\"\n",
		"[telemetry]\ntraces = true\notlp_endpoint = \"https://otel.example:4318\"\nheaders_env = { Authorization = \"OTLP_AUTH\" }\n",
		"[telemetry]\ntraces = true\notlp_endpoint = \"http://collector.lan:4318\"\ninsecure = true\n",
		"[telemetry]\ntraces = false\notlp_endpoint = \"http://collector.lan:4318\"\n",
	} {
		cfg, err := Parse(strings.NewReader(body), "test.toml")
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	if d := Default().Telemetry; d.Traces || d.IncludeContent || d.SampleRatio != 1 {
		t.Errorf("default telemetry = %+v, want off, no content, ratio 1", d)
	}
}

func TestLANListenWithTLSOrExplicitPlaintext(t *testing.T) {
	for _, body := range []string{
		"[server]\nlisten = \"0.0.0.0:8484\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
		"[server]\nlisten = \"0.0.0.0:8484\"\ninsecure_plaintext = true\n",
		"[server]\nlisten = \"[::1]:8484\"\n",
	} {
		cfg, err := Parse(strings.NewReader(body), "test.toml")
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestEndpointsReplaceDefault(t *testing.T) {
	cfg, err := Parse(strings.NewReader("[[ollama.endpoints]]\nname = \"gpu2\"\nurl = \"http://10.0.0.2:11434\"\nparallel_slots = 2\nmax_queue = 8\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Ollama.Endpoints) != 1 || cfg.Ollama.Endpoints[0].Name != "gpu2" {
		t.Fatalf("endpoints = %+v, want only gpu2", cfg.Ollama.Endpoints)
	}
}

func TestDurationAndSize(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "7d": 7 * 24 * time.Hour, "1.5d": 36 * time.Hour, "2h30m": 150 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"5 mins", "d", "-3d", "soon"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]ByteSize{"512MiB": 512 << 20, "8GiB": 8 << 30, "1.5GB": 1_500_000_000, "1024": 1024, "64KiB": 64 << 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if s := ByteSize(64 << 10).String(); s != "64KiB" {
		t.Errorf("String = %q", s)
	}
}

func TestLookupOrder(t *testing.T) {
	env := map[string]string{}
	exists := map[string]bool{}
	look := func() string {
		return Lookup(func(k string) string { return env[k] }, func(p string) bool { return exists[p] })
	}
	if got := look(); got != "" {
		t.Errorf("no files: %q", got)
	}
	exists["config.toml"] = true
	if got := look(); got != "config.toml" {
		t.Errorf("local: %q", got)
	}
	exists[SystemPath] = true
	if got := look(); got != SystemPath {
		t.Errorf("system: %q", got)
	}
	env[EnvPath] = "/tmp/x.toml"
	if got := look(); got != "/tmp/x.toml" {
		t.Errorf("env: %q", got)
	}
}

func TestResolveStateDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		conf string
		env  map[string]string
		uid  int
		want string
	}{
		{"/srv/agentd", nil, 0, "/srv/agentd"},
		{"", map[string]string{"STATE_DIRECTORY": "/var/lib/agentd"}, 998, "/var/lib/agentd"},
		{"", nil, 0, "/var/lib/agentd"},
		{"", map[string]string{"HOME": "/home/op"}, 1000, "/home/op/.local/state/agentd"},
		{"", map[string]string{"HOME": "/home/op", "XDG_STATE_HOME": "/x"}, 1000, "/x/agentd"},
	}
	for _, tt := range tests {
		if got := ResolveStateDir(tt.conf, env(tt.env), tt.uid); got != tt.want {
			t.Errorf("ResolveStateDir(%q, %v, %d) = %q, want %q", tt.conf, tt.env, tt.uid, got, tt.want)
		}
	}
}

func TestSecretFromFileAndEnv(t *testing.T) {
	p := t.TempDir() + "/key"
	if err := os.WriteFile(p, []byte("sk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Secret("UNUSED", p); err != nil || s != "sk-file" {
		t.Errorf("file secret = %q, %v", s, err)
	}
	t.Setenv("AGENTD_TEST_SECRET", "sk-env")
	if s, err := Secret("AGENTD_TEST_SECRET", ""); err != nil || s != "sk-env" {
		t.Errorf("env secret = %q, %v", s, err)
	}
	if _, err := Secret("", p+".missing"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file err = %v", err)
	}
}

// An endpoint given only a name and URL takes the server's default limits.
func TestEndpointLimitsDefault(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`[ollama]
endpoints = [{ name = "gpu1", url = "http://127.0.0.1:11500" }]
`), "inline.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("an endpoint with only name and url: %v", err)
	}
	def := Default().Ollama.Endpoints[0]
	if ep := cfg.Ollama.Endpoints[0]; ep.ParallelSlots != def.ParallelSlots || ep.MaxQueue != def.MaxQueue {
		t.Errorf("endpoint = %+v, want the default limits", ep)
	}
}

// An OpenAI-compatible endpoint names its models and, optionally, the
// variable holding its key; an endpoint without a kind is Ollama.
func TestEndpointKinds(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`[[ollama.endpoints]]
name = "gpu"
url = "http://127.0.0.1:11434"

[[ollama.endpoints]]
name = "vllm"
url = "http://127.0.0.1:8000/v1"
kind = "openai"
api_key_env = "VLLM_API_KEY"
models = ["qwen3:8b"]
`), "kinds.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid endpoints: %v", err)
	}
	if eps := cfg.Ollama.Endpoints; eps[0].Kind != KindOllama || !eps[1].IsOpenAI() || eps[1].Models[0] != "qwen3:8b" {
		t.Errorf("endpoints = %+v", eps)
	}

	for _, tc := range []struct {
		name string
		ep   EndpointConfig
		key  string
	}{
		{"unknown kind", EndpointConfig{Kind: "vllm"}, "ollama.endpoints[0].kind"},
		{"openai without models", EndpointConfig{Kind: KindOpenAI}, "ollama.endpoints[0].models"},
		{"blank model", EndpointConfig{Kind: KindOpenAI, Models: []string{" "}}, "ollama.endpoints[0].models[0]"},
		{"ollama with models", EndpointConfig{Kind: KindOllama, Models: []string{"m"}}, "ollama.endpoints[0].models"},
		{"ollama with a key", EndpointConfig{Kind: KindOllama, APIKeyEnv: "K"}, "ollama.endpoints[0].api_key_env"},
		{"key that is not a variable name", EndpointConfig{Kind: KindOpenAI, Models: []string{"m"}, APIKeyEnv: "sk-123"}, "ollama.endpoints[0].api_key_env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			ep := tc.ep
			ep.Name, ep.URL, ep.ParallelSlots, ep.MaxQueue = "x", "http://127.0.0.1:8000", 1, 1
			c.Ollama.Endpoints = []EndpointConfig{ep}
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key+" ") {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.key)
			}
		})
	}
}
