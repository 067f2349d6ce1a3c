package api

import "time"

// The data of the events the API reads (metrics, OpenAI progress, the
// dashboard). Producers may send more fields; every field here is optional,
// so a payload that grows or lacks one still counts what it can.

// RunStatusData is run.status's data.
type RunStatusData struct {
	Status   string `json:"status"`
	Previous string `json:"previous,omitempty"`
	Error    string `json:"error,omitempty"`
}

// StepStatusData is step.status's data. A terminal status (done, failed,
// skipped, canceled) with DurationMS, or with StartedAt and FinishedAt,
// feeds the step latency histogram.
type StepStatusData struct {
	StepID     string     `json:"step_id"`
	Status     string     `json:"status"`
	Kind       string     `json:"kind,omitempty"` // tool | task
	Tool       string     `json:"tool,omitempty"`
	Tier       string     `json:"tier,omitempty"`
	DurationMS *float64   `json:"duration_ms,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// ModelCallData is model.call's data.
type ModelCallData struct {
	StepID       string  `json:"step_id,omitempty"`
	Model        string  `json:"model"`
	Location     string  `json:"location"` // local | remote
	Purpose      string  `json:"purpose,omitempty"`
	PromptTokens int     `json:"prompt_tokens"`
	OutputTokens int     `json:"output_tokens"`
	TotalMS      float64 `json:"total_ms"`
	CostUSD      float64 `json:"cost_usd"`
	Error        string  `json:"error,omitempty"`
}

// BudgetChangedData is budget.changed's data: every cap, or one cap's
// fields at the top level.
type BudgetChangedData struct {
	Caps []BudgetCap `json:"caps,omitempty"`
	BudgetCap
}

// GPUSampleData is gpu.sample's data (the shape of vram.Sample).
type GPUSampleData struct {
	GPUs []struct {
		Index              int      `json:"index"`
		UUID               string   `json:"uuid,omitempty"`
		Name               string   `json:"name"`
		MemoryTotalBytes   *float64 `json:"memory_total_bytes"`
		MemoryUsedBytes    *float64 `json:"memory_used_bytes"`
		UtilizationPercent *float64 `json:"utilization_percent"`
		TemperatureC       *float64 `json:"temperature_c"`
	} `json:"gpus"`
	Host *struct {
		MemoryTotalBytes  float64  `json:"memory_total_bytes"`
		MemoryUsedBytes   float64  `json:"memory_used_bytes"`
		MemoryUsedPercent float64  `json:"memory_used_percent"`
		CPUPercent        *float64 `json:"cpu_percent"`
	} `json:"host,omitempty"`
}

// ThresholdData is a threshold event's data (vram.ThresholdEvent).
type ThresholdData struct {
	Metric  string  `json:"metric"`
	Subject string  `json:"subject"`
	Value   float64 `json:"value"`
	High    float64 `json:"high"`
	Low     float64 `json:"low"`
	// Level is "high" or "normal" when the event type does not say.
	Level string `json:"level,omitempty"`
}

// ResidencyData is model.residency's data.
type ResidencyData struct {
	Models []LoadedModel `json:"models"`
}
