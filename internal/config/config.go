// Package config holds agentd's configuration: defaults, strict TOML decoding
// that names the offending key, and validation that names the field, the bad
// value and what is allowed.
package config

// Config is the whole of agentd's configuration. The zero value is not useful:
// start from Default().
type Config struct {
	Server    ServerConfig     `toml:"server"`
	Ollama    OllamaConfig     `toml:"ollama"`
	Models    ModelsConfig     `toml:"models"`
	Planner   PlannerConfig    `toml:"planner"`
	Executor  ExecutorConfig   `toml:"executor"`
	Tools     ToolsConfig      `toml:"tools"`
	Workflows []WorkflowConfig `toml:"workflows"`
	Fallback  FallbackConfig   `toml:"fallback"`
	VRAM      VRAMConfig       `toml:"vram"`
	Storage   StorageConfig    `toml:"storage"`
	Logging   LoggingConfig    `toml:"logging"`
	Telemetry TelemetryConfig  `toml:"telemetry"`
	MCPServer MCPServeConfig   `toml:"mcp_server"`
}

// MCPServeConfig is agentd serving its workflows and runs as an MCP server
// (Streamable HTTP at /mcp on the API listener, behind the API's auth), so
// a desktop or IDE agent can hand work to it. Off by default.
type MCPServeConfig struct {
	Enabled bool `toml:"enabled"`
	// Wait bounds how long submit_run waits for the run to finish before
	// it answers with the run as it stands.
	Wait Duration `toml:"wait"`
}

