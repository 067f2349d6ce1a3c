package ollamasim

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := DefaultModels()[0]
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; empty = valid
	}{
		{"zero value", Config{}, ""},
		{"default catalog", Config{Models: DefaultModels()}, ""},
		{"negative time scale", Config{TimeScale: -1}, "TimeScale = -1"},
		{"fault probability", Config{Faults: []Fault{{Class: FaultBusy, Probability: 2}}}, "Faults[busy].Probability = 2"},
		{"unknown fault", Config{Faults: []Fault{{Class: "gremlins", Probability: 1}}}, "Faults.Class = gremlins"},
		{"duplicate model", Config{Models: []Model{good, good}}, "Models[1].Name"},
		{"zero size", Config{Models: []Model{{Name: "x", Capabilities: []string{CapCompletion}, PrefillTPS: 1, DecodeTPS: 1}}}, "Models[0].Size = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, m := range DefaultModels() {
		if err := (Config{Models: []Model{m}}).Validate(); err != nil {
			t.Errorf("default model %s invalid: %v", m.Name, err)
		}
	}
}
