package plancache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
)

// derived is what one request and its plan teach: the template's plan with
// placeholders, its parameters, the request's values for them and the
// request's wording.
type derived struct {
	wf       config.WorkflowConfig
	params   []Param
	values   map[string]any    // by parameter name, typed as the plan used them
	written  map[string]string // by parameter name, as the request wrote them
	phrasing string
	key      string
}

// Errors that say why a run teaches nothing.
var (
	errNoWording = errors.New("the request's wording is too short to recognise once its values are cut out")
	errBraces    = errors.New("the plan already holds {{ }}: its placeholders would be ambiguous")
)

// minLiteralWords is how many words a phrasing must keep besides its
// parameters: a request that is little more than its values ("W-100")
// would match any request of one code.
const minLiteralWords = 2

// candidate is a value of the request that the plan used.
type candidate struct {
	written string // as the request wrote it
	number  bool   // a number: the plan may write it without separators
	typed   any    // the value as the plan's argument had it (string or float64)
	argKey  string // the argument it was the whole of, for naming
}

var (
	numberRe = regexp.MustCompile(`-?\d[\d,]*(?:\.\d+)?`)
	refRe    = regexp.MustCompile(`\$\{[^}]*\}`)
)

// derive learns a template from a request and the plan that served it.
func derive(request string, p *plan.Plan) (derived, error) {
	var d derived
	raw, _ := json.Marshal(p)
	if strings.Contains(string(raw), "{{") {
		return d, errBraces
	}
	cands := candidates(request, p)
	// Longest first, so "Austin, TX" is cut before "Austin" would be.
	sort.SliceStable(cands, func(i, j int) bool { return len(cands[i].written) > len(cands[j].written) })
	names := map[string]bool{}
	d.values, d.written = map[string]any{}, map[string]string{}
	var reps []replacement
	for _, c := range cands {
		name := paramName(c, names)
		names[name] = true
		words := len(strings.Fields(c.written))
		d.params = append(d.params, Param{Name: name, Kind: kindOf(c.written), MinWords: words, MaxWords: words, Example: c.written})
		d.values[name], d.written[name] = c.typed, c.written
		reps = append(reps, replacement{name: name, c: c})
	}
	d.phrasing = replaceAll(request, reps, true)
	if literalWords(d.phrasing) < minLiteralWords {
		return d, errNoWording
	}
	d.wf = config.WorkflowConfig{Answer: replaceAll(p.Answer, reps, false)}
	for _, s := range p.Steps {
		ws := config.WorkflowStep{ID: s.ID, Tool: s.Tool, Tier: s.Tier, Tools: append([]string(nil), s.Tools...),
			DependsOn: append([]string(nil), s.DependsOn...), Task: replaceAll(s.Task, reps, false)}
		if s.Args != nil {
			ws.Args, _ = replaceValue(s.Args, reps).(map[string]any)
		}
		d.wf.Steps = append(d.wf.Steps, ws)
	}
	// Keep only the parameters the plan still uses: a value cut from the
	// request but found nowhere in the plan's placeholders is wording.
	used := usedPlaceholders(d.wf)
	var kept []Param
	for _, prm := range d.params {
		if used[prm.Name] {
			kept = append(kept, prm)
		} else {
			// Put the wording back.
			d.phrasing = strings.ReplaceAll(d.phrasing, "{{"+prm.Name+"}}", d.written[prm.Name])
			delete(d.values, prm.Name)
			delete(d.written, prm.Name)
		}
	}
	d.params = kept
	sort.Slice(d.params, func(i, j int) bool { return d.params[i].Name < d.params[j].Name })
	d.wf.Params = paramsSchema(d.params, d.values)
	d.key = templateKey(d.wf, d.params)
	return d, nil
}

