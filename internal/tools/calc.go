package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxExprLen and maxExprDepth bound the work one calc call can cause.
const (
	maxExprLen   = 1000
	maxExprDepth = 64
)

// Calc evaluates arithmetic with a small recursive-descent parser: no eval,
// no variables, nothing but numbers, operators and a few functions.
type Calc struct{}

var _ Tool = Calc{}

// Spec implements Tool.
func (Calc) Spec() Spec {
	return Spec{
		Name: "calc",
		Description: "Evaluate an arithmetic expression exactly and return the number. " +
			"Use it for any arithmetic instead of computing in your head. " +
			"Operators: + - * / % ^ (power), parentheses, unary minus. " +
			"Functions: sqrt(x), abs(x), round(x) or round(x, digits), floor(x), ceil(x), min(a, b, ...), max(a, b, ...). " +
			"Constants: pi, e. Example: {\"expression\": \"(12.5 * 4 - 3) / 2\"}.",
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{"expression":{"type":"string","minLength":1,"maxLength":1000,` +
			`"description":"The expression, e.g. \"sqrt(16) + 2^3 * (1.5 - 0.5)\". Numbers only, no units, no thousands separators."}},` +
			`"required":["expression"],"additionalProperties":false}`),
		Idempotent:  true,
		Timeout:     DefaultTimeout,
		Concurrency: 16,
	}
}

// Call implements Tool.
func (Calc) Call(_ context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		Expression string `json:"expression"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	v, err := Evaluate(a.Expression)
	if err != nil {
		return Result{}, err
	}
	return marshalResult(struct {
		Expression string  `json:"expression"`
		Result     float64 `json:"result"`
	}{a.Expression, v})
}

// Evaluate computes an arithmetic expression. Errors wrap ErrInvalidArgs and
// say where the problem is.
func Evaluate(expr string) (float64, error) {
	if len(expr) > maxExprLen {
		return 0, fmt.Errorf("%w: expression is %d characters long, the limit is %d; split the computation into steps", ErrInvalidArgs, len(expr), maxExprLen)
	}
	if strings.TrimSpace(expr) == "" {
		return 0, fmt.Errorf("%w: expression is empty", ErrInvalidArgs)
	}
	p := &calcParser{src: expr}
	p.next()
	v, err := p.expr(0)
	if err != nil {
		return 0, err
	}
	switch p.tok.kind {
	case tokEOF:
	case tokBad:
		return 0, p.errorf("%q is not allowed; use numbers, + - * / %% ^, parentheses and functions", p.tok.text)
	default:
		return 0, p.errorf("unexpected %s", p.tok)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: the result is not a finite number (%v)", ErrInvalidArgs, v)
	}
	return v, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokNum
	tokIdent
	tokOp // one of + - * / % ^ ( ) ,
	tokBad
)

type calcToken struct {
	kind tokKind
	text string
	num  float64
	pos  int
}

func (t calcToken) String() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokNum:
		return "number " + t.text
	default:
		return strconv.Quote(t.text)
	}
}

type calcParser struct {
	src string
	pos int
	tok calcToken
}

func (p *calcParser) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s at position %d in %q", ErrInvalidArgs, fmt.Sprintf(format, a...), p.tok.pos+1, p.src)
}

func (p *calcParser) next() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		p.tok = calcToken{kind: tokEOF, pos: start}
		return
	}
	c := p.src[p.pos]
	switch {
	case c >= '0' && c <= '9' || c == '.':
		for p.pos < len(p.src) && (isDigit(p.src[p.pos]) || p.src[p.pos] == '.') {
			p.pos++
		}
		// Exponent: 1e3, 2.5E-4.
		if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
			q := p.pos + 1
			if q < len(p.src) && (p.src[q] == '+' || p.src[q] == '-') {
				q++
			}
			if q < len(p.src) && isDigit(p.src[q]) {
				for q < len(p.src) && isDigit(p.src[q]) {
					q++
				}
				p.pos = q
			}
		}
		text := p.src[start:p.pos]
		n, err := strconv.ParseFloat(text, 64)
		if err != nil {
			p.tok = calcToken{kind: tokBad, text: text, pos: start}
			return
		}
		p.tok = calcToken{kind: tokNum, text: text, num: n, pos: start}
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
		for p.pos < len(p.src) && (isDigit(p.src[p.pos]) || p.src[p.pos] == '_' ||
			p.src[p.pos] >= 'a' && p.src[p.pos] <= 'z' || p.src[p.pos] >= 'A' && p.src[p.pos] <= 'Z') {
			p.pos++
		}
		p.tok = calcToken{kind: tokIdent, text: strings.ToLower(p.src[start:p.pos]), pos: start}
	case strings.IndexByte("+-*/%^(),", c) >= 0:
		p.pos++
		p.tok = calcToken{kind: tokOp, text: string(c), pos: start}
	default:
		p.pos++
		p.tok = calcToken{kind: tokBad, text: string(c), pos: start}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *calcParser) isOp(s string) bool { return p.tok.kind == tokOp && p.tok.text == s }

// expr := term (('+'|'-') term)*
func (p *calcParser) expr(depth int) (float64, error) {
	if depth > maxExprDepth {
		return 0, p.errorf("expression nests deeper than %d levels", maxExprDepth)
	}
	v, err := p.term(depth)
	if err != nil {
		return 0, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.tok.text
		p.next()
		w, err := p.term(depth)
		if err != nil {
			return 0, err
		}
		if op == "+" {
			v += w
		} else {
			v -= w
		}
	}
	return v, nil
}

