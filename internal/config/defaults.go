package config

import "time"

// Default returns the configuration agentd runs with when no file is given:
// loopback only, token auth, the field's usual small models, remote fallback
// off.
func Default() *Config {
	return &Config{
		Server: ServerConfig{
			Listen:          "127.0.0.1:8484",
			Auth:            "token",
			MaxRequestBytes: 1 << 20,
			ShutdownTimeout: Duration(10 * time.Second),
			BodyTimeout:     Duration(30 * time.Second),
		},
		Ollama: OllamaConfig{
			Endpoints: []EndpointConfig{{
				Name: "local", URL: "http://127.0.0.1:11434", Kind: KindOllama, ParallelSlots: 1, MaxQueue: 512,
			}},
			RequestTimeout: Duration(5 * time.Minute),
			ConnectTimeout: Duration(5 * time.Second),
			MaxRetries:     3,
			RetryBackoff:   Duration(500 * time.Millisecond),
		},
		Models: ModelsConfig{
			Router:     "granite4:tiny-h",
			Planner:    "gemma3:12b",
			Fast:       "granite4:tiny-h",
			Standard:   "qwen3:8b",
			Summarizer: "granite4:tiny-h",
			Validator:  "granite4:tiny-h",
			Embedding:  "nomic-embed-text",
			KeepAlive:  Duration(30 * time.Minute),
			Options:    map[string]ModelOptions{},
		},
		Planner: PlannerConfig{
			Mode:              "auto",
			MaxSteps:          12,
			RepairAttempts:    2,
			Timeout:           Duration(2 * time.Minute),
			PromptTokenBudget: 3000,
			ClassifyWorkflows: "related",
			Complexity:        ComplexityConfig{EscalateScore: 0.7},
			Cache:             PlanCacheConfig{Enabled: true, Use: "auto", MaxTemplates: 500, RetireAfter: 2},
		},
		Executor: ExecutorConfig{
			MaxConcurrentRuns:  4,
			MaxConcurrentSteps: 4,
			QueueSize:          256,
			StepTimeout:        Duration(2 * time.Minute),
			RunTimeout:         Duration(30 * time.Minute),
			MaxErrors:          6,
			MaxRetries:         2,
			RetryBackoff:       Duration(500 * time.Millisecond),
			MaxRepeatCalls:     3,
			MaxReplans:         2,
			ApprovalTimeout:    Duration(15 * time.Minute),
			ToolOutputCap:      64 << 10,
			PromptTokenBudget:  4000,
			ScratchpadTurns:    12,
			PrefetchTools:      true,
		},
		Tools: ToolsConfig{
			HTTP:   HTTPToolsConfig{MaxBytes: 1 << 20, Timeout: Duration(15 * time.Second)},
			Files:  FilesToolsConfig{MaxBytes: 1 << 20},
			SQLite: SQLiteToolsConfig{MaxRows: 200},
			Docs: DocsToolsConfig{
				ChunkChars: 1200, ChunkOverlap: 200, ReindexEvery: Duration(5 * time.Minute), TopK: 5,
				Extensions: []string{".md", ".txt"},
			},
			Approval: map[string]string{},
		},
		Fallback: FallbackConfig{
			Enabled:     false,
			Provider:    "openai",
			BaseURL:     "https://api.openai.com/v1",
			Model:       "gpt-4.1-mini",
			APIKeyEnv:   "AGENTD_REMOTE_API_KEY",
			MaxTokens:   2048,
			MaxInFlight: 1,
			Timeout:     Duration(60 * time.Second),
			TimeZone:    "UTC",
			Caps: CapsConfig{
				RunUSD: 0.05, DayUSD: 1, MonthUSD: 20,
				DayBytes: 10 << 20, MonthBytes: 200 << 20,
			},
			Alerts: AlertsConfig{Thresholds: []float64{0.5, 0.8, 1.0}},
			Prices: map[string]PriceConfig{
				"gpt-4.1":           {InputPerMTok: 2.00, OutputPerMTok: 8.00},
				"gpt-4.1-mini":      {InputPerMTok: 0.40, OutputPerMTok: 1.60},
				"gpt-4o":            {InputPerMTok: 2.50, OutputPerMTok: 10.00},
				"gpt-4o-mini":       {InputPerMTok: 0.15, OutputPerMTok: 0.60},
				"claude-sonnet-4-5": {InputPerMTok: 3.00, OutputPerMTok: 15.00},
				"claude-haiku-4-5":  {InputPerMTok: 1.00, OutputPerMTok: 5.00},
			},
			Link: LinkConfig{
				ProbeInterval:       Duration(5 * time.Minute),
				LatencyBudget:       Duration(20 * time.Second),
				ConstrainedBelowBps: 256_000,
				OfflineAfter:        3,
				RetryMin:            Duration(15 * time.Second),
				RetryMax:            Duration(5 * time.Minute),
			},
			DeferredMaxAge: Duration(24 * time.Hour),
			Privacy:        PrivacyConfig{MinDigits: 7, MinEncodedLength: 16},
		},
		VRAM: VRAMConfig{
			Probe:          "auto",
			NvidiaSMI:      "nvidia-smi",
			SysfsRoot:      "/",
			SampleInterval: Duration(5 * time.Second),
			ProbeTimeout:   Duration(5 * time.Second),
			Headroom:       512 << 20,
			Prewarm:        true,
			Thresholds:     Thresholds{VRAMPercent: 95, GPUTempC: 85, HostMemPercent: 90},
		},
		Storage: StorageConfig{
			Retention: RetentionConfig{
				Runs:    Duration(30 * 24 * time.Hour),
				Events:  Duration(7 * 24 * time.Hour),
				Samples: Duration(7 * 24 * time.Hour),
				Ledgers: Duration(400 * 24 * time.Hour),
			},
			PruneInterval: Duration(time.Hour),
		},
		Logging:   LoggingConfig{Level: "info", Format: "text"},
		Telemetry: TelemetryConfig{SampleRatio: 1},
		MCPServer: MCPServeConfig{Wait: Duration(2 * time.Minute)},
	}
}
