package exec

import (
	"encoding/json"
	"testing"
)

func TestOutputBound(t *testing.T) {
	tests := []struct {
		name     string
		schemas  []string
		min, max int
	}{
		{"free text", []string{""}, answerTokens, answerTokens},
		{"a number", []string{`{"type":"number"}`}, minOutputTokens, minOutputTokens},
		{"an object of a few fields", []string{`{"type":"object","properties":{"city":{"type":"string"},"temp_c":{"type":"number"},"ok":{"type":"boolean"}}}`}, 100, 300},
		{"a long list of records is bounded by maxItems", []string{`{"type":"array","maxItems":30,"items":{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"}}}}`}, 2000, maxOutputTokens},
		{"the largest of several", []string{`{"type":"number"}`, ""}, answerTokens, answerTokens},
		{"huge strings are capped", []string{`{"type":"array","maxItems":1000,"items":{"type":"string","maxLength":100000}}`}, maxOutputTokens, maxOutputTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raws []json.RawMessage
			for _, s := range tt.schemas {
				raws = append(raws, json.RawMessage(s))
			}
			if got := outputBound(raws...); got < tt.min || got > tt.max {
				t.Errorf("outputBound = %d, want within [%d, %d]", got, tt.min, tt.max)
			}
		})
	}
	if got := moreRoom(maxOutputTokens); got != maxOutputTokens {
		t.Errorf("moreRoom past the cap = %d", got)
	}
}