// candidates are the request's values the plan uses: whole arguments
// first (the argument's name names the parameter), then entities the
// plan quotes inside a longer text.
func candidates(request string, p *plan.Plan) []candidate {
	var out []candidate
	seen := map[string]bool{}
	add := func(c candidate) {
		k := strings.ToLower(c.written)
		if seen[k] || c.written == "" || localplanner.IsStopWord(k) {
			return
		}
		seen[k] = true
		out = append(out, c)
	}
	for _, s := range p.Steps {
		walkLeaves(s.Args, "", "", func(_, key string, v any) {
			switch v := v.(type) {
			case string:
				v = strings.TrimSpace(v)
				if v == "" || strings.Contains(v, "${") {
					return
				}
				if at := findWord(request, v, false); at >= 0 {
					add(candidate{written: request[at : at+len(v)], typed: v, argKey: key})
				}
			case float64:
				for _, loc := range numberRe.FindAllStringIndex(request, -1) {
					w := request[loc[0]:loc[1]]
					if f, ok := parseNumber(w); ok && f == v && boundedNumber(request, loc) {
						add(candidate{written: w, number: true, typed: v, argKey: key})
						break
					}
				}
			}
		})
	}
	texts := []string{p.Answer}
	for _, s := range p.Steps {
		texts = append(texts, s.Task)
		plan.WalkStrings(s.Args, func(str string) { texts = append(texts, str) })
	}
	for _, w := range entities(request) {
		number := numberRe.FindString(w) == w
		plain := w
		if f, ok := parseNumber(w); ok && number {
			plain = strconv.FormatFloat(f, 'f', -1, 64)
		}
		for _, t := range texts {
			if number && (findNumber(t, w) >= 0 || findNumber(t, plain) >= 0) || !number && findWord(t, w, true) >= 0 {
				var typed any = w
				if number {
					if f, ok := parseNumber(w); ok {
						typed = f
					}
				}
				add(candidate{written: w, number: number, typed: typed})
				break
			}
		}
	}
	return dropCovered(request, out)
}

// dropCovered leaves out a candidate whose every occurrence in the request
// lies inside a longer one's ("Austin" inside "Austin, TX"): cutting the
// longer one out of the request leaves it nowhere to be read from.
func dropCovered(request string, cands []candidate) []candidate {
	sorted := append([]candidate(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool { return len(sorted[i].written) > len(sorted[j].written) })
	covered := make([]bool, len(request))
	var out []candidate
	for _, c := range sorted {
		free := false
		var spans [][2]int
		for from := 0; from < len(request); {
			at := -1
			if c.number {
				at = findNumber(request[from:], c.written)
			} else {
				at = findWord(request[from:], c.written, false)
			}
			if at < 0 {
				break
			}
			at += from
			spans = append(spans, [2]int{at, at + len(c.written)})
			if !covered[at] {
				free = true
			}
			from = at + 1
		}
		if !free {
			continue
		}
		for _, sp := range spans {
			for i := sp[0]; i < sp[1]; i++ {
				covered[i] = true
			}
		}
		out = append(out, c)
	}
	return out
}

var (
	tokenRe      = regexp.MustCompile(`"[^"]{1,80}"|\d{1,3}(?:,\d{3})+(?:\.\d+)?|[\p{L}\d]+(?:[-_/.:'’][\p{L}\d]+)*`)
	properJoinRe = regexp.MustCompile(`^(?:\s+|,\s*)$`)
)

// entities are the request's values a plan may quote inside a longer
// text: numbers, codes (letters and digits), quoted text, and runs of
// capitalised words ("San Antonio", "Austin, TX"); a capitalised first
// word alone is the sentence's, not a name.
func entities(request string) []string {
	var out []string
	locs := tokenRe.FindAllStringIndex(request, -1)
	for i := 0; i < len(locs); i++ {
		w := request[locs[i][0]:locs[i][1]]
		switch {
		case strings.HasPrefix(w, `"`):
			out = append(out, strings.Trim(w, `"`))
		case strings.ContainsAny(w, "0123456789"):
			out = append(out, w)
		case startsUpper(w):
			j := i
			for j+1 < len(locs) && startsUpper(request[locs[j+1][0]:locs[j+1][1]]) &&
				properJoinRe.MatchString(request[locs[j][1]:locs[j+1][0]]) {
				j++
			}
			first := locs[i][0] == 0
			if !(first && j == i) {
				out = append(out, request[locs[i][0]:locs[j][1]])
			}
			// Each word of a run alone too ("Austin" of "Austin, TX"),
			// but for a sentence's first word.
			for k := i; k <= j && j > i; k++ {
				if !(first && k == i) {
					out = append(out, request[locs[k][0]:locs[k][1]])
				}
			}
			i = j
		}
	}
	return out
}

func startsUpper(w string) bool {
	for _, r := range w {
		return unicode.IsUpper(r)
	}
	return false
}

// walkLeaves calls fn with every scalar of v, its path as a ${step.path}
// reference writes it (below path) and the key it sits under, maps in key
// order.
func walkLeaves(v any, path, key string, fn func(path, key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkLeaves(v[k], path+"."+k, k, fn)
		}
	case []any:
		for i, e := range v {
			walkLeaves(e, path+"."+strconv.Itoa(i), key, fn)
		}
	default:
		fn(path, key, v)
	}
}

var identRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// paramName names a parameter after the argument it filled, else after
// its kind: sku, city, amount, number_2, name.
func paramName(c candidate, taken map[string]bool) string {
	base := strings.ToLower(c.argKey)
	if !identRe.MatchString(base) || base == "request" {
		switch kindOf(c.written) {
		case KindNumber:
			base = "number"
		case KindCode:
			base = "code"
		case KindProper:
			base = "name"
		default:
			base = "value"
		}
	}
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// kindOf classifies a value by its shape.
func kindOf(v string) Kind {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return KindLiteral
	case numberRe.FindString(v) == v:
		return KindNumber
	case !strings.ContainsAny(v, " \t") && strings.ContainsAny(v, "0123456789"):
		return KindCode
	}
	words := strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })
	proper, lower := true, true
	for _, w := range words {
		r := []rune(w)
		if !unicode.IsUpper(r[0]) {
			proper = false
		}
		for _, c := range r {
			if !unicode.IsLower(c) && c != '-' && c != '\'' {
				lower = false
			}
		}
	}
	switch {
	case proper:
		return KindProper
	case lower:
		return KindWord
	}
	return KindLiteral
}

// replacement cuts one value out of a text.
type replacement struct {
	name string
	c    candidate
}

// replaceAll puts {{name}} wherever a value stands in s as a whole word
// (a number also as the plan writes it, without separators), never inside
// a ${step} reference. In the request (request true) values are matched
// as the request wrote them.
func replaceAll(s string, reps []replacement, request bool) string {
	if s == "" {
		return s
	}
	// Work on the parts outside ${...} references.
	var b strings.Builder
	last := 0
	for _, loc := range refRe.FindAllStringIndex(s, -1) {
		b.WriteString(replaceOutside(s[last:loc[0]], reps, request))
		b.WriteString(s[loc[0]:loc[1]])
		last = loc[1]
	}
	b.WriteString(replaceOutside(s[last:], reps, request))
	return b.String()
}

func replaceOutside(s string, reps []replacement, request bool) string {
	for _, r := range reps {
		forms := []string{r.c.written}
		if r.c.number && !request {
			if f, ok := r.c.typed.(float64); ok {
				forms = append(forms, strconv.FormatFloat(f, 'f', -1, 64))
			}
		}
		for _, form := range forms {
			s = replaceWord(s, form, "{{"+r.name+"}}", r.c.number)
		}
	}
	return s
}

// replaceWord replaces every whole-word occurrence of w in s
// (case-insensitively for words, exactly for numbers).
func replaceWord(s, w, with string, number bool) string {
	var b strings.Builder
	for {
		var at int
		if number {
			at = findNumber(s, w)
		} else {
			at = findWord(s, w, false)
		}
		if at < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:at])
		b.WriteString(with)
		s = s[at+len(w):]
	}
}

