package api

import "github.com/agentd/agentd/internal/events"

// The data of the events the API reads (metrics, OpenAI progress, the
// dashboard) is declared once, in package events, and published by the
// executor, the monitors and the fallback with the same types. These names
// are the same types under the API's old names, for its tests and callers;
// they are not copies.
type (
	RunStatusData     = events.RunStatusData
	StepStatusData    = events.StepStatusData
	ModelCallData     = events.ModelCallData
	BudgetChangedData = events.BudgetChangedData
	GPUSampleData     = events.GPUSampleData
	ThresholdData     = events.ThresholdData
	ResidencyData     = events.ModelResidencyData
)