// ServerConfig is the HTTP API and dashboard listener.
type ServerConfig struct {
	Listen          string   `toml:"listen"`
	Auth            string   `toml:"auth"` // "token" or "none"
	TokenFile       string   `toml:"token_file"`
	AllowedOrigins  []string `toml:"allowed_origins"`
	MaxRequestBytes ByteSize `toml:"max_request_bytes"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// AllowedHosts are host names (besides IP literals, "localhost" and the
	// listen host) the API answers to; any other Host header is refused,
	// which defeats DNS rebinding. path.Match patterns.
	AllowedHosts []string `toml:"allowed_hosts"`
	// TLSCert and TLSKey (PEM files) serve HTTPS. Required when listen is
	// not a loopback address, unless InsecurePlaintext says otherwise.
	TLSCert           string `toml:"tls_cert"`
	TLSKey            string `toml:"tls_key"`
	InsecurePlaintext bool   `toml:"insecure_plaintext"`
	// BodyTimeout bounds how long a client may take to send a request body.
	BodyTimeout Duration `toml:"body_timeout"`
}

// OllamaConfig lists the Ollama servers agentd may use.
type OllamaConfig struct {
	Endpoints      []EndpointConfig `toml:"endpoints"`
	RequestTimeout Duration         `toml:"request_timeout"`
	ConnectTimeout Duration         `toml:"connect_timeout"`
	MaxRetries     int              `toml:"max_retries"`
	RetryBackoff   Duration         `toml:"retry_backoff"`
}

// Endpoint kinds: the protocol an endpoint speaks.
const (
	// KindOllama is Ollama's own API (/api/chat, /api/ps, ...).
	KindOllama = "ollama"
	// KindOpenAI is an OpenAI-compatible server (llama.cpp's server, vLLM,
	// LM Studio, LocalAI): /v1/chat/completions, with no residency to read.
	KindOpenAI = "openai"
)

// EndpointConfig is one model server: Ollama, or an OpenAI-compatible one.
type EndpointConfig struct {
	Name          string `toml:"name"`
	URL           string `toml:"url"`
	Kind          string `toml:"kind"`           // KindOllama (default) or KindOpenAI
	ParallelSlots int    `toml:"parallel_slots"` // the server's OLLAMA_NUM_PARALLEL
	MaxQueue      int    `toml:"max_queue"`      // the server's OLLAMA_MAX_QUEUE
	// APIKeyEnv names the environment variable holding the bearer token an
	// OpenAI-compatible server wants. The key itself never enters config,
	// so it is never logged or rendered with it.
	APIKeyEnv string `toml:"api_key_env"`
	// Models are the models an OpenAI-compatible endpoint serves. Such a
	// server has no /api/tags to ask, so this list is how agentd knows
	// which calls to send there.
	Models []string `toml:"models"`
}

// IsOpenAI reports whether the endpoint speaks the OpenAI-compatible API;
// an empty kind is Ollama.
func (e EndpointConfig) IsOpenAI() bool { return e.Kind == KindOpenAI }

// ModelsConfig maps each role to a model, so any one can be swapped without
// touching the others.
type ModelsConfig struct {
	Router     string                  `toml:"router"`
	Planner    string                  `toml:"planner"`
	Fast       string                  `toml:"fast"`
	Standard   string                  `toml:"standard"`
	Summarizer string                  `toml:"summarizer"`
	Validator  string                  `toml:"validator"`
	Embedding  string                  `toml:"embedding"`
	KeepAlive  Duration                `toml:"keep_alive"`
	Options    map[string]ModelOptions `toml:"options"`
}

// ModelOptions are fixed per model: a changed num_ctx forces Ollama to reload.
type ModelOptions struct {
	NumCtx        int     `toml:"num_ctx"`
	NumPredict    int     `toml:"num_predict"`
	Temperature   float64 `toml:"temperature"`
	MaxConcurrent int     `toml:"max_concurrent"`
}

// PlannerConfig shapes planning.
type PlannerConfig struct {
	Mode              string           `toml:"mode"` // auto | local | remote
	MaxSteps          int              `toml:"max_steps"`
	RepairAttempts    int              `toml:"repair_attempts"`
	Timeout           Duration         `toml:"timeout"`
	PromptTokenBudget int              `toml:"prompt_token_budget"`
	Examples          []PlanExample    `toml:"examples"`
	ClassifyWorkflows string           `toml:"classify_workflows"` // always | related | never
	Complexity        ComplexityConfig `toml:"complexity"`
	Cache             PlanCacheConfig  `toml:"cache"`
}

// PlanCacheConfig is the plan cache: templates agentd learns from its own
// successful runs, so the next request of the same kind needs no planner.
type PlanCacheConfig struct {
	// Enabled learns templates and uses them (default true).
	Enabled bool `toml:"enabled"`
	// Use decides when a learned template may plan a request: "auto" (as
	// soon as it is learned; the default) or "approved" (only once a
	// person approved it).
	Use string `toml:"use"`
	// MaxTemplates bounds the learned templates kept; the least used
	// unpinned ones go first.
	MaxTemplates int `toml:"max_templates"`
	// RetireAfter is how many failures in a row retire a template that
	// is not pinned (the first demotes it: it then needs the exact wording
	// it was learned from).
	RetireAfter int `toml:"retire_after"`
}

// PlanExample is a few-shot example shown to the planner.
type PlanExample struct {
	Request string `toml:"request"`
	Plan    string `toml:"plan"` // JSON
}

// ComplexityConfig tunes the router's local-versus-remote decision.
type ComplexityConfig struct {
	EscalateScore float64 `toml:"escalate_score"`
}

// ExecutorConfig bounds plan execution.
type ExecutorConfig struct {
	MaxConcurrentRuns  int      `toml:"max_concurrent_runs"`
	MaxConcurrentSteps int      `toml:"max_concurrent_steps"`
	QueueSize          int      `toml:"queue_size"`
	StepTimeout        Duration `toml:"step_timeout"`
	RunTimeout         Duration `toml:"run_timeout"`
	MaxErrors          int      `toml:"max_errors"`
	MaxRetries         int      `toml:"max_retries"`
	RetryBackoff       Duration `toml:"retry_backoff"`
	MaxRepeatCalls     int      `toml:"max_repeat_calls"`
	MaxReplans         int      `toml:"max_replans"`
	ApprovalTimeout    Duration `toml:"approval_timeout"`
	ToolOutputCap      ByteSize `toml:"tool_output_cap"`
	PromptTokenBudget  int      `toml:"prompt_token_budget"`
	ScratchpadTurns    int      `toml:"scratchpad_turns"`
	PrefetchTools      bool     `toml:"prefetch_tools"`
}

// ToolsConfig configures built-in tools and declares tools from config.
type ToolsConfig struct {
	HTTP     HTTPToolsConfig     `toml:"http"`
	Files    FilesToolsConfig    `toml:"files"`
	SQLite   SQLiteToolsConfig   `toml:"sqlite"`
	Docs     DocsToolsConfig     `toml:"docs"`
	Command  []CommandToolConfig `toml:"command"`
	HTTPTool []HTTPToolConfig    `toml:"http_tool"`
	MCP      []MCPServerConfig   `toml:"mcp"`
	Approval map[string]string   `toml:"approval"` // tool name -> "none" | "required"
}

// HTTPToolsConfig governs http_get and http_post.
type HTTPToolsConfig struct {
	Enabled    bool     `toml:"enabled"`
	AllowHosts []string `toml:"allow_hosts"`
	MaxBytes   ByteSize `toml:"max_bytes"`
	Timeout    Duration `toml:"timeout"`
}

// FilesToolsConfig governs read_file and list_dir.
type FilesToolsConfig struct {
	Roots    []string `toml:"roots"`
	MaxBytes ByteSize `toml:"max_bytes"`
	// AllowHardLinks lets read_file open regular files with more than one
	// link: a hard link inside a root may name a file outside it.
	AllowHardLinks bool `toml:"allow_hard_links"`
}

// SQLiteToolsConfig governs sqlite_query.
type SQLiteToolsConfig struct {
	Databases []NamedPath `toml:"databases"`
	MaxRows   int         `toml:"max_rows"`
}

// NamedPath names a file a tool may open.
type NamedPath struct {
	Name string `toml:"name"`
	Path string `toml:"path"`
}

// DocsToolsConfig governs search_docs.
type DocsToolsConfig struct {
	Folders      []string `toml:"folders"`
	ChunkChars   int      `toml:"chunk_chars"`
	ChunkOverlap int      `toml:"chunk_overlap"`
	ReindexEvery Duration `toml:"reindex_every"`
	TopK         int      `toml:"top_k"`
	Extensions   []string `toml:"extensions"`
}

// CommandToolConfig declares a tool that runs a program: argv only, JSON
// arguments on stdin, JSON result on stdout, never a shell.
type CommandToolConfig struct {
	Name        string         `toml:"name"`
	Description string         `toml:"description"`
	Argv        []string       `toml:"argv"`
	ArgsSchema  map[string]any `toml:"args_schema"`
	Timeout     Duration       `toml:"timeout"`
	OutputCap   ByteSize       `toml:"output_cap"`
	Env         []string       `toml:"env"` // names passed through from agentd's environment
	Dir         string         `toml:"dir"`
	Idempotent  bool           `toml:"idempotent"`
	Approval    string         `toml:"approval"`
	Concurrency int            `toml:"concurrency"`
}

// HTTPToolConfig declares a tool that calls an HTTP endpoint.
type HTTPToolConfig struct {
	Name        string            `toml:"name"`
	Description string            `toml:"description"`
	Method      string            `toml:"method"`
	URL         string            `toml:"url"` // template: {arg} placeholders, escaped
	Headers     map[string]string `toml:"headers"`
	HeaderEnv   map[string]string `toml:"header_env"` // header -> environment variable holding its value
	ArgsSchema  map[string]any    `toml:"args_schema"`
	Timeout     Duration          `toml:"timeout"`
	MaxBytes    ByteSize          `toml:"max_bytes"`
	Idempotent  bool              `toml:"idempotent"`
	Approval    string            `toml:"approval"`
	Concurrency int               `toml:"concurrency"`
}

// MCPServerConfig is a Model Context Protocol server: a program run over
// stdio (argv) or a Streamable HTTP endpoint (url), exactly one of them.
type MCPServerConfig struct {
	Name     string   `toml:"name"`
	Argv     []string `toml:"argv"`
	URL      string   `toml:"url"` // reached only when its host is in tools.http.allow_hosts
	Env      []string `toml:"env"`
	Timeout  Duration `toml:"timeout"`
	Approval string   `toml:"approval"`
}

// WorkflowConfig is a known request shape with a plan template: a matched
// workflow needs no planner call at all.
type WorkflowConfig struct {
	Name        string         `toml:"name" json:"name"`
	Description string         `toml:"description" json:"description,omitempty"`
	Keywords    []string       `toml:"keywords" json:"keywords,omitempty"`
	Params      map[string]any `toml:"params" json:"params,omitempty"` // JSON Schema of the parameters
	Steps       []WorkflowStep `toml:"steps" json:"steps"`
	Answer      string         `toml:"answer" json:"answer,omitempty"`
	// AnswerPattern, when set, is the reply itself: {{param}} and
	// ${step.path} filled in from the parameters and step results, with
	// no summarizer call. Used only when every reference resolves.
	AnswerPattern string `toml:"answer_pattern,omitempty" json:"answer_pattern,omitempty"`
	Mode          string `toml:"mode,omitempty" json:"mode,omitempty"` // "plan" | "scratchpad"
	Sensitive     bool   `toml:"sensitive,omitempty" json:"sensitive,omitempty"`
	RemoteRetry   bool   `toml:"remote_retry,omitempty" json:"remote_retry,omitempty"`
	Planner       string `toml:"planner,omitempty" json:"planner,omitempty"` // auto | local | remote
}

// WorkflowStep is one step of a workflow template; strings may hold
// {{param}} placeholders and ${step.path} references.
type WorkflowStep struct {
	ID        string         `toml:"id" json:"id"`
	Tool      string         `toml:"tool,omitempty" json:"tool,omitempty"`
	Args      map[string]any `toml:"args,omitempty" json:"args,omitempty"`
	Task      string         `toml:"task,omitempty" json:"task,omitempty"`
	Tools     []string       `toml:"tools,omitempty" json:"tools,omitempty"`
	Tier      string         `toml:"tier,omitempty" json:"tier,omitempty"`
	DependsOn []string       `toml:"depends_on,omitempty" json:"depends_on,omitempty"`
}

// FallbackConfig is the optional remote planner. Off by default.
type FallbackConfig struct {
	Enabled        bool                   `toml:"enabled"`
	Provider       string                 `toml:"provider"` // openai | anthropic | ollama
	BaseURL        string                 `toml:"base_url"`
	Model          string                 `toml:"model"`
	APIKeyEnv      string                 `toml:"api_key_env"`
	APIKeyFile     string                 `toml:"api_key_file"`
	MaxTokens      int                    `toml:"max_tokens"`
	MaxInFlight    int                    `toml:"max_in_flight"` // remote calls at once: bounds a dishonest provider's overshoot
	Timeout        Duration               `toml:"timeout"`
	TimeZone       string                 `toml:"time_zone"`
	Caps           CapsConfig             `toml:"caps"`
	Alerts         AlertsConfig           `toml:"alerts"`
	Prices         map[string]PriceConfig `toml:"prices"`
	Link           LinkConfig             `toml:"link"`
	Privacy        PrivacyConfig          `toml:"privacy"`
	DeferredMaxAge Duration               `toml:"deferred_max_age"`
	EnergyPriceKWh float64                `toml:"energy_price_kwh"`
}

// CapsConfig holds hard spending and byte caps. Zero means no cap of that kind
// except where noted in the reference.
type CapsConfig struct {
	RunUSD     float64  `toml:"run_usd"`
	DayUSD     float64  `toml:"day_usd"`
	MonthUSD   float64  `toml:"month_usd"`
	DayBytes   ByteSize `toml:"day_bytes"`
	MonthBytes ByteSize `toml:"month_bytes"`
}

// AlertsConfig says where budget alerts go.
type AlertsConfig struct {
	Thresholds []float64 `toml:"thresholds"`
	Webhook    string    `toml:"webhook"`
	Command    []string  `toml:"command"`
}

// PriceConfig is a model's price in USD per million tokens.
type PriceConfig struct {
	InputPerMTok  float64 `toml:"input_per_mtok"`
	OutputPerMTok float64 `toml:"output_per_mtok"`
}

// Cost is what a call with these token counts costs at this price.
func (p PriceConfig) Cost(inputTokens, outputTokens int) float64 {
	return float64(inputTokens)/1e6*p.InputPerMTok + float64(outputTokens)/1e6*p.OutputPerMTok
}

// LinkConfig tunes link awareness.
type LinkConfig struct {
	ProbeURL            string   `toml:"probe_url"`
	ProbeInterval       Duration `toml:"probe_interval"`
	LatencyBudget       Duration `toml:"latency_budget"`
	ConstrainedBelowBps int64    `toml:"constrained_below_bps"`
	OfflineAfter        int      `toml:"offline_after"` // consecutive failures
	// RetryMin and RetryMax bound the backoff between tries of an offline
	// link (a probe, or one real call when no probe_url is set).
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
}

// PrivacyConfig tunes redaction before anything leaves the machine.
// Redaction is default-deny: every identifier-like class below is replaced
// unless the operator lists it in Allow. The zero value redacts everything,
// so a config built in code without Default() is never more open.
type PrivacyConfig struct {
	Terms              []string `toml:"terms"`
	Names              []string `toml:"names"`
	IDs                []string `toml:"ids"` // literal identifiers, matched in any case, Unicode form and separation
	NationalIDPatterns []string `toml:"national_id_patterns"`
	// Allow lists the redaction classes sent in clear (RedactionClasses).
	Allow []string `toml:"allow"`
	// MinDigits is the shortest digit run, separators aside, that is
	// redacted as an identifier; 0 means 7.
	MinDigits int `toml:"min_digits"`
	// MinEncodedLength is the shortest hex, base64 or base32 string
	// redacted as a secret; 0 means 16.
	MinEncodedLength int `toml:"min_encoded_length"`
}

// The default-deny redaction classes an operator may allow in
// fallback.privacy.allow.
const (
	RedactDigitRuns      = "digit_runs"      // 7+ digits with any separators: phones, accounts, order numbers
	RedactEncodedStrings = "encoded_strings" // long hex, base64, base32 strings
	RedactSecretFields   = "secret_fields"   // values of key/secret/token/password/auth fields in any syntax
	RedactKeyFormats     = "key_formats"     // known API key formats and private key blocks
	RedactCredentialURLs = "credential_urls" // URLs carrying user:password@
	RedactCards          = "cards"           // Luhn-valid card numbers
	RedactIBANs          = "ibans"           // IBANs with a valid checksum
	RedactEmails         = "emails"
	RedactIPAddresses    = "ip_addresses"
)

// RedactionClasses is every class fallback.privacy.allow accepts.
var RedactionClasses = []string{RedactDigitRuns, RedactEncodedStrings, RedactSecretFields, RedactKeyFormats,
	RedactCredentialURLs, RedactCards, RedactIBANs, RedactEmails, RedactIPAddresses}

// VRAMConfig controls GPU probing and model residency.
type VRAMConfig struct {
	Probe          string     `toml:"probe"` // auto | nvidia | amd | none
	NvidiaSMI      string     `toml:"nvidia_smi"`
	SysfsRoot      string     `toml:"sysfs_root"`
	SampleInterval Duration   `toml:"sample_interval"`
	ProbeTimeout   Duration   `toml:"probe_timeout"`
	Headroom       ByteSize   `toml:"headroom"`
	Prewarm        bool       `toml:"prewarm"`
	Thresholds     Thresholds `toml:"thresholds"`
}

// Thresholds raise events when crossed.
type Thresholds struct {
	VRAMPercent    float64 `toml:"vram_percent"`
	GPUTempC       float64 `toml:"gpu_temp_c"`
	HostMemPercent float64 `toml:"host_mem_percent"`
}

// StorageConfig places agentd's state.
type StorageConfig struct {
	StateDir      string          `toml:"state_dir"` // empty: $STATE_DIRECTORY, /var/lib/agentd as root, else ~/.local/state/agentd
	Database      string          `toml:"database"`  // empty: <state_dir>/agentd.db
	Retention     RetentionConfig `toml:"retention"`
	PruneInterval Duration        `toml:"prune_interval"`
}

// RetentionConfig says how long records are kept.
type RetentionConfig struct {
	Runs    Duration `toml:"runs"`
	Events  Duration `toml:"events"`
	Samples Duration `toml:"samples"`
	Ledgers Duration `toml:"ledgers"`
}

// LoggingConfig shapes log output.
type LoggingConfig struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // text | json
}

// TelemetryConfig is the OpenTelemetry trace export, off by default.
// Metrics stay on Prometheus (/metrics); only traces go over OTLP.
type TelemetryConfig struct {
	// Traces turns span export on.
	Traces bool `toml:"traces"`
	// OTLPEndpoint is the collector's OTLP/HTTP base URL, like
	// "http://127.0.0.1:4318"; spans go to <endpoint>/v1/traces.
	OTLPEndpoint string `toml:"otlp_endpoint"`
	// Insecure allows plain http to a collector that is not on loopback.
	Insecure bool `toml:"insecure"`
	// HeadersEnv maps a header name to the environment variable holding
	// its value (an API key, say), so that no secret sits in the file.
	HeadersEnv map[string]string `toml:"headers_env"`
	// IncludeContent exports prompt and output text on spans. Off, no
	// text a person or a model wrote ever leaves in a span.
	IncludeContent bool `toml:"include_content"`
	// SampleRatio is the share of runs traced, 0 to 1.
	SampleRatio float64 `toml:"sample_ratio"`
}
