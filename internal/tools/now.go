package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	_ "time/tzdata" // offline sites may have no zoneinfo installed; carry our own
)

// Now tells the current time in an IANA time zone.
type Now struct {
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
}

var _ Tool = Now{}

// Spec implements Tool.
func (Now) Spec() Spec {
	return Spec{
		Name: "now",
		Description: "Get the current date and time. Give an IANA time zone name such as \"Europe/Paris\", " +
			"\"America/New_York\" or \"UTC\" (the default). Returns the time in RFC 3339, the date, the weekday and the UTC offset.",
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{"timezone":{"type":"string","maxLength":64,` +
			`"description":"IANA time zone name, e.g. \"Asia/Tokyo\"; omit for UTC."}},"additionalProperties":false}`),
		Idempotent:  false, // the answer changes with time
		Timeout:     5 * time.Second,
		Concurrency: 16,
	}
}

// Call implements Tool.
func (n Now) Call(_ context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		TimeZone string `json:"timezone"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	if a.TimeZone == "" {
		a.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(a.TimeZone)
	if err != nil || a.TimeZone == "Local" {
		return Result{}, fmt.Errorf("%w: unknown time zone %q; use an IANA name like \"Europe/Berlin\", \"America/Chicago\" or \"UTC\"", ErrInvalidArgs, a.TimeZone)
	}
	clock := n.Clock
	if clock == nil {
		clock = time.Now
	}
	t := clock().In(loc)
	_, offset := t.Zone()
	return marshalResult(map[string]any{
		"time":           t.Format(time.RFC3339),
		"date":           t.Format(time.DateOnly),
		"clock":          t.Format(time.TimeOnly),
		"weekday":        t.Weekday().String(),
		"timezone":       a.TimeZone,
		"utc_offset":     t.Format("-07:00"),
		"offset_seconds": offset,
		"unix":           t.Unix(),
	})
}
