package fallback

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/agentd/agentd/internal/config"
)

// Redaction kinds, as they appear in placeholders ([EMAIL_1]) and in the
// redaction report.
const (
	KindEmail      = "EMAIL"
	KindPhone      = "PHONE"
	KindNumber     = "NUMBER" // any other run of 7+ digits
	KindCard       = "CARD"
	KindIBAN       = "IBAN"
	KindIP         = "IP"
	KindURL        = "URL"    // a URL carrying credentials (user:pass@)
	KindKey        = "KEY"    // a recognised API key format, or the value of a secret field
	KindSecret     = "SECRET" // a long hex, base64 or base32 string
	KindNationalID = "ID"
	KindName       = "NAME"
	KindTerm       = "TERM"
)

// match is a sensitive span of a view.
type match struct {
	start, end int
	kind       string
}

// detector finds one class of sensitive values in a view. Where detectors
// claim overlapping text, the union is redacted under the kind of the
// detector listed first, so no part of either value leaves.
type detector struct {
	find func(v string) []match
}

// Redactor replaces sensitive values with placeholders before a request
// leaves. It is default-deny: besides the site's names, terms and IDs, every
// identifier-like token is replaced unless its class is allowed in config.
// Text is matched after normalisation (see view) and replaced in the
// original. It is safe for concurrent use; each request gets its own Session.
type Redactor struct {
	detectors []detector
}

// NewRedactor builds the detectors for a site's privacy settings.
func NewRedactor(p config.PrivacyConfig) (*Redactor, error) {
	r := &Redactor{}
	minDigits, minEncoded := p.MinDigits, p.MinEncodedLength
	if minDigits <= 0 {
		minDigits = 7
	}
	if minEncoded <= 0 {
		minEncoded = 16
	}
	allowed := func(class string) bool { return slices.Contains(p.Allow, class) }
	// class is a config.Redact* class, or "" for configured values, which
	// cannot be allowed.
	add := func(class string, find func(string) []match) {
		if class == "" || !allowed(class) {
			r.detectors = append(r.detectors, detector{find: find})
		}
	}
	add(config.RedactKeyFormats, needing("PRIVATE KEY-----", regexFinder(KindKey, privateKeyRe, nil)))
	add(config.RedactCredentialURLs, needing("://", regexFinder(KindURL, credURLRe, trimTrailingPunct)))
	for _, k := range keyFormats {
		add(config.RedactKeyFormats, needing(k.literal, regexFinder(KindKey, k.re, nil)))
	}
	add(config.RedactSecretFields, findSecretFields)
	add(config.RedactSecretFields, findSecretColumns)
	add(config.RedactEmails, needing("@", regexFinder(KindEmail, emailRe, nil)))
	add(config.RedactIBANs, regexFinder(KindIBAN, ibanRe, longestValid(15, 34, ibanValid)))
	for i, pat := range p.NationalIDPatterns {
		re, err := regexp.Compile(pat)
		if err != nil {
			return nil, fmt.Errorf("fallback.privacy.national_id_patterns[%d]: %w", i, err)
		}
		add("", regexFinder(KindNationalID, re, nil))
	}
	if re := idList(p.IDs); re != nil {
		add("", regexFinder(KindNationalID, re, alnumBoundary))
	}
	add(config.RedactIPAddresses, needing(":", regexFinder(KindIP, ipv6Re, ipv6Check)))
	add(config.RedactIPAddresses, regexFinder(KindIP, ipv4Re, nil))
	add(config.RedactEncodedStrings, encodedFinder(minEncoded))
	// Cards and other digit runs share one scanner, so a card's class and
	// the digit-run class can be allowed independently.
	cards, digits := !allowed(config.RedactCards), !allowed(config.RedactDigitRuns)
	if cards || digits {
		add("", digitRunFinder(minDigits, cards, digits))
	}
	if re := wordList(p.Names); re != nil {
		add("", regexFinder(KindName, re, wordBoundary))
	}
	if re := wordList(p.Terms); re != nil {
		add("", regexFinder(KindTerm, re, wordBoundary))
	}
	return r, nil
}

