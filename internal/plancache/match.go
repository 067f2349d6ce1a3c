package plancache

import (
	"fmt"
	"regexp"
	"strings"
)

// matcher is one phrasing compiled: its words in order, each parameter a
// capture.
type matcher struct {
	phrasing string
	re       *regexp.Regexp
	names    []string // the parameter of each capture
	literals int      // words besides the parameters: more is more specific
}

// compilePhrasing turns "stock check for {{sku}} in the {{warehouse}}
// warehouse" into a case-insensitive pattern anchored at both ends: the
// words must be the same, in order, with any spacing; a final ".", "?" or
// "!" is optional; a number parameter captures a number only.
func compilePhrasing(phrasing string, params map[string]Param) (*matcher, error) {
	body := strings.TrimSpace(phrasing)
	body = strings.TrimRight(body, ".?! ")
	m := &matcher{phrasing: phrasing, literals: literalWords(body)}
	var b strings.Builder
	b.WriteString(`(?is)^\s*`)
	last := 0
	for _, loc := range placeholderRe.FindAllStringSubmatchIndex(body, -1) {
		b.WriteString(literalPattern(body[last:loc[0]]))
		name := body[loc[2]:loc[3]]
		p, ok := params[name]
		if !ok {
			return nil, fmt.Errorf("phrasing %q uses {{%s}}, which is not a parameter", phrasing, name)
		}
		if p.Kind == KindNumber {
			b.WriteString(`(-?\d[\d,]*(?:\.\d+)?)`)
		} else {
			b.WriteString(`(.+?)`)
		}
		m.names = append(m.names, name)
		last = loc[1]
	}
	b.WriteString(literalPattern(body[last:]))
	b.WriteString(`[\s.?!]*$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("phrasing %q: %w", phrasing, err)
	}
	m.re = re
	return m, nil
}

// literalPattern matches text word for word, any run of spaces as any
// other.
func literalPattern(text string) string {
	var b strings.Builder
	space := false
	for _, r := range text {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			space = true
			continue
		}
		if space {
			b.WriteString(`\s+`)
			space = false
		}
		b.WriteString(regexp.QuoteMeta(string(r)))
	}
	if space {
		b.WriteString(`\s+`)
	}
	return b.String()
}

// extract matches request against the phrasing and returns each
// parameter's value as the request wrote it; false when the words differ
// or a value does not have its parameter's shape.
func (m *matcher) extract(request string, params map[string]Param) (map[string]string, bool) {
	sub := m.re.FindStringSubmatch(strings.TrimSpace(request))
	if sub == nil {
		return nil, false
	}
	out := map[string]string{}
	for i, name := range m.names {
		v := strings.TrimSpace(sub[i+1])
		if prev, ok := out[name]; ok && !strings.EqualFold(prev, v) {
			return nil, false // one parameter, two different values
		}
		if !fits(v, params[name]) {
			return nil, false
		}
		out[name] = v
	}
	return out, true
}

// fits reports whether v has p's shape: the same kind, and about as many
// words as the values p has taken (one more at most, one fewer at least).
func fits(v string, p Param) bool {
	if v == "" || kindOf(v) != p.Kind {
		return false
	}
	n := len(strings.Fields(v))
	return n >= max(1, p.MinWords-1) && n <= p.MaxWords+1
}
