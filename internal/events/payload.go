package events

import (
	"encoding/json"
	"strings"
	"time"
)

// Payload is an event's data. Every kind of event has one struct here,
// which the producer publishes and every consumer (metrics, the OpenAI
// stream, tests) decodes, so a field one side renames or forgets fails to
// compile instead of silently emptying a metric. The JSON names are the
// wire format the dashboard and docs/api.md rely on: change them only with
// both.
type Payload interface {
	// EventType is the event's type, e.g. "step.status".
	EventType() string
}

// Event types published outside the run executor, declared here so each
// payload can name its own type. The packages that publish them keep their
// own constants equal to these (a test checks).
const (
	DeferredExpired   = "deferred.expired"
	DeferredDrained   = "deferred.drained"
	BudgetCapReached  = "budget.cap_reached"
	ProviderSuspended = "fallback.provider_suspended"
	ProviderEnabled   = "fallback.provider_enabled"
	VRAMHigh          = "vram.high"
	VRAMNormal        = "vram.normal"
	GPUTempHigh       = "gpu.temperature.high"
	GPUTempNormal     = "gpu.temperature.normal"
	HostMemoryHigh    = "host.memory.high"
	HostMemoryNormal  = "host.memory.normal"
	ModelSpill        = "vram.model.spill"
	ModelSpillCleared = "vram.model.spill_cleared"
)

// ---- runs and steps (internal/exec) ----------------------------------

// RunCreatedData is run.created's data.
type RunCreatedData struct {
	Status   string `json:"status"`
	Source   string `json:"source"`
	Workflow string `json:"workflow"`
	Priority int    `json:"priority"`
}

// RunStatusData is run.status's data.
type RunStatusData struct {
	Status string `json:"status"`
	// Previous is the status before, when the producer knows it.
	Previous   string  `json:"previous,omitempty"`
	Error      string  `json:"error"`
	ErrorCount int     `json:"error_count"`
	CostUSD    float64 `json:"cost_usd"`
}

// PlanCreatedData is plan.created's data: a plan (or a replan, with a
// higher Version) and its steps as they stand.
type PlanCreatedData struct {
	Version int            `json:"version"`
	Source  string         `json:"source"`
	Model   string         `json:"model"`
	Goal    string         `json:"goal"`
	Answer  string         `json:"answer"`
	Steps   []PlanStepData `json:"steps"`
}

// PlanStepData is one step of PlanCreatedData.
type PlanStepData struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	Tool      string   `json:"tool"`
	Tier      string   `json:"tier"`
	DependsOn []string `json:"depends_on"`
	Status    string   `json:"status"`
}

