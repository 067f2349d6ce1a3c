package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FieldError is one invalid value: where it is, what it was, what is allowed.
type FieldError struct {
	Path    string
	Value   any
	Allowed string
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		// A whole table or list is at fault, not one value it holds.
		return fmt.Sprintf("%s: %s", e.Path, e.Allowed)
	}
	return fmt.Sprintf("%s = %v: %s", e.Path, fmtValue(e.Value), e.Allowed)
}

// Unwrap lets callers test errors.Is(err, ErrInvalid).
func (e *FieldError) Unwrap() error { return ErrInvalid }

func (e *FieldError) keyPath() string { return e.Path }

func fmtValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case Duration:
		return fmt.Sprintf("%q", x.String())
	case []string:
		// As the file writes it: ["a", "b"], not Go's [a b].
		return "[" + strings.Join(quoteAll(x), ", ") + "]"
	}
	return fmt.Sprint(v)
}

type validator struct{ errs []error }

func (v *validator) add(path string, value any, allowed string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Value: value, Allowed: fmt.Sprintf(allowed, args...)})
}

func (v *validator) oneOf(path, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.add(path, value, "must be one of %s", strings.Join(quoteAll(allowed), ", "))
	}
}

func (v *validator) positive(path string, n int) {
	if n <= 0 {
		v.add(path, n, "must be a positive whole number")
	}
}

func (v *validator) nonNegative(path string, n float64) {
	if n < 0 {
		v.add(path, n, "must be zero or more")
	}
}

