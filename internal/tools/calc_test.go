package tools

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	tests := []struct {
		expr    string
		want    string
		rounded bool
	}{
		{"1+2*3", "7", false},
		{"(1+2)*3", "9", false},
		{"10/4", "2.5", false},
		{"10 % 4", "2", false},
		{"-7 % 3", "-1", false},
		{"5.5 % 2", "1.5", false},
		{"2^10", "1024", false},
		{"2^3^2", "512", false},
		{"-2^2", "-4", false},
		{"(-2)^2", "4", false},
		{"(-2)^3", "-8", false},
		{"2^-1", "0.5", false},
		{"2^-2", "0.25", false},
		{"0.5^3", "0.125", false},
		{"0^0", "1", false},
		{"(-1)^1000000001", "-1", false},
		{"--3", "3", false},
		{"-(4-6)", "2", false},
		{"+5", "5", false},
		{"1.5 + .25", "1.75", false},
		{"1e3 + 2.5E-1", "1000.25", false},
		{"0.1+0.2", "0.3", false},
		{"0.1*3", "0.3", false},
		{"1.10 * 2", "2.2", false},
		{"2340*17/100", "397.8", false},
		{"1/8", "0.125", false},
		{"1/3", "0.3333333333333333333333333333333333", true},
		{"2/3", "0.6666666666666666666666666666666667", true},
		{"1/3*3", "0.9999999999999999999999999999999999", true},
		{"1/2^100", "0.0000000000000000000000000000007888609052210118054117285652827862296732064351090230047702789306640625", false},
		{"123456789012345678901234567890 * 987654321098765432109876543210", "121932631137021795226185032733622923332237463801111263526900", false},
		{"99999999999999999999 + 1", "100000000000000000000", false},
		{"3^40", "12157665459056928801", false},
		{"10^400 - 10^400 + 1", "1", false},
		{"sqrt(16) + abs(-3)", "7", false},
		{"sqrt(2)", "1.414213562373095048801688724209698", true},
		{"round(2.5)", "3", false},
		{"round(-2.5)", "-3", false},
		{"round(2.675, 2)", "2.68", false},
		{"round(3.14159, 2)", "3.14", false},
		{"round(1234.5, -2)", "1200", false},
		{"round(1.5, 3)", "1.5", false},
		{"floor(-1.5) + ceil(1.2)", "0", false},
		{"min(3, 1, 2) + max(4, 9)", "10", false},
		{"max(2)", "2", false},
		{"pi", "3.141592653589793238462643383279503", true},
		{"2 * e", "5.436563656918090470720574942705324", true},
		{"2^0.5", "1.414213562373095048801688724209698", true},
		{"SQRT(9)", "3", false},
		{" ( 12.5 * 4 - 3 ) / 2 ", "23.5", false},
		{"-0", "0", false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := Evaluate(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != tt.want || got.Rounded != tt.rounded {
				t.Fatalf("= %s (rounded %v), want %s (rounded %v)", got.Text, got.Rounded, tt.want, tt.rounded)
			}
		})
	}
}

// Rounded results are right to every digit shown: they agree with float64
// as far as float64 goes, and the last digit is the correctly rounded one.
func TestEvaluateRoundedDigits(t *testing.T) {
	for expr, want := range map[string]float64{"pi": math.Pi, "e": math.E, "sqrt(2)": math.Sqrt2, "2^0.5": math.Sqrt2, "1/7": 1.0 / 7} {
		got, err := Evaluate(expr)
		if err != nil {
			t.Fatal(err)
		}
		f, err := strconv.ParseFloat(got.Text, 64)
		if err != nil || f != want {
			t.Errorf("%s = %s, want %v", expr, got.Text, want)
		}
		if n := len(strings.TrimLeft(strings.ReplaceAll(got.Text, ".", ""), "0")); n != 34 {
			t.Errorf("%s = %s: %d significant digits, want 34", expr, got.Text, n)
		}
	}
	// 1/7 = 0.142857 repeating: the 34th significant digit rounds 0.1428571 up.
	if got, _ := Evaluate("1/7"); got.Text != "0.1428571428571428571428571428571429" {
		t.Errorf("1/7 = %s", got.Text)
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
		{"1 / (2 - 2)", "division by zero"},
		{"0^-1", "division by zero"},
		{"(1 + 2", `expected ")"`},
		{"1 + 2)", `unexpected ")"`},
		{"2 ** 3", "unexpected"},
		{"sqrt(-1)", "negative"},
		{"(-8)^0.5", "not a real number"},
		{"sqrt(1, 2)", "one argument"},
		{"min()", "one or more"},
		{"round(1, 0.5)", "whole number"},
		{"round(1, 5000)", "whole number"},
		{"foo(1)", `unknown name "foo"`},
		{"sqrt 4", `expected "("`},
		{"x + 1", `unknown name "x"`},
		{"1; rm -rf /", `";" is not allowed`},
		{"os.exit(1)", `unknown name "os"`},
		{"1..2", "not allowed"},
		{"10^100000000", "too large to compute"},
		{"10^1001", "too large to compute"},
		{"2^99999999999999999999", "too large to compute"},
		{"9^9^9", "too large to compute"},
		{"0.5^100000", "too large to compute"},
		{"1e5000", "outside"},
		{"(7^900)*(7^900)", "significant digits"},
		{"1e999 * 1e999", "outside"},
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

// worstCases are expressions within the length limit that would make an
// unbounded evaluator work for a long time or grow huge numbers.
var worstCases = []string{
	strings.Repeat("(7^900)*", 100) + "1",
	strings.Repeat("9^9^", 200) + "9",
	strings.Repeat("1e999/", 150) + "7",
	strings.Repeat("sqrt(", 60) + "2" + strings.Repeat(")", 60),
	"(7^1000)/(3^1000)",
}

// Every bound holds: each worst case is refused or answered within the
// digits limit (how fast is BenchmarkEvaluateWorstCases's to measure).
func TestEvaluateBoundsHold(t *testing.T) {
	for _, expr := range worstCases {
		n, err := Evaluate(expr)
		if err != nil {
			continue
		}
		digits := len(strings.TrimLeft(strings.ReplaceAll(strings.TrimPrefix(n.Text, "-"), ".", ""), "0"))
		if digits > 1100 {
			t.Errorf("%.40s…: a %d-digit result, over the bound", expr, digits)
		}
	}
}

func BenchmarkEvaluateWorstCases(b *testing.B) {
	for b.Loop() {
		for _, expr := range worstCases {
			_, _ = Evaluate(expr)
		}
	}
}

func TestCalcTool(t *testing.T) {
	r := NewRegistry(nil)
	if err := r.Register(Calc{}); err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]string{
		`{"expression":"6*7"}`:         `{"expression":"6*7","result":42}`,
		`{"expression":"0.1+0.2"}`:     `{"expression":"0.1+0.2","result":0.3}`,
		`{"expression":"2340*17/100"}`: `{"expression":"2340*17/100","result":397.8}`,
		`{"expression":"1/3"}`:         `{"expression":"1/3","result":0.3333333333333333333333333333333333,"rounded":true}`,
	} {
		res, err := r.Call(context.Background(), "calc", json.RawMessage(args))
		if err != nil || string(res.Output) != want {
			t.Errorf("calc %s = %s, %v; want %s", args, res.Output, err, want)
		}
	}
	_, err := r.Call(context.Background(), "calc", json.RawMessage(`{"expr":"6*7"}`))
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
