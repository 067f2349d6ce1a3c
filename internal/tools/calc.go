package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// maxExprLen and maxExprDepth bound the work one calc call can cause;
// maxDigits and maxMagnitude bound every number in it, so that 10^100000000
// or a tower of products is refused before it can take memory or CPU.
const (
	maxExprLen   = 1000
	maxExprDepth = 64
	maxDigits    = 1000 // significant digits of an exact result
	maxMagnitude = 1000 // numbers lie between 10^-1000 and 10^1000 in size
	// roundedDigits is where a result that has no exact decimal form (1/3,
	// sqrt(2), pi) is rounded: IEEE 754 decimal128's 34 significant digits.
	roundedDigits = 34
)

// Contexts for decimal arithmetic. Sums, differences and products are
// exact (precision 0 turns rounding off); wide is precise enough to tell a
// division that terminates from one that does not; rounded is for results
// with no exact form. All round half away from zero, as people do.
var (
	exactCtx   = calcContext(0)
	wideCtx    = calcContext(maxDigits)
	roundedCtx = calcContext(roundedDigits)
)

func calcContext(precision uint32) *apd.Context {
	c := apd.BaseContext.WithPrecision(precision)
	c.Rounding = apd.RoundHalfUp
	return c
}

// pi and e to 34 significant digits, correctly rounded.
var (
	calcPi = mustDecimal("3.141592653589793238462643383279503")
	calcE  = mustDecimal("2.718281828459045235360287471352662")
)