// regexFinder runs re over a view; check may refuse a match or shorten it.
func regexFinder(kind string, re *regexp.Regexp, check func(text string, start, end int) (int, bool)) func(string) []match {
	return func(v string) []match {
		var out []match
		for _, m := range re.FindAllStringIndex(v, -1) {
			start, end := m[0], m[1]
			if end <= start {
				continue
			}
			if check != nil {
				var ok bool
				if end, ok = check(v, start, end); !ok || end <= start {
					continue
				}
			}
			out = append(out, match{start, end, kind})
		}
		return out
	}
}

// needing skips find on texts without literal, which every match holds:
// regular expressions that start with a character class cost a pass of the
// automaton per byte, and most texts hold no e-mail or key.
func needing(literal string, find func(string) []match) func(string) []match {
	return func(v string) []match {
		if !strings.Contains(v, literal) {
			return nil
		}
		return find(v)
	}
}

// wordList matches any of words in any case, Unicode form and spacing; the
// words are folded like the text they are looked for in. Boundaries are
// checked on Unicode letters by wordBoundary, since RE2's \b knows only ASCII.
func wordList(words []string) *regexp.Regexp {
	var alts []string
	for _, w := range words {
		var parts []string
		for _, f := range strings.FieldsFunc(fold(w), func(r rune) bool { return r == ' ' || r == '-' || r == '\t' || r == '\n' }) {
			parts = append(parts, regexp.QuoteMeta(f))
		}
		if len(parts) > 0 {
			alts = append(alts, strings.Join(parts, `[\s\-]*`))
		}
	}
	if len(alts) == 0 {
		return nil
	}
	sort.Slice(alts, func(i, j int) bool { return len(alts[i]) > len(alts[j]) })
	return regexp.MustCompile(`(?i)(?:` + strings.Join(alts, "|") + `)`)
}

// idList matches literal identifiers in any case, Unicode form and with any
// separators between their characters ("MRN-00123" as "mrn 00123").
func idList(ids []string) *regexp.Regexp {
	var alts []string
	for _, id := range ids {
		var chars []string
		for _, r := range fold(id) {
			if isIDSeparator(r) {
				continue
			}
			chars = append(chars, regexp.QuoteMeta(string(r)))
		}
		if len(chars) > 0 {
			alts = append(alts, strings.Join(chars, `[\s\-./_:#]*`))
		}
	}
	if len(alts) == 0 {
		return nil
	}
	sort.Slice(alts, func(i, j int) bool { return len(alts[i]) > len(alts[j]) })
	return regexp.MustCompile(`(?i)(?:` + strings.Join(alts, "|") + `)`)
}

func isIDSeparator(r rune) bool { return strings.ContainsRune(" \t\n-./_:#", r) }

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

// Redact replaces every sensitive value in text with its placeholder.
func (s *Session) Redact(text string) string {
	if text == "" {
		return text
	}
	v := newView(text)
	var found []match
	for _, d := range s.r.detectors {
		found = append(found, d.find(v.s)...)
	}
	if len(found) == 0 {
		return text
	}
	spans := mergeMatches(v, found)
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	last := 0
	for _, m := range spans {
		b.WriteString(text[last:m.start])
		b.WriteString(s.placeholder(m.kind, text[m.start:m.end]))
		last = m.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// mergeMatches maps matches from the view to the original text and joins
// overlapping ones, keeping the kind of the detector that came first.
func mergeMatches(v view, found []match) []match {
	for i, m := range found {
		found[i].start, found[i].end = v.span(m.start, m.end)
	}
	order := make(map[string]int)
	for i, m := range found {
		if _, ok := order[m.kind]; !ok {
			order[m.kind] = i
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].start < found[j].start })
	var out []match
	for _, m := range found {
		if n := len(out); n > 0 && m.start < out[n-1].end {
			last := &out[n-1]
			last.end = max(last.end, m.end)
			if order[m.kind] < order[last.kind] {
				last.kind = m.kind
			}
			continue
		}
		out = append(out, m)
	}
	return out
}

func (s *Session) placeholder(kind, value string) string {
	// Keyed by the exact text, so the way back restores each occurrence as
	// it was written ("KARI NORDMANN" and "Kari Nordmann" differ).
	key := kind + "\x00" + value
	s.report[kind]++
	if p, ok := s.byValue[key]; ok {
		return p
	}
	s.next[kind]++
	p := "[" + kind + "_" + strconv.Itoa(s.next[kind]) + "]"
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
