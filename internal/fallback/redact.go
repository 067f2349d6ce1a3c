package fallback

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/config"
)

// Redaction kinds, as they appear in placeholders ([EMAIL_1]) and in the
// redaction report.
const (
	KindEmail      = "EMAIL"
	KindPhone      = "PHONE"
	KindCard       = "CARD"
	KindIBAN       = "IBAN"
	KindIP         = "IP"
	KindURL        = "URL" // a URL carrying credentials (user:pass@)
	KindKey        = "KEY" // a recognised API key or token format
	KindSecret     = "SECRET"
	KindNationalID = "ID"
	KindName       = "NAME"
	KindTerm       = "TERM"
)

// detector finds one kind of sensitive value. Lower prio wins where two
// detectors claim overlapping text.
type detector struct {
	kind  string
	prio  int
	re    *regexp.Regexp
	group int // the submatch that is the value; 0 is the whole match
	// check confirms a match in text[start:end] and may shorten it; it
	// returns the accepted end.
	check func(text string, start, end int) (int, bool)
}

// Redactor replaces sensitive values with placeholders before a request
// leaves. It is safe for concurrent use; each request gets its own Session.
type Redactor struct {
	detectors []detector
}

// NewRedactor builds the built-in detectors plus the site's national-ID
// patterns, names and terms.
func NewRedactor(p config.PrivacyConfig) (*Redactor, error) {
	r := &Redactor{}
	add := func(kind string, prio int, pattern string, group int, check func(string, int, int) (int, bool)) {
		r.detectors = append(r.detectors, detector{kind: kind, prio: prio, re: regexp.MustCompile(pattern), group: group, check: check})
	}
	add(KindKey, 0, `-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`, 0, nil)
	add(KindURL, 1, `(?i)\b[a-z][a-z0-9+.\-]*://[^\s/?#@"'<>]+@[^\s"'<>]*`, 0, trimTrailingPunct)
	for _, k := range []string{
		`\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}`,
		`\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`,
		`\bgh[pousr]_[A-Za-z0-9]{30,}\b`,
		`\bgithub_pat_[A-Za-z0-9_]{22,}`,
		`\bxox[abposr]-[A-Za-z0-9\-]{10,}`,
		`\bglpat-[A-Za-z0-9_\-]{20,}`,
		`\bAIza[0-9A-Za-z_\-]{35}`,
		`\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}`,
	} {
		add(KindKey, 2, k, 0, nil)
	}
	add(KindKey, 2, `(?i)\bbearer\s+([A-Za-z0-9._~+/\-]{8,}=*)`, 1, nil)
	add(KindKey, 2, `(?i)\b(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret|password|passwd|pwd)\s*[:=]\s*["']?([^\s"',;]{4,})`, 1, nil)
	add(KindEmail, 3, `[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`, 0, nil)
	add(KindIBAN, 4, `\b[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]{1,4}){3,8}`, 0, longestValid(15, 34, ibanValid))
	add(KindCard, 5, `\b[0-9](?:[ \-]?[0-9]){12,18}\b`, 0, longestValid(13, 19, luhnValid))
	for i, pat := range p.NationalIDPatterns {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("fallback.privacy.national_id_patterns[%d]: %w", i, err)
		}
		r.detectors = append(r.detectors, detector{kind: KindNationalID, prio: 6, re: re})
	}
	add(KindIP, 7, `(?i)[0-9a-f]*:[0-9a-f:.]*`, 0, ipv6Check)
	add(KindIP, 8, `\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:/[0-9]{1,2})?\b`, 0, nil)
	add(KindPhone, 9, `(?:\+|\b00)[1-9][0-9]{0,2}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,6}`, 0, digitsBetween(8, 15))
	add(KindPhone, 9, `\(?\b[2-9][0-9]{2}\)?[ .\-]?[2-9][0-9]{2}[ .\-][0-9]{4}\b`, 0, nil)
	add(KindPhone, 9, `\b0[1-9][0-9]{0,4}(?:[ .\-/]?[0-9]{2,4}){2,4}\b`, 0, digitsBetween(9, 12))
	if re := wordList(p.Names); re != nil {
		r.detectors = append(r.detectors, detector{kind: KindName, prio: 10, re: re, check: wordBoundary})
	}
	if re := wordList(p.Terms); re != nil {
		r.detectors = append(r.detectors, detector{kind: KindTerm, prio: 11, re: re, check: wordBoundary})
	}
	add(KindSecret, 12, `\b[0-9a-fA-F]{32,}\b`, 0, hexSecret)
	add(KindSecret, 12, `(?:^|[^A-Za-z0-9+/_\-])([A-Za-z0-9+/_\-]{24,}={0,2})`, 1, highEntropy)
	return r, nil
}