func mustDecimal(s string) *apd.Decimal {
	d, _, err := apd.NewFromString(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Calc evaluates arithmetic in exact decimal with a small recursive-descent
// parser: no eval, no variables, nothing but numbers, operators and a few
// functions. 0.1 + 0.2 is 0.3, not 0.30000000000000004.
type Calc struct{}

var _ Tool = Calc{}

// Spec implements Tool.
func (Calc) Spec() Spec {
	return Spec{
		Name: "calc",
		Description: "Evaluate an arithmetic expression in exact decimal arithmetic and return the number. " +
			"Use it for any arithmetic instead of computing in your head. " +
			"Operators: + - * / % ^ (power), parentheses, unary minus. " +
			"Functions: sqrt(x), abs(x), round(x) or round(x, digits), floor(x), ceil(x), min(a, b, ...), max(a, b, ...). " +
			"Constants: pi, e. Example: {\"expression\": \"(12.5 * 4 - 3) / 2\"}. " +
			"+ - * %, whole-number powers and divisions that end are exact; other divisions, sqrt, fractional powers, pi and e are " +
			"rounded to 34 significant digits and the answer says \"rounded\": true. round() rounds half away from zero: " +
			"round(2.675, 2) = 2.68, round(-2.5) = -3. Numbers may have up to 1000 digits.",
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
	n, err := Evaluate(a.Expression)
	if err != nil {
		return Result{}, err
	}
	return marshalResult(struct {
		Expression string      `json:"expression"`
		Result     json.Number `json:"result"` // the decimal digits, as written: 0.3, 397.8
		Rounded    bool        `json:"rounded,omitempty"`
	}{a.Expression, json.Number(n.Text), n.Rounded})
}

// Number is calc's answer: the decimal digits, exact unless Rounded.
type Number struct {
	Text    string // plain decimal notation, no exponent: "0.3", "-12", "397.8"
	Rounded bool   // to 34 significant digits somewhere along the way
}

// Evaluate computes an arithmetic expression. Errors wrap ErrInvalidArgs and
// say where the problem is.
func Evaluate(expr string) (Number, error) {
	if len(expr) > maxExprLen {
		return Number{}, fmt.Errorf("%w: expression is %d characters long, the limit is %d; split the computation into steps", ErrInvalidArgs, len(expr), maxExprLen)
	}
	if strings.TrimSpace(expr) == "" {
		return Number{}, fmt.Errorf("%w: expression is empty", ErrInvalidArgs)
	}
	p := &calcParser{src: expr}
	p.next()
	v, err := p.expr(0)
	if err != nil {
		return Number{}, err
	}
	switch p.tok.kind {
	case tokEOF:
	case tokBad:
		return Number{}, p.errorf("%q is not allowed; use numbers, + - * / %% ^, parentheses and functions", p.tok.text)
	default:
		return Number{}, p.errorf("unexpected %s", p.tok)
	}
	return Number{Text: plain(v), Rounded: p.rounded}, nil
}

// plain writes d without an exponent and without trailing zeros: 3, not
// 3.00 or 3E+0; 100, not 1E+2.
func plain(d *apd.Decimal) string {
	var r apd.Decimal
	r.Reduce(d)
	if r.IsZero() {
		return "0"
	}
	return r.Text('f')
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
	num  *apd.Decimal
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
	src     string
	pos     int
	tok     calcToken
	rounded bool // some step had no exact result
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
		n, _, err := apd.NewFromString(text)
		if err != nil || strings.Count(text, ".") > 1 || text == "." {
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

// bounded refuses a number too long or too large to keep exactly, with
// the token at fault as the position.
func (p *calcParser) bounded(d *apd.Decimal, at calcToken) (*apd.Decimal, error) {
	if d.Form != apd.Finite {
		p.tok = at
		return nil, p.errorf("the result is not a finite number")
	}
	if d.IsZero() {
		return d, nil
	}
	var r apd.Decimal
	r.Reduce(d)
	if n := r.NumDigits(); n > maxDigits {
		p.tok = at
		return nil, p.errorf("the exact result would have %d significant digits, more than the %d calc keeps; round or split the computation", n, maxDigits)
	}
	if adj := r.NumDigits() + int64(r.Exponent) - 1; adj > maxMagnitude || adj < -maxMagnitude {
		p.tok = at
		return nil, p.errorf("the result is about 10^%d, outside the 10^-%d to 10^%d calc works in", adj, maxMagnitude, maxMagnitude)
	}
	return d, nil
}

// apply runs one decimal operation, notes whether it had to round, and
// bounds its result. at is the operator or function, for errors.
func (p *calcParser) apply(at calcToken, op func(d *apd.Decimal) (apd.Condition, error)) (*apd.Decimal, error) {
	d := new(apd.Decimal)
	cond, err := op(d)
	if err != nil {
		p.tok = at
		return nil, p.errorf("%v", err)
	}
	if cond.Inexact() {
		p.rounded = true
	}
	return p.bounded(d, at)
}

// expr := term (('+'|'-') term)*
func (p *calcParser) expr(depth int) (*apd.Decimal, error) {
	if depth > maxExprDepth {
		return nil, p.errorf("expression nests deeper than %d levels", maxExprDepth)
	}
	v, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		at := p.tok
		p.next()
		w, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		if at.text == "+" {
			v, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return exactCtx.Add(d, v, w) })
		} else {
			v, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return exactCtx.Sub(d, v, w) })
		}
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// term := unary (('*'|'/'|'%') unary)*
func (p *calcParser) term(depth int) (*apd.Decimal, error) {
	v, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("%") {
		at := p.tok
		p.next()
		w, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		switch at.text {
		case "*":
			v, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return exactCtx.Mul(d, v, w) })
		case "/":
			if w.IsZero() {
				p.tok = at
				return nil, p.errorf("division by zero")
			}
			v, err = p.divide(at, v, w)
		case "%":
			if w.IsZero() {
				p.tok = at
				return nil, p.errorf("division by zero")
			}
			// The remainder takes the sign of the dividend: -7 % 3 = -1.
			v, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return wideCtx.Rem(d, v, w) })
		}
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// divide is exact when the quotient ends within maxDigits digits (1/8 =
// 0.125), and rounded to roundedDigits when it does not (1/3).
func (p *calcParser) divide(at calcToken, x, y *apd.Decimal) (*apd.Decimal, error) {
	q := new(apd.Decimal)
	cond, err := wideCtx.Quo(q, x, y)
	if err == nil && !cond.Inexact() {
		return p.bounded(q, at)
	}
	return p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return roundedCtx.Quo(d, x, y) })
}

// unary := ('-'|'+') unary | power. Unary minus binds looser than ^, so
// -2^2 is -4 as in mathematics.
func (p *calcParser) unary(depth int) (*apd.Decimal, error) {
	if depth > maxExprDepth {
		return nil, p.errorf("expression nests deeper than %d levels", maxExprDepth)
	}
	if p.isOp("-") || p.isOp("+") {
		neg := p.tok.text == "-"
		p.next()
		v, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		if neg {
			v = new(apd.Decimal).Neg(v)
		}
		return v, nil
	}
	return p.power(depth)
}