func (v *validator) minDuration(path string, d Duration, min time.Duration) {
	if d.D() < min {
		v.add(path, d, "must be at least %s", Duration(min))
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

var toolName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate checks every value and returns all problems at once, each naming
// the key, the bad value and what is allowed.
func (c *Config) Validate() error {
	v := &validator{}
	c.validateServer(v)
	c.validateOllama(v)
	c.validateModels(v)

	v.minDuration("mcp_server.wait", c.MCPServer.Wait, time.Second)
	v.oneOf("planner.mode", c.Planner.Mode, "auto", "local", "remote")
	v.oneOf("planner.classify_workflows", c.Planner.ClassifyWorkflows, "always", "related", "never")
	v.oneOf("planner.cache.use", c.Planner.Cache.Use, "auto", "approved")
	v.positive("planner.cache.max_templates", c.Planner.Cache.MaxTemplates)
	v.positive("planner.cache.retire_after", c.Planner.Cache.RetireAfter)
	v.positive("planner.max_steps", c.Planner.MaxSteps)
	if c.Planner.MaxSteps > 64 {
		v.add("planner.max_steps", c.Planner.MaxSteps, "must be 64 or fewer: small planners cannot hold larger plans")
	}
	if c.Planner.RepairAttempts < 0 || c.Planner.RepairAttempts > 10 {
		v.add("planner.repair_attempts", c.Planner.RepairAttempts, "must be between 0 and 10")
	}
	v.minDuration("planner.timeout", c.Planner.Timeout, time.Second)
	v.positive("planner.prompt_token_budget", c.Planner.PromptTokenBudget)
	for i, ex := range c.Planner.Examples {
		if strings.TrimSpace(ex.Request) == "" || strings.TrimSpace(ex.Plan) == "" {
			v.add(fmt.Sprintf("planner.examples[%d]", i), nil, "needs both request and plan")
		}
	}

	e := c.Executor
	v.positive("executor.max_concurrent_runs", e.MaxConcurrentRuns)
	v.positive("executor.max_concurrent_steps", e.MaxConcurrentSteps)
	v.positive("executor.queue_size", e.QueueSize)
	v.minDuration("executor.step_timeout", e.StepTimeout, 100*time.Millisecond)
	v.minDuration("executor.run_timeout", e.RunTimeout, time.Second)
	v.positive("executor.max_errors", e.MaxErrors)
	if e.MaxRetries < 0 {
		v.add("executor.max_retries", e.MaxRetries, "must be zero or more")
	}
	v.positive("executor.max_repeat_calls", e.MaxRepeatCalls)
	if e.MaxReplans < 0 {
		v.add("executor.max_replans", e.MaxReplans, "must be zero or more")
	}
	v.minDuration("executor.approval_timeout", e.ApprovalTimeout, time.Second)
	if e.ScratchpadTurns < 1 || e.ScratchpadTurns > 100 {
		v.add("executor.scratchpad_turns", e.ScratchpadTurns, "must be between 1 and 100")
	}
	if e.ToolOutputCap < 1024 {
		v.add("executor.tool_output_cap", e.ToolOutputCap, "must be at least 1KiB")
	}

	c.validateTools(v)
	c.validateWorkflows(v)
	c.validateFallback(v)

	v.oneOf("vram.probe", c.VRAM.Probe, "auto", "nvidia", "amd", "none")
	v.minDuration("vram.sample_interval", c.VRAM.SampleInterval, 100*time.Millisecond)
	v.minDuration("vram.probe_timeout", c.VRAM.ProbeTimeout, 100*time.Millisecond)
	for path, pct := range map[string]float64{"vram.thresholds.vram_percent": c.VRAM.Thresholds.VRAMPercent, "vram.thresholds.host_mem_percent": c.VRAM.Thresholds.HostMemPercent} {
		if pct <= 0 || pct > 100 {
			v.add(path, pct, "must be a percentage above 0 and at most 100")
		}
	}

	r := c.Storage.Retention
	v.minDuration("storage.retention.runs", r.Runs, time.Hour)
	v.minDuration("storage.retention.events", r.Events, time.Hour)
	v.minDuration("storage.retention.samples", r.Samples, time.Hour)
	v.minDuration("storage.retention.ledgers", r.Ledgers, 24*time.Hour)
	v.minDuration("storage.prune_interval", c.Storage.PruneInterval, time.Second)

	v.oneOf("logging.level", c.Logging.Level, "debug", "info", "warn", "error")
	v.oneOf("logging.format", c.Logging.Format, "text", "json")
	c.validateTelemetry(v)
	return errors.Join(v.errs...)
}

func (c *Config) validateServer(v *validator) {
	host, port, err := net.SplitHostPort(c.Server.Listen)
	if err != nil || port == "" {
		v.add("server.listen", c.Server.Listen, "must be host:port, like \"127.0.0.1:8484\"")
	}
	v.oneOf("server.auth", c.Server.Auth, "token", "none")
	if err == nil && c.Server.Auth == "none" && !IsLoopback(host) {
		v.add("server.auth", c.Server.Auth, "must be \"token\" when server.listen (%s) is not a loopback address: agentd refuses to serve its API unauthenticated on a network", c.Server.Listen)
	}
	if c.Server.MaxRequestBytes < 1024 {
		v.add("server.max_request_bytes", c.Server.MaxRequestBytes, "must be at least 1KiB")
	}
	v.minDuration("server.shutdown_timeout", c.Server.ShutdownTimeout, time.Second)
	v.minDuration("server.body_timeout", c.Server.BodyTimeout, 100*time.Millisecond)
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		v.add("server.tls_cert", c.Server.TLSCert, "and server.tls_key (%q) must be set together: the certificate and its private key, PEM files", c.Server.TLSKey)
	}
	if err == nil && !IsLoopback(host) && c.Server.TLSCert == "" && !c.Server.InsecurePlaintext {
		v.add("server.tls_cert", c.Server.TLSCert, "must be set, with server.tls_key, when server.listen (%s) is not a loopback address: the API token would cross the network in clear (or set server.insecure_plaintext = true if TLS ends in front of agentd)", c.Server.Listen)
	}
}

// IsLoopback reports whether host names only the local machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) validateOllama(v *validator) {
	if len(c.Ollama.Endpoints) == 0 {
		v.add("ollama.endpoints", nil, "needs at least one endpoint, like { name = \"local\", url = \"http://127.0.0.1:11434\" }")
	}
	seen := map[string]bool{}
	for i, ep := range c.Ollama.Endpoints {
		p := fmt.Sprintf("ollama.endpoints[%d]", i)
		if ep.Name == "" {
			v.add(p+".name", ep.Name, "must be set: it names the endpoint in logs and metrics")
		} else if seen[ep.Name] {
			v.add(p+".name", ep.Name, "must be unique")
		}
		seen[ep.Name] = true
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".url", ep.URL, "must be an http:// or https:// URL, like \"http://127.0.0.1:11434\"")
		}
		v.positive(p+".parallel_slots", ep.ParallelSlots)
		v.positive(p+".max_queue", ep.MaxQueue)
		validateEndpointKind(v, p, ep)
	}
	v.minDuration("ollama.request_timeout", c.Ollama.RequestTimeout, time.Second)
	v.minDuration("ollama.connect_timeout", c.Ollama.ConnectTimeout, 100*time.Millisecond)
	if c.Ollama.MaxRetries < 0 || c.Ollama.MaxRetries > 10 {
		v.add("ollama.max_retries", c.Ollama.MaxRetries, "must be between 0 and 10")
	}
}