// StepStatusData is step.status's data; the dashboard draws the plan graph
// from it. StartedAt is set once the step has started; a terminal status
// (done, failed, skipped, canceled) and review also carry FinishedAt and,
// when the step had started, DurationMS (FinishedAt - StartedAt), which
// feeds agentd_step_duration_seconds.
type StepStatusData struct {
	StepID      string     `json:"step_id"`
	Status      string     `json:"status"`
	Kind        string     `json:"kind"`
	Tool        string     `json:"tool"`
	Tier        string     `json:"tier"`
	DependsOn   []string   `json:"depends_on"`
	PlanVersion int        `json:"plan_version"`
	Attempts    int        `json:"attempts"`
	Error       string     `json:"error"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	DurationMS  *float64   `json:"duration_ms,omitempty"`
}

// StepTimes fills StartedAt, FinishedAt and DurationMS from a step's
// recorded times; either may be nil.
func (d *StepStatusData) StepTimes(started, finished *time.Time) {
	d.StartedAt, d.FinishedAt, d.DurationMS = started, finished, nil
	if started != nil && finished != nil && !finished.Before(*started) {
		ms := float64(finished.Sub(*started).Microseconds()) / 1000
		d.DurationMS = &ms
	}
}

// StepAttemptData is step.attempt's data: one rung of the failure ladder
// starting (status running) or ending (ok or failed).
type StepAttemptData struct {
	StepID     string `json:"step_id"`
	N          int    `json:"n"`
	Rung       string `json:"rung"`
	Status     string `json:"status"`
	ErrorClass string `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`
}

// ModelCallData is model.call's data: one finished model call.
type ModelCallData struct {
	StepID       string  `json:"step_id,omitempty"`
	Model        string  `json:"model"`
	Purpose      string  `json:"purpose,omitempty"`
	Tier         string  `json:"tier,omitempty"`
	PromptTokens int     `json:"prompt_tokens"`
	OutputTokens int     `json:"output_tokens"`
	DoneReason   string  `json:"done_reason,omitempty"`
	TotalMS      int64   `json:"total_ms"`
	WallMS       int64   `json:"wall_ms"`
	CostUSD      float64 `json:"cost_usd"`
	// Location is local or remote, as the run detail's model calls say.
	Location string `json:"location"`
	// Where is Location under the name the first release sent; kept so a
	// client reading it still works.
	Where string `json:"where"`
	Error string `json:"error,omitempty"`
}

// ToolCallData is tool.call's data: status started, then ok or failed
// with the call's time and output size.
type ToolCallData struct {
	StepID      string `json:"step_id"`
	Tool        string `json:"tool"`
	ArgsHash    string `json:"args_hash"`
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	MS          int64  `json:"ms,omitempty"`
	OutputBytes int    `json:"output_bytes,omitempty"`
}

// ApprovalRequestedData is approval.requested's data.
type ApprovalRequestedData struct {
	StepID    string          `json:"step_id"`
	Tool      string          `json:"tool"`
	Args      json.RawMessage `json:"args,omitempty"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// ApprovalDecidedData is approval.decided's data.
type ApprovalDecidedData struct {
	StepID   string `json:"step_id"`
	Decision string `json:"decision"` // approved | denied | expired
	By       string `json:"by"`
	Reason   string `json:"reason"`
}

// ReviewAddedData is review.added's data.
type ReviewAddedData struct {
	StepID string `json:"step_id"`
	Reason string `json:"reason"`
}

// ReviewResolvedData is review.resolved's data.
type ReviewResolvedData struct {
	StepID string `json:"step_id"`
	Action string `json:"action"` // retry | done | fail
	By     string `json:"by"`
	Note   string `json:"note"`
}

// ---- machine (internal/vram) -------------------------------------------

// GPUSampleData is gpu.sample's data, and the JSON of vram.Sample (the
// status page's hardware, the metrics read at scrape): every GPU the probe
// saw and the host, at Time.
type GPUSampleData struct {
	Time      time.Time `json:"time"`
	GPUSource string    `json:"gpu_source,omitempty"`
	GPUs      []GPUData `json:"gpus"`
	GPUError  string    `json:"gpu_error,omitempty"`
	Host      *HostData `json:"host,omitempty"`
	HostError string    `json:"host_error,omitempty"`
}

// GPUData is one GPU of a sample. Its fields are vram.GPU's, in order, so
// vram converts one to the other and a field added there fails to compile
// until it is added here. A nil pointer is a value the source could not
// report.
type GPUData struct {
	Source             string   `json:"source"`
	Index              int      `json:"index"`
	UUID               string   `json:"uuid,omitempty"`
	Name               string   `json:"name"`
	MemoryTotalBytes   *uint64  `json:"memory_total_bytes"`
	MemoryUsedBytes    *uint64  `json:"memory_used_bytes"`
	MemoryFreeBytes    *uint64  `json:"memory_free_bytes"`
	UtilizationPercent *float64 `json:"utilization_percent"`
	TemperatureC       *float64 `json:"temperature_c"`
	PowerDrawW         *float64 `json:"power_draw_w"`
	PowerLimitW        *float64 `json:"power_limit_w"`
	// Simulated marks the demo's GPU, which does not exist.
	Simulated bool `json:"simulated,omitempty"`
}

// HostData is the host part of a sample (vram.HostSample's JSON).
type HostData struct {
	MemoryTotalBytes     uint64        `json:"memory_total_bytes"`
	MemoryUsedBytes      uint64        `json:"memory_used_bytes"`
	MemoryAvailableBytes uint64        `json:"memory_available_bytes"`
	MemoryUsedPercent    float64       `json:"memory_used_percent"`
	CPUPercent           *float64      `json:"cpu_percent"`
	Load                 *LoadAverage  `json:"load"`
	Temperatures         []Temperature `json:"temperatures,omitempty"`
	Warnings             []string      `json:"warnings,omitempty"`
}

// LoadAverage is the 1, 5 and 15 minute run-queue averages.
type LoadAverage struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// Temperature is one sensor reading in degrees Celsius.
type Temperature struct {
	Sensor  string  `json:"sensor"`
	Celsius float64 `json:"celsius"`
}

// ThresholdData is the data of the threshold events (vram.high,
// vram.normal, gpu.temperature.*, host.memory.*): a value crossed High, or
// fell back to Low.
type ThresholdData struct {
	// Type is the event type (one of the VRAMHigh... constants); it is not
	// part of the data.
	Type string    `json:"-"`
	Time time.Time `json:"time"`
	// Metric is vram_used_percent, gpu_temperature_c or
	// host_memory_used_percent.
	Metric string `json:"metric"`
	// Subject is the GPU's id for GPU metrics, "host" otherwise.
	Subject string  `json:"subject"`
	GPUName string  `json:"gpu_name,omitempty"`
	Value   float64 `json:"value"`
	High    float64 `json:"high"`
	Low     float64 `json:"low"`
	// Level is high or normal.
	Level string `json:"level"`
}

// ModelSpillData is the data of vram.model.spill (part of a loaded model
// runs on the CPU) and vram.model.spill_cleared.
type ModelSpillData struct {
	Cleared   bool          `json:"-"` // spill_cleared rather than spill
	Endpoint  string        `json:"endpoint"`
	Residency ResidencyData `json:"residency"`
}

// ResidencyData is one model Ollama holds (vram.Residency's JSON).
type ResidencyData struct {
	Name          string    `json:"name"`
	Model         string    `json:"model"`
	SizeBytes     uint64    `json:"size_bytes"`
	VRAMBytes     uint64    `json:"size_vram_bytes"`
	ExpiresAt     time.Time `json:"expires_at"`
	ContextLength int       `json:"context_length,omitempty"`
	Spill         bool      `json:"spill"`
	CPUPercent    float64   `json:"cpu_percent"`
	Warning       string    `json:"warning,omitempty"`
}

// ModelResidencyData is model.residency's data: every model resident now.
type ModelResidencyData struct {
	Models []ResidentModel `json:"models"`
}

// ResidentModel is one model of ModelResidencyData.
type ResidentModel struct {
	Name      string    `json:"name"`
	Endpoint  string    `json:"endpoint,omitempty"`
	SizeBytes int64     `json:"size_bytes"`
	VRAMBytes int64     `json:"vram_bytes"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// ---- remote fallback (internal/fallback) -------------------------------

// LinkStateData is link.state's data: the remote link changed state. To
// and State are the same (State is what the metrics and the status page
// call it); ThroughputBPS is bytes per second, BitsPerSec the same in bits.
type LinkStateData struct {
	From          string  `json:"from"`
	To            string  `json:"to"`
	State         string  `json:"state"`
	RTTMS         float64 `json:"rtt_ms"`
	BitsPerSec    int64   `json:"bits_per_sec"`
	ThroughputBPS float64 `json:"throughput_bps"`
}

// EgressData is egress's data: a request about to leave the machine, as
// the egress ledger recorded it.
type EgressData struct {
	ID          int64          `json:"id"`
	Time        time.Time      `json:"time"`
	RunID       string         `json:"run_id"`
	Destination string         `json:"destination"`
	Provider    string         `json:"provider"`
	Model       string         `json:"model"`
	Purpose     string         `json:"purpose"`
	BytesOut    int64          `json:"bytes_out"`
	BytesIn     int64          `json:"bytes_in"`
	SHA256      string         `json:"sha256"`
	Redactions  map[string]int `json:"redactions"`
	Status      string         `json:"status"`
}

// BudgetChangedData is budget.changed's data: a remote call's spend was
// committed. Caps, when the producer sends them, is every cap after it.
type BudgetChangedData struct {
	USD   float64         `json:"usd"`
	Bytes int64           `json:"bytes"`
	Model string          `json:"model"`
	Caps  []BudgetCapData `json:"caps,omitempty"`
}

// BudgetCapData is one hard cap and where spend stands against it.
type BudgetCapData struct {
	Name     string  `json:"name"`   // e.g. usd_day, bytes_month
	Period   string  `json:"period"` // run | day | month
	Unit     string  `json:"unit"`   // usd | bytes
	Cap      float64 `json:"cap"`
	Spent    float64 `json:"spent"`
	Reserved float64 `json:"reserved"`
	Alert    int     `json:"alert"` // 0, 50, 80 or 100
}

// BudgetAlertData is budget.alert's data (fallback.Alert's fields): spend
// crossed Threshold (a fraction) of a cap, or a provider overbilled.
type BudgetAlertData struct {
	Kind      string    `json:"kind"` // threshold | overbill
	Provider  string    `json:"provider,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Cap       string    `json:"cap,omitempty"`
	Period    string    `json:"period"`
	Threshold float64   `json:"threshold"`
	Spent     float64   `json:"spent"`
	Limit     float64   `json:"limit"`
	Time      time.Time `json:"time"`
}

// BudgetCapReachedData is budget.cap_reached's data: a remote call was
// refused by a cap. The JSON names are the Go names (fallback.CapError has
// no tags), kept as the wire has them.
type BudgetCapReachedData struct {
	Cap      string
	Period   string
	Spent    float64
	Reserved float64
	Request  float64
	Limit    float64
}

// ProviderStateData is the remote provider's state (fallback.ProviderState
// is this type).
type ProviderStateData struct {
	Provider    string    `json:"provider"`
	Destination string    `json:"destination"`
	Model       string    `json:"model"`
	Enabled     bool      `json:"enabled"`
	Suspended   bool      `json:"suspended"`
	Reason      string    `json:"reason,omitempty"`
	RunID       string    `json:"run_id,omitempty"`
	ReservedUSD float64   `json:"reserved_usd,omitempty"`
	ActualUSD   float64   `json:"actual_usd,omitempty"`
	SuspendedAt time.Time `json:"suspended_at,omitzero"`
	ChangedAt   time.Time `json:"changed_at,omitzero"`
	ChangedBy   string    `json:"changed_by,omitempty"`
	// InFlight and MaxInFlight are remote calls now, and the bound.
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
}

// ProviderSuspendedData is fallback.provider_suspended's data.
type ProviderSuspendedData ProviderStateData

// ProviderEnabledData is fallback.provider_enabled's data.
type ProviderEnabledData ProviderStateData

// DeferredExpiredData is deferred.expired's data: a deferred run waited
// past its deadline.
type DeferredExpiredData struct {
	Deadline time.Time `json:"deadline"`
	Reason   string    `json:"reason"`
}

// DeferredDrainedData is deferred.drained's data: a deferred run was
// resubmitted.
type DeferredDrainedData struct {
	Deadline time.Time `json:"deadline"`
}

// ---- daemon ------------------------------------------------------------

// DaemonStateData is daemon.state's data.
type DaemonStateData struct {
	State string `json:"state"` // ready
	Demo  bool   `json:"demo"`
}

// EventType implementations: one line per payload, so the type an event
// is published under is decided by its data.

func (RunCreatedData) EventType() string        { return RunCreated }
func (RunStatusData) EventType() string         { return RunStatus }
func (PlanCreatedData) EventType() string       { return PlanCreated }
func (StepStatusData) EventType() string        { return StepStatus }
func (StepAttemptData) EventType() string       { return StepAttempt }
func (ModelCallData) EventType() string         { return ModelCall }
func (ToolCallData) EventType() string          { return ToolCall }
func (ApprovalRequestedData) EventType() string { return ApprovalRequested }
func (ApprovalDecidedData) EventType() string   { return ApprovalDecided }
func (ReviewAddedData) EventType() string       { return ReviewAdded }
func (ReviewResolvedData) EventType() string    { return ReviewResolved }
func (GPUSampleData) EventType() string         { return GPUSample }
func (d ThresholdData) EventType() string {
	if d.Type != "" {
		return d.Type
	}
	return Threshold
}
func (d ModelSpillData) EventType() string {
	if d.Cleared {
		return ModelSpillCleared
	}
	return ModelSpill
}
func (ModelResidencyData) EventType() string    { return ModelResidency }
func (LinkStateData) EventType() string         { return LinkState }
func (EgressData) EventType() string            { return Egress }
func (BudgetChangedData) EventType() string     { return BudgetChanged }
func (BudgetAlertData) EventType() string       { return BudgetAlert }
func (BudgetCapReachedData) EventType() string  { return BudgetCapReached }
func (ProviderSuspendedData) EventType() string { return ProviderSuspended }
func (ProviderEnabledData) EventType() string   { return ProviderEnabled }
func (DeferredExpiredData) EventType() string   { return DeferredExpired }
func (DeferredDrainedData) EventType() string   { return DeferredDrained }
func (DaemonStateData) EventType() string       { return DaemonState }

// Decode reads an event's data into the payload type P; false when the
// event is of another type or its data does not decode. The threshold and
// spill payloads, which serve several types, get their type from the event.
func Decode[P Payload](e Event) (P, bool) {
	var p P
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &p) != nil {
		return p, false
	}
	switch d := any(&p).(type) {
	case *ThresholdData:
		if e.Type == Threshold || strings.HasSuffix(e.Type, ".high") || strings.HasSuffix(e.Type, ".normal") {
			d.Type = e.Type
		}
	case *ModelSpillData:
		d.Cleared = e.Type == ModelSpillCleared
	}
	return p, p.EventType() == e.Type
}