// term := unary (('*'|'/'|'%') unary)*
func (p *calcParser) term(depth int) (float64, error) {
	v, err := p.unary(depth)
	if err != nil {
		return 0, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("%") {
		op, at := p.tok.text, p.tok
		p.next()
		w, err := p.unary(depth)
		if err != nil {
			return 0, err
		}
		switch op {
		case "*":
			v *= w
		case "/", "%":
			if w == 0 {
				p.tok = at
				return 0, p.errorf("division by zero")
			}
			if op == "/" {
				v /= w
			} else {
				v = math.Mod(v, w)
			}
		}
	}
	return v, nil
}

// unary := ('-'|'+') unary | power. Unary minus binds looser than ^, so
// -2^2 is -4 as in mathematics.
func (p *calcParser) unary(depth int) (float64, error) {
	if depth > maxExprDepth {
		return 0, p.errorf("expression nests deeper than %d levels", maxExprDepth)
	}
	if p.isOp("-") || p.isOp("+") {
		neg := p.tok.text == "-"
		p.next()
		v, err := p.unary(depth + 1)
		if neg {
			v = -v
		}
		return v, err
	}
	return p.power(depth)
}

// power := primary ('^' unary)?, right-associative: 2^3^2 = 2^9.
func (p *calcParser) power(depth int) (float64, error) {
	base, err := p.primary(depth)
	if err != nil {
		return 0, err
	}
	if !p.isOp("^") {
		return base, nil
	}
	p.next()
	exp, err := p.unary(depth + 1)
	if err != nil {
		return 0, err
	}
	return math.Pow(base, exp), nil
}

func (p *calcParser) primary(depth int) (float64, error) {
	switch t := p.tok; {
	case t.kind == tokNum:
		p.next()
		return t.num, nil
	case t.kind == tokOp && t.text == "(":
		p.next()
		v, err := p.expr(depth + 1)
		if err != nil {
			return 0, err
		}
		if !p.isOp(")") {
			return 0, p.errorf("expected \")\" but found %s", p.tok)
		}
		p.next()
		return v, nil
	case t.kind == tokIdent:
		p.next()
		switch t.text {
		case "pi":
			return math.Pi, nil
		case "e":
			return math.E, nil
		}
		fn, ok := calcFuncs[t.text]
		if !ok {
			p.tok = t
			return 0, p.errorf("unknown name %q; functions are sqrt, abs, round, floor, ceil, min, max and constants pi, e", t.text)
		}
		if !p.isOp("(") {
			return 0, p.errorf("expected \"(\" after %s", t.text)
		}
		p.next()
		var args []float64
		if !p.isOp(")") {
			for {
				v, err := p.expr(depth + 1)
				if err != nil {
					return 0, err
				}
				args = append(args, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
		}
		if !p.isOp(")") {
			return 0, p.errorf("expected \")\" or \",\" but found %s", p.tok)
		}
		p.next()
		if len(args) < fn.min || (fn.max >= 0 && len(args) > fn.max) {
			p.tok = t
			return 0, p.errorf("%s takes %s, got %d", t.text, fn.arity, len(args))
		}
		v, err := fn.f(args)
		if err != nil {
			p.tok = t
			return 0, p.errorf("%s: %v", t.text, err)
		}
		return v, nil
	case t.kind == tokEOF:
		return 0, p.errorf("expression ends too early, a number is missing")
	case t.kind == tokBad:
		return 0, p.errorf("%q is not allowed; use numbers, + - * / %% ^, parentheses and functions", t.text)
	default:
		return 0, p.errorf("unexpected %s, a number is missing", t)
	}
}

type calcFunc struct {
	min, max int // max < 0: no upper bound
	arity    string
	f        func([]float64) (float64, error)
}

var calcFuncs = map[string]calcFunc{
	"sqrt": {1, 1, "one argument", func(a []float64) (float64, error) {
		if a[0] < 0 {
			return 0, fmt.Errorf("square root of a negative number (%v)", a[0])
		}
		return math.Sqrt(a[0]), nil
	}},
	"abs":   {1, 1, "one argument", func(a []float64) (float64, error) { return math.Abs(a[0]), nil }},
	"floor": {1, 1, "one argument", func(a []float64) (float64, error) { return math.Floor(a[0]), nil }},
	"ceil":  {1, 1, "one argument", func(a []float64) (float64, error) { return math.Ceil(a[0]), nil }},
	"round": {1, 2, "one or two arguments (value, digits)", func(a []float64) (float64, error) {
		if len(a) == 1 {
			return math.Round(a[0]), nil
		}
		d := a[1]
		if d != math.Trunc(d) || d < -15 || d > 15 {
			return 0, fmt.Errorf("digits must be a whole number from -15 to 15, got %v", d)
		}
		m := math.Pow(10, d)
		return math.Round(a[0]*m) / m, nil
	}},
	"min": {1, -1, "one or more arguments", func(a []float64) (float64, error) {
		v := a[0]
		for _, x := range a[1:] {
			v = math.Min(v, x)
		}
		return v, nil
	}},
	"max": {1, -1, "one or more arguments", func(a []float64) (float64, error) {
		v := a[0]
		for _, x := range a[1:] {
			v = math.Max(v, x)
		}
		return v, nil
	}},
}