// envName is what a shell accepts as an environment variable's name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateEndpointKind checks what depends on the endpoint's protocol: an
// OpenAI-compatible server must say which models it serves (it has no
// /api/tags), and an Ollama one lists its own.
func validateEndpointKind(v *validator, p string, ep EndpointConfig) {
	kind := ep.Kind
	if kind == "" {
		kind = KindOllama // endpoints built in code, not loaded from a file
	}
	v.oneOf(p+".kind", kind, KindOllama, KindOpenAI)
	if ep.APIKeyEnv != "" && !envName.MatchString(ep.APIKeyEnv) {
		v.add(p+".api_key_env", ep.APIKeyEnv, "must name an environment variable, like \"VLLM_API_KEY\" (the key itself never goes in the config file)")
	}
	switch kind {
	case KindOpenAI:
		if len(ep.Models) == 0 {
			v.add(p+".models", ep.Models, "must list the models this OpenAI-compatible server serves, like [\"qwen3:8b\"]: it has no /api/tags to ask")
		}
		for j, m := range ep.Models {
			if strings.TrimSpace(m) == "" {
				v.add(fmt.Sprintf("%s.models[%d]", p, j), m, "must name a model")
			}
		}
	case KindOllama:
		if len(ep.Models) > 0 {
			v.add(p+".models", ep.Models, "is only for kind = \"openai\": an Ollama endpoint lists its own models")
		}
		if ep.APIKeyEnv != "" {
			v.add(p+".api_key_env", ep.APIKeyEnv, "is only for kind = \"openai\": agentd sends Ollama no credentials")
		}
	}
}

func (c *Config) validateModels(v *validator) {
	m := c.Models
	for path, name := range map[string]string{
		"models.router": m.Router, "models.planner": m.Planner, "models.fast": m.Fast,
		"models.standard": m.Standard, "models.summarizer": m.Summarizer, "models.validator": m.Validator,
	} {
		if strings.TrimSpace(name) == "" {
			v.add(path, name, "must name an Ollama model, like \"granite4:tiny-h\"")
		}
	}
	for name, o := range m.Options {
		p := joinKey("models.options", name)
		if o.NumCtx < 0 {
			v.add(p+".num_ctx", o.NumCtx, "must be zero (model default) or more")
		}
		if o.Temperature < 0 || o.Temperature > 2 {
			v.add(p+".temperature", o.Temperature, "must be between 0 and 2")
		}
		if o.MaxConcurrent < 0 {
			v.add(p+".max_concurrent", o.MaxConcurrent, "must be zero (no extra limit) or more")
		}
	}
}