// replaceValue replaces values in a plan argument tree: an argument that
// is exactly a value becomes the whole placeholder (and takes the
// parameter's JSON type when filled), a longer string has the value cut
// out of it.
func replaceValue(v any, reps []replacement) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = replaceValue(e, reps)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = replaceValue(e, reps)
		}
		return l
	case string:
		for _, r := range reps {
			if s, ok := r.c.typed.(string); ok && strings.EqualFold(strings.TrimSpace(v), s) {
				return "{{" + r.name + "}}"
			}
		}
		return replaceAll(v, reps, false)
	case float64:
		for _, r := range reps {
			if f, ok := r.c.typed.(float64); ok && f == v {
				return "{{" + r.name + "}}"
			}
		}
	}
	return v
}

// findWord is the index of w in s as a whole word (no letter, digit or _
// right before or after), or -1; exact when caseSensitive.
func findWord(s, w string, caseSensitive bool) int {
	if w == "" {
		return -1
	}
	hay, needle := s, w
	if !caseSensitive {
		hay, needle = strings.ToLower(s), strings.ToLower(w)
		if len(hay) != len(s) || len(needle) != len(w) {
			return -1 // case folding changed lengths: do not guess
		}
	}
	from := 0
	for {
		i := strings.Index(hay[from:], needle)
		if i < 0 {
			return -1
		}
		i += from
		if wordEdge(s, i-1) && wordEdge(s, i+len(w)) {
			return i
		}
		from = i + 1
	}
}

// findNumber finds a number as a whole number (not part of a longer one).
func findNumber(s, n string) int {
	from := 0
	for {
		i := strings.Index(s[from:], n)
		if i < 0 {
			return -1
		}
		i += from
		if numberEdge(s, i-1, true) && numberEdge(s, i+len(n), false) {
			return i
		}
		from = i + 1
	}
}

func wordEdge(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	c := rune(s[i])
	return !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_' || c >= 0x80)
}

func numberEdge(s string, i int, before bool) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	c := s[i]
	if c >= '0' && c <= '9' || c == '_' || unicode.IsLetter(rune(c)) {
		return false
	}
	// "2,340" and "1.5": a separator followed by a digit continues it.
	if (c == ',' || c == '.') && !before && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
		return false
	}
	if (c == ',' || c == '.' || c == '-') && before && i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		return false
	}
	return true
}

func boundedNumber(s string, loc []int) bool {
	return numberEdge(s, loc[0]-1, true) && numberEdge(s, loc[1], false)
}

// parseNumber reads "2,340" or "17.5" as a number.
func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	return f, err == nil
}

var placeholderRe = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// literalWords counts the words of a phrasing that are not placeholders.
func literalWords(phrasing string) int {
	return len(strings.Fields(placeholderRe.ReplaceAllString(phrasing, " ")))
}

func usedPlaceholders(wf config.WorkflowConfig) map[string]bool {
	used := map[string]bool{}
	note := func(s string) {
		for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
			used[m[1]] = true
		}
	}
	note(wf.Answer)
	note(wf.AnswerPattern)
	for _, s := range wf.Steps {
		note(s.Task)
		plan.WalkStrings(s.Args, note)
	}
	return used
}

// paramsSchema is the JSON Schema of the parameters, as a config workflow
// declares it.
func paramsSchema(params []Param, values map[string]any) map[string]any {
	if len(params) == 0 {
		return nil
	}
	props := map[string]any{}
	required := []any{}
	for _, p := range params {
		typ := "string"
		if _, ok := values[p.Name].(float64); ok {
			typ = "number"
		}
		props[p.Name] = map[string]any{"type": typ, "description": fmt.Sprintf("%s value from the request, e.g. %q", p.Kind, p.Example)}
		required = append(required, p.Name)
	}
	return map[string]any{"type": "object", "properties": props, "required": required}
}

// templateKey identifies a template by what it does: its steps, answer
// and parameters, not its wording or examples.
func templateKey(wf config.WorkflowConfig, params []Param) string {
	type keyed struct {
		Steps  []config.WorkflowStep `json:"steps"`
		Answer string                `json:"answer"`
		Params []string              `json:"params"`
	}
	k := keyed{Steps: wf.Steps, Answer: wf.Answer}
	for _, p := range params {
		k.Params = append(k.Params, p.Name+":"+string(p.Kind))
	}
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