// wordList matches any of words, case-insensitively; boundaries are checked
// on Unicode letters by wordBoundary, since RE2's \b knows only ASCII.
func wordList(words []string) *regexp.Regexp {
	var alts []string
	for _, w := range words {
		if w = strings.TrimSpace(w); w != "" {
			alts = append(alts, regexp.QuoteMeta(w))
		}
	}
	if len(alts) == 0 {
		return nil
	}
	sort.Slice(alts, func(i, j int) bool { return len(alts[i]) > len(alts[j]) })
	return regexp.MustCompile(`(?i)(?:` + strings.Join(alts, "|") + `)`)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

func wordBoundary(text string, start, end int) (int, bool) {
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:start]); isWordRune(r) {
			return 0, false
		}
	}
	if end < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[end:]); isWordRune(r) {
			return 0, false
		}
	}
	return end, true
}

func trimTrailingPunct(text string, start, end int) (int, bool) {
	for end > start && strings.ContainsRune(".,;:!?)]}", rune(text[end-1])) {
		end--
	}
	return end, end > start
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func compact(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}

// longestValid accepts the longest prefix of a match that ends at a group
// boundary, is followed by no letter or digit, holds min..max characters
// without separators, and passes valid. It keeps an IBAN or card number
// from swallowing the word after it, and finds the number in front of it.
func longestValid(min, max int, valid func(string) bool) func(string, int, int) (int, bool) {
	return func(text string, start, end int) (int, bool) {
		for e := end; e > start; e-- {
			if !isAlnum(text[e-1]) || (e < len(text) && isAlnum(text[e])) {
				continue
			}
			c := compact(text[start:e])
			if len(c) < min {
				return 0, false
			}
			if len(c) <= max && valid(c) {
				return e, true
			}
		}
		return 0, false
	}
}

func luhnValid(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func ibanValid(s string) bool {
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	rearranged := s[4:] + s[:4]
	var b strings.Builder
	for _, r := range rearranged {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteString(strconv.Itoa(int(r-'A') + 10))
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}

func digitsBetween(min, max int) func(string, int, int) (int, bool) {
	return func(text string, start, end int) (int, bool) {
		n := 0
		for i := start; i < end; i++ {
			if text[i] >= '0' && text[i] <= '9' {
				n++
			}
		}
		if end < len(text) && text[end] >= '0' && text[end] <= '9' {
			return 0, false
		}
		return end, n >= min && n <= max
	}
}

// ipv6Check accepts the longest prefix of a colon-bearing run that parses
// as an IPv6 address, so "at 2001:db8::1." loses only its full stop and
// times like 12:30:45 are left alone.
func ipv6Check(text string, start, end int) (int, bool) {
	if start > 0 && (isAlnum(text[start-1]) || text[start-1] == '.') {
		return 0, false
	}
	if strings.Count(text[start:end], ":") < 2 {
		return 0, false
	}
	for e := end; e >= start+2; e-- {
		if a, err := netip.ParseAddr(text[start:e]); err == nil && a.Is6() {
			return e, true
		}
	}
	return 0, false
}

func hexSecret(text string, start, end int) (int, bool) {
	s := text[start:end]
	return end, strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "abcdefABCDEF")
}

// highEntropy accepts mixed-case-and-digit runs whose characters look
// random, the shape of keys and tokens that have no known prefix.
func highEntropy(text string, start, end int) (int, bool) {
	s := strings.TrimRight(text[start:end], "=")
	var upper, lower, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		upper = upper || c >= 'A' && c <= 'Z'
		lower = lower || c >= 'a' && c <= 'z'
		digit = digit || c >= '0' && c <= '9'
	}
	return end, upper && lower && digit && entropy(s) >= 3.8
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Session redacts the texts of one request, so that a value met twice gets
// the same placeholder, and keeps the way back.
type Session struct {
	r       *Redactor
	mu      sync.Mutex
	byValue map[string]string // kind + value -> placeholder
	values  map[string]string // placeholder -> value
	next    map[string]int
	report  map[string]int
}

// NewSession starts the redaction of one request.
func (r *Redactor) NewSession() *Session {
	return &Session{r: r, byValue: map[string]string{}, values: map[string]string{}, next: map[string]int{}, report: map[string]int{}}
}

type span struct {
	start, end int
	d          *detector
}

// Redact replaces every sensitive value in text with its placeholder.
func (s *Session) Redact(text string) string {
	var cands []span
	for i := range s.r.detectors {
		d := &s.r.detectors[i]
		for _, m := range d.re.FindAllStringSubmatchIndex(text, -1) {
			start, end := m[2*d.group], m[2*d.group+1]
			if start < 0 || end <= start {
				continue
			}
			if d.check != nil {
				var ok bool
				if end, ok = d.check(text, start, end); !ok || end <= start {
					continue
				}
			}
			cands = append(cands, span{start, end, d})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.d.prio != b.d.prio {
			return a.d.prio < b.d.prio
		}
		if a.end-a.start != b.end-b.start {
			return a.end-a.start > b.end-b.start
		}
		return a.start < b.start
	})
	var kept []span
	for _, c := range cands {
		overlaps := false
		for _, k := range kept {
			if c.start < k.end && k.start < c.end {
				overlaps = true
				break
			}
		}
		if !overlaps {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return text
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].start < kept[j].start })
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	last := 0
	for _, k := range kept {
		b.WriteString(text[last:k.start])
		b.WriteString(s.placeholder(k.d, text[k.start:k.end]))
		last = k.end
	}
	b.WriteString(text[last:])
	return b.String()
}

func (s *Session) placeholder(d *detector, value string) string {
	// Keyed by the exact text, so the way back restores each occurrence as
	// it was written ("KARI NORDMANN" and "Kari Nordmann" differ).
	key := d.kind + "\x00" + value
	s.report[d.kind]++
	if p, ok := s.byValue[key]; ok {
		return p
	}
	s.next[d.kind]++
	p := "[" + d.kind + "_" + strconv.Itoa(s.next[d.kind]) + "]"
	s.byValue[key] = p
	s.values[p] = value
	return p
}

var placeholderRe = regexp.MustCompile(`\[[A-Z]+_[0-9]+\]`)

// Restore puts the real values back in place of this session's
// placeholders; unknown placeholders are left as they are.
func (s *Session) Restore(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.values) == 0 {
		return text
	}
	return placeholderRe.ReplaceAllStringFunc(text, func(p string) string {
		if v, ok := s.values[p]; ok {
			return v
		}
		return p
	})
}

// RestoreJSON restores placeholders in every string (keys included) of a
// JSON document, however deep, and re-encodes it.
func (s *Session) RestoreJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("plan is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("plan is not JSON: text after the document")
	}
	return marshal(s.restoreValue(v))
}

func (s *Session) restoreValue(v any) any {
	switch t := v.(type) {
	case string:
		return s.Restore(t)
	case []any:
		for i := range t {
			t[i] = s.restoreValue(t[i])
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[s.Restore(k)] = s.restoreValue(e)
		}
		return out
	}
	return v
}

// RedactSchema redacts the human text of a JSON Schema — every
// "description" and "title" — and leaves its structure, names, enums and
// patterns alone, since the plan must still match them.
func (s *Session) RedactSchema(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("plan schema is not JSON: %w", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				if str, ok := e.(string); ok && (k == "description" || k == "title") {
					t[k] = s.Redact(str)
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(v)
	return marshal(v)
}

// Report is how many values of each kind were replaced; it never holds the
// values.
func (s *Session) Report() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.report))
	for k, v := range s.report {
		out[k] = v
	}
	return out
}
