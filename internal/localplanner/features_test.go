package localplanner

import (
	"testing"
)

func TestExtractFeatures(t *testing.T) {
	known := KnownWords(weatherTools().List())
	tests := []struct {
		text string
		want Features
	}{
		{"What is the weather in Austin?", Features{Words: 6, Asks: 1, UnknownEntities: 1}},
		{"Get the weather", Features{Words: 3, Asks: 1}},
		{"Weather first. Calc next, and then search cities? Also sum it?", Features{Words: 11, Asks: 5}},
		{"If it rains in Oslo use Bergen, otherwise use Tromsø unless it is 2024.", Features{Words: 14, Asks: 1, Conditionals: 3, UnknownEntities: 4}},
		{"Do these:\n1. weather\n2. cities\n- calc", Features{Words: 8, Asks: 3}},
		{"", Features{}},
	}
	for _, tt := range tests {
		if got := ExtractFeatures(tt.text, known); got != tt.want {
			t.Errorf("ExtractFeatures(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestScore(t *testing.T) {
	simple := Features{Words: 8, Asks: 1}.Score()
	hard := Features{Words: 140, Asks: 6, Conditionals: 4, UnknownEntities: 12}.Score()
	if simple != 0 || hard != 1 {
		t.Fatalf("scores %v %v, want 0 and 1", simple, hard)
	}
	if s := (Features{Words: 1000, Asks: 1}).Score(); s > 0.2 {
		t.Errorf("length alone must not escalate: %v", s)
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint("What is the weather in Austin, TX?")
	b := Fingerprint("austin tx weather: what is it")
	c := Fingerprint("What is the weather in Boston?")
	if a != b || a == c || len(a) != 32 {
		t.Fatalf("fingerprints %s %s %s", a, b, c)
	}
}