func (c *Config) validateTools(v *validator) {
	names := map[string]string{}
	claim := func(path, name string) {
		if !toolName.MatchString(name) {
			v.add(path, name, "must be lower_snake_case, starting with a letter, at most 64 characters")
			return
		}
		if prev, ok := names[name]; ok {
			v.add(path, name, "is already used by %s", prev)
		}
		names[name] = path
	}
	approval := func(path, a string) {
		if a != "" {
			v.oneOf(path, a, "none", "required")
		}
	}
	for i, t := range c.Tools.Command {
		p := fmt.Sprintf("tools.command[%d]", i)
		claim(p+".name", t.Name)
		if len(t.Argv) == 0 || t.Argv[0] == "" {
			v.add(p+".argv", t.Argv, "must name a program and its arguments, like [\"/usr/local/bin/lookup\", \"--json\"]; no shell is used")
		}
		approval(p+".approval", t.Approval)
		if t.Concurrency < 0 {
			v.add(p+".concurrency", t.Concurrency, "must be zero (default) or more")
		}
	}
	for i, t := range c.Tools.HTTPTool {
		p := fmt.Sprintf("tools.http_tool[%d]", i)
		claim(p+".name", t.Name)
		if t.Method != "" {
			v.oneOf(p+".method", t.Method, "GET", "POST", "PUT")
		}
		if u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(t.URL)); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			v.add(p+".url", t.URL, "must be an http:// or https:// URL template, like \"https://api.example/v1/items/{id}\"")
		}
		approval(p+".approval", t.Approval)
	}
	for i, s := range c.Tools.MCP {
		p := fmt.Sprintf("tools.mcp[%d]", i)
		claim(p+".name", s.Name)
		switch {
		case len(s.Argv) > 0 && s.URL != "":
			v.add(p+".url", s.URL, "must not be set beside argv: a server is either a program run over stdio (argv) or a Streamable HTTP endpoint (url)")
		case s.URL != "":
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(p+".url", s.URL, "must be an http:// or https:// URL, like \"http://127.0.0.1:8931/mcp\"; its host must be in tools.http.allow_hosts")
			}
		case len(s.Argv) == 0 || s.Argv[0] == "":
			v.add(p+".argv", s.Argv, "must name the server program and its arguments, or set url for a Streamable HTTP server")
		}
		approval(p+".approval", s.Approval)
	}
	for name, a := range c.Tools.Approval {
		v.oneOf(joinKey("tools.approval", name), a, "none", "required")
	}
	for i, h := range c.Tools.HTTP.AllowHosts {
		if h == "" || strings.Contains(h, "/") {
			v.add(fmt.Sprintf("tools.http.allow_hosts[%d]", i), h, "must be a host name or host:port, like \"api.example.org\" or \"*.example.org\"")
		}
	}
	for i, d := range c.Tools.SQLite.Databases {
		if d.Name == "" || d.Path == "" {
			v.add(fmt.Sprintf("tools.sqlite.databases[%d]", i), nil, "needs both name and path")
		}
	}
	if c.Tools.Docs.ChunkChars < 200 {
		v.add("tools.docs.chunk_chars", c.Tools.Docs.ChunkChars, "must be at least 200")
	}
	if c.Tools.Docs.ChunkOverlap < 0 || c.Tools.Docs.ChunkOverlap >= c.Tools.Docs.ChunkChars {
		v.add("tools.docs.chunk_overlap", c.Tools.Docs.ChunkOverlap, "must be zero or more and less than tools.docs.chunk_chars")
	}
	v.positive("tools.docs.top_k", c.Tools.Docs.TopK)
}

func (c *Config) validateWorkflows(v *validator) {
	seen := map[string]bool{}
	for i, w := range c.Workflows {
		p := fmt.Sprintf("workflows[%d]", i)
		if !toolName.MatchString(w.Name) {
			v.add(p+".name", w.Name, "must be lower_snake_case, starting with a letter")
		} else if seen[w.Name] {
			v.add(p+".name", w.Name, "must be unique")
		}
		seen[w.Name] = true
		if w.Mode != "" {
			v.oneOf(p+".mode", w.Mode, "plan", "scratchpad")
		}
		if w.Planner != "" {
			v.oneOf(p+".planner", w.Planner, "auto", "local", "remote")
		}
		if w.Mode != "scratchpad" && len(w.Steps) == 0 && len(w.Keywords) > 0 {
			v.add(p+".steps", nil, "a workflow with keywords needs steps (a plan template), or mode = \"scratchpad\"")
		}
		for j, s := range w.Steps {
			sp := fmt.Sprintf("%s.steps[%d]", p, j)
			if s.ID == "" {
				v.add(sp+".id", s.ID, "must be set")
			}
			if (s.Tool == "") == (s.Task == "") {
				v.add(sp, nil, "needs exactly one of tool or task")
			}
			if s.Tier != "" {
				v.oneOf(sp+".tier", s.Tier, "fast", "standard")
			}
		}
	}
}