// power := primary ('^' unary)?, right-associative: 2^3^2 = 2^9.
func (p *calcParser) power(depth int) (*apd.Decimal, error) {
	base, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	if !p.isOp("^") {
		return base, nil
	}
	at := p.tok
	p.next()
	exp, err := p.unary(depth + 1)
	if err != nil {
		return nil, err
	}
	return p.pow(at, base, exp)
}

// pow is exact for whole-number exponents: 2^-2 = 0.25, 3^40 to the last
// digit. Its size is estimated first, so that 10^100000000 is refused
// without being computed. Fractional exponents are rounded.
func (p *calcParser) pow(at calcToken, base, exp *apd.Decimal) (*apd.Decimal, error) {
	var e apd.Decimal
	e.Reduce(exp)
	if e.Exponent < 0 {
		if base.Sign() < 0 {
			p.tok = at
			return nil, p.errorf("a negative number to a fractional power is not a real number")
		}
		if base.IsZero() {
			if exp.Sign() < 0 {
				p.tok = at
				return nil, p.errorf("division by zero (zero to a negative power)")
			}
			return new(apd.Decimal), nil
		}
		return p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return roundedCtx.Pow(d, base, exp) })
	}
	switch {
	case base.IsZero():
		if exp.Sign() < 0 {
			p.tok = at
			return nil, p.errorf("division by zero (zero to a negative power)")
		}
		if exp.IsZero() {
			return apd.New(1, 0), nil
		}
		return new(apd.Decimal), nil
	case exp.IsZero():
		return apd.New(1, 0), nil
	}
	var b apd.Decimal
	b.Reduce(base)
	if b.Exponent == 0 && b.Coeff.IsInt64() && (b.Coeff.Int64() == 1) {
		// ±1 to any whole power: no work, however large the exponent.
		odd := e.Exponent == 0 && e.Coeff.Bit(0) == 1
		if b.Negative && odd {
			return apd.New(-1, 0), nil
		}
		return apd.New(1, 0), nil
	}
	// The exact result has about n*log10(coefficient) digits and a size of
	// about 10^(n*log10|base|).
	n, err := e.Int64()
	coeff, _ := new(big.Float).SetInt(b.Coeff.MathBigInt()).Float64()
	digits := float64(b.NumDigits()) // coefficients past float64's range
	if !math.IsInf(coeff, 0) {
		digits = math.Log10(coeff)
	}
	magnitude := float64(b.NumDigits()+int64(b.Exponent)-1) + 1
	if abs := math.Abs(float64(n)); err != nil || abs*digits > maxDigits+1 || abs*math.Abs(magnitude) > maxMagnitude+1 {
		p.tok = at
		return nil, p.errorf("%s^%s is too large to compute: calc keeps exact results up to %d digits and 10^%d", plain(base), plain(exp), maxDigits, maxMagnitude)
	}
	// Square and multiply, exactly; every step is smaller than the result.
	result := apd.New(1, 0)
	sq := new(apd.Decimal).Set(base)
	for k := uint64(math.Abs(float64(n))); k > 0; k >>= 1 {
		if k&1 == 1 {
			if result, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return exactCtx.Mul(d, result, sq) }); err != nil {
				return nil, err
			}
		}
		if k > 1 {
			if sq, err = p.apply(at, func(d *apd.Decimal) (apd.Condition, error) { return exactCtx.Mul(d, sq, sq) }); err != nil {
				return nil, err
			}
		}
	}
	if n < 0 {
		return p.divide(at, apd.New(1, 0), result)
	}
	return result, nil
}

