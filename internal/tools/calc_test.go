package tools

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	tests := []struct {
		expr string
		want float64
	}{
		{"1+2*3", 7},
		{"(1+2)*3", 9},
		{"10/4", 2.5},
		{"10 % 4", 2},
		{"2^10", 1024},
		{"2^3^2", 512},
		{"-2^2", -4},
		{"(-2)^2", 4},
		{"2^-1", 0.5},
		{"--3", 3},
		{"-(4-6)", 2},
		{"+5", 5},
		{"1.5 + .25", 1.75},
		{"1e3 + 2.5E-1", 1000.25},
		{"sqrt(16) + abs(-3)", 7},
		{"round(2.5)", 3},
		{"round(3.14159, 2)", 3.14},
		{"floor(-1.5) + ceil(1.2)", 0},
		{"min(3, 1, 2) + max(4, 9)", 10},
		{"max(2)", 2},
		{"pi", math.Pi},
		{"2 * e", 2 * math.E},
		{"SQRT(9)", 3},
		{" ( 12.5 * 4 - 3 ) / 2 ", 23.5},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Evaluate(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("= %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{"", "empty"},
		{"1 +", "ends too early"},
		{"1 / 0", "division by zero"},
		{"5 % 0", "division by zero"},
		{"(1 + 2", `expected ")"`},
		{"1 + 2)", `unexpected ")"`},
		{"2 ** 3", "unexpected"},
		{"sqrt(-1)", "negative"},
		{"sqrt(1, 2)", "one argument"},
		{"min()", "one or more"},
		{"round(1, 0.5)", "whole number"},
		{"foo(1)", `unknown name "foo"`},
		{"sqrt 4", `expected "("`},
		{"x + 1", `unknown name "x"`},
		{"1; rm -rf /", `";" is not allowed`},
		{"os.exit(1)", `unknown name "os"`},
		{"1..2", "not allowed"},
		{"10^400", "not a finite number"},
		{strings.Repeat("1+", 600) + "1", "limit is 1000"},
		{strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200), "nests deeper"},
		{strings.Repeat("-", 200) + "1", "nests deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.expr[:min(len(tt.expr), 20)], func(t *testing.T) {
			_, err := Evaluate(tt.expr)
			wantErr(t, err, ErrInvalidArgs, tt.want)
		})
	}
}

func TestCalcTool(t *testing.T) {
	r := NewRegistry(nil)
	if err := r.Register(Calc{}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Call(context.Background(), "calc", json.RawMessage(`{"expression":"6*7"}`))
	if err != nil || string(res.Output) != `{"expression":"6*7","result":42}` {
		t.Fatalf("calc = %s, %v", res.Output, err)
	}
	_, err = r.Call(context.Background(), "calc", json.RawMessage(`{"expr":"6*7"}`))
	wantErr(t, err, ErrInvalidArgs, "args.expression: missing property", "args.expr: unknown property")
}

func TestNowTool(t *testing.T) {
	fixed := time.Date(2026, 7, 4, 15, 30, 0, 0, time.UTC)
	n := Now{Clock: func() time.Time { return fixed }}
	out, err := call(t, n, `{"timezone":"America/New_York"}`)
	if err != nil {
		t.Fatal(err)
	}
	if out["time"] != "2026-07-04T11:30:00-04:00" || out["weekday"] != "Saturday" || out["date"] != "2026-07-04" || out["utc_offset"] != "-04:00" {
		t.Fatalf("now = %v", out)
	}
	out, err = call(t, n, `{}`)
	if err != nil || out["time"] != "2026-07-04T15:30:00Z" || out["timezone"] != "UTC" {
		t.Fatalf("now UTC = %v, %v", out, err)
	}
	for _, tz := range []string{"Mars/Olympus", "Local", "../../etc/passwd"} {
		_, err = call(t, n, `{"timezone":"`+tz+`"}`)
		wantErr(t, err, ErrInvalidArgs, "unknown time zone")
	}
}