func (c *Config) validateFallback(v *validator) {
	f := c.Fallback
	v.oneOf("fallback.provider", f.Provider, "openai", "anthropic", "ollama")
	if f.Enabled {
		if u, err := url.Parse(f.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("fallback.base_url", f.BaseURL, "must be an http:// or https:// URL")
		}
		if f.Model == "" {
			v.add("fallback.model", f.Model, "must name the remote model")
		}
		if _, ok := f.Prices[f.Model]; !ok {
			v.add("fallback.model", f.Model, "needs a price: add [fallback.prices.%q] with input_per_mtok and output_per_mtok, so spend can be capped", f.Model)
		}
	}
	v.positive("fallback.max_tokens", f.MaxTokens)
	v.minDuration("fallback.timeout", f.Timeout, time.Second)
	if _, err := time.LoadLocation(f.TimeZone); err != nil {
		v.add("fallback.time_zone", f.TimeZone, "must be an IANA time zone, like \"UTC\" or \"Europe/Oslo\"")
	}
	v.nonNegative("fallback.caps.run_usd", f.Caps.RunUSD)
	v.nonNegative("fallback.caps.day_usd", f.Caps.DayUSD)
	v.nonNegative("fallback.caps.month_usd", f.Caps.MonthUSD)
	v.nonNegative("fallback.caps.day_bytes", float64(f.Caps.DayBytes))
	v.nonNegative("fallback.caps.month_bytes", float64(f.Caps.MonthBytes))
	for i, t := range f.Alerts.Thresholds {
		if t <= 0 || t > 1 {
			v.add(fmt.Sprintf("fallback.alerts.thresholds[%d]", i), t, "must be a fraction above 0 and at most 1, like 0.8")
		}
	}
	for name, p := range f.Prices {
		path := joinKey("fallback.prices", name)
		if p.InputPerMTok < 0 {
			v.add(path+".input_per_mtok", p.InputPerMTok, "must be zero or more USD per million tokens")
		}
		if p.OutputPerMTok < 0 {
			v.add(path+".output_per_mtok", p.OutputPerMTok, "must be zero or more USD per million tokens")
		}
	}
	v.minDuration("fallback.link.latency_budget", f.Link.LatencyBudget, 100*time.Millisecond)
	v.positive("fallback.link.offline_after", f.Link.OfflineAfter)
	v.positive("fallback.max_in_flight", f.MaxInFlight)
	v.minDuration("fallback.link.retry_min", f.Link.RetryMin, 100*time.Millisecond)
	if f.Link.RetryMax < f.Link.RetryMin {
		v.add("fallback.link.retry_max", f.Link.RetryMax, "must be at least fallback.link.retry_min (%s)", f.Link.RetryMin.D())
	}
	for i, pat := range f.Privacy.NationalIDPatterns {
		if _, err := regexp.Compile(pat); err != nil {
			v.add(fmt.Sprintf("fallback.privacy.national_id_patterns[%d]", i), pat, "must be a valid Go regular expression: %v", err)
		}
	}
	for i, class := range f.Privacy.Allow {
		if !slices.Contains(RedactionClasses, class) {
			v.add(fmt.Sprintf("fallback.privacy.allow[%d]", i), class, "must be one of %s", strings.Join(RedactionClasses, ", "))
		}
	}
	for i, id := range f.Privacy.IDs {
		if strings.TrimSpace(id) == "" {
			v.add(fmt.Sprintf("fallback.privacy.ids[%d]", i), id, "must not be empty")
		}
	}
	if d := f.Privacy.MinDigits; d < 5 || d > 19 {
		v.add("fallback.privacy.min_digits", d, "must be between 5 and 19 (7 catches phone numbers written without separators)")
	}
	if n := f.Privacy.MinEncodedLength; n < 8 || n > 64 {
		v.add("fallback.privacy.min_encoded_length", n, "must be between 8 and 64 characters")
	}
	if f.EnergyPriceKWh < 0 {
		v.add("fallback.energy_price_kwh", f.EnergyPriceKWh, "must be zero or more")
	}
}

// validateTelemetry holds the trace exporter to the server's rule: what
// leaves the machine over a network goes over TLS unless a person says
// otherwise.
func (c *Config) validateTelemetry(v *validator) {
	t := c.Telemetry
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.add("telemetry.sample_ratio", t.SampleRatio, "must be between 0 and 1 (the share of runs traced)")
	}
	for name, env := range t.HeadersEnv {
		if name == "" || env == "" {
			v.add("telemetry.headers_env", name, "needs a header name and the environment variable that holds its value, like { Authorization = \"AGENTD_OTLP_AUTH\" }")
		}
	}
	if !t.Traces {
		return
	}
	if t.OTLPEndpoint == "" {
		v.add("telemetry.otlp_endpoint", t.OTLPEndpoint, "must be set when telemetry.traces is on, like \"http://127.0.0.1:4318\"")
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add("telemetry.otlp_endpoint", t.OTLPEndpoint, "must be an http:// or https:// URL, like \"http://127.0.0.1:4318\"")
		return
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) && !t.Insecure {
		v.add("telemetry.otlp_endpoint", t.OTLPEndpoint, "must be https:// when the collector is not on a loopback address: spans would cross the network in clear (or set telemetry.insecure = true)")
	}
}