func (p *calcParser) primary(depth int) (*apd.Decimal, error) {
	switch t := p.tok; {
	case t.kind == tokNum:
		p.next()
		return p.bounded(t.num, t)
	case t.kind == tokOp && t.text == "(":
		p.next()
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			return nil, p.errorf("expected \")\" but found %s", p.tok)
		}
		p.next()
		return v, nil
	case t.kind == tokIdent:
		p.next()
		switch t.text {
		case "pi":
			p.rounded = true
			return calcPi, nil
		case "e":
			p.rounded = true
			return calcE, nil
		}
		fn, ok := calcFuncs[t.text]
		if !ok {
			p.tok = t
			return nil, p.errorf("unknown name %q; functions are sqrt, abs, round, floor, ceil, min, max and constants pi, e", t.text)
		}
		if !p.isOp("(") {
			return nil, p.errorf("expected \"(\" after %s", t.text)
		}
		p.next()
		var args []*apd.Decimal
		if !p.isOp(")") {
			for {
				v, err := p.expr(depth + 1)
				if err != nil {
					return nil, err
				}
				args = append(args, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
		}
		if !p.isOp(")") {
			return nil, p.errorf("expected \")\" or \",\" but found %s", p.tok)
		}
		p.next()
		if len(args) < fn.min || (fn.max >= 0 && len(args) > fn.max) {
			p.tok = t
			return nil, p.errorf("%s takes %s, got %d", t.text, fn.arity, len(args))
		}
		v, cond, err := fn.f(args)
		if err != nil {
			p.tok = t
			return nil, p.errorf("%s: %v", t.text, err)
		}
		if cond.Inexact() {
			p.rounded = true
		}
		return p.bounded(v, t)
	case t.kind == tokEOF:
		return nil, p.errorf("expression ends too early, a number is missing")
	case t.kind == tokBad:
		return nil, p.errorf("%q is not allowed; use numbers, + - * / %% ^, parentheses and functions", t.text)
	default:
		return nil, p.errorf("unexpected %s, a number is missing", t)
	}
}

type calcFunc struct {
	min, max int // max < 0: no upper bound
	arity    string
	f        func([]*apd.Decimal) (*apd.Decimal, apd.Condition, error)
}

// unaryFn adapts a one-argument decimal operation.
func unaryFn(op func(c *apd.Context, d, x *apd.Decimal) (apd.Condition, error), c *apd.Context) func([]*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
	return func(a []*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
		d := new(apd.Decimal)
		cond, err := op(c, d, a[0])
		return d, cond, err
	}
}

// pick returns the argument that better wins by cmp: the least for min.
func pick(sign int) func([]*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
	return func(a []*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
		v := a[0]
		for _, x := range a[1:] {
			if x.Cmp(v) == sign {
				v = x
			}
		}
		return v, 0, nil
	}
}

var calcFuncs = map[string]calcFunc{
	"sqrt": {1, 1, "one argument", func(a []*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
		if a[0].Sign() < 0 {
			return nil, 0, fmt.Errorf("square root of a negative number (%s)", plain(a[0]))
		}
		d := new(apd.Decimal)
		cond, err := roundedCtx.Sqrt(d, a[0])
		return d, cond, err
	}},
	"abs":   {1, 1, "one argument", unaryFn((*apd.Context).Abs, exactCtx)},
	"floor": {1, 1, "one argument", unaryFn((*apd.Context).Floor, wideCtx)},
	"ceil":  {1, 1, "one argument", unaryFn((*apd.Context).Ceil, wideCtx)},
	"round": {1, 2, "one or two arguments (value, digits)", func(a []*apd.Decimal) (*apd.Decimal, apd.Condition, error) {
		places := int64(0)
		if len(a) == 2 {
			var r apd.Decimal
			r.Reduce(a[1])
			var err error
			places, err = r.Int64()
			if err != nil || r.Exponent < 0 || places < -maxMagnitude || places > maxMagnitude {
				return nil, 0, fmt.Errorf("digits must be a whole number from -%d to %d, got %s", maxMagnitude, maxMagnitude, plain(a[1]))
			}
		}
		d := new(apd.Decimal)
		if a[0].Exponent >= int32(-places) {
			// Already no finer than asked: nothing to round.
			return d.Set(a[0]), 0, nil
		}
		// Half away from zero: round(2.675, 2) = 2.68, round(-2.5) = -3.
		_, err := wideCtx.Quantize(d, a[0], int32(-places))
		return d, 0, err
	}},
	"min": {1, -1, "one or more arguments", pick(-1)},
	"max": {1, -1, "one or more arguments", pick(1)},
}
