package localplanner

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/agentd/agentd/internal/plan"
)

// Features are what the router reads in a request to judge whether the
// local planner can handle it: how long it is, how many things it asks
// for, how many conditions it sets, and how many names it mentions that the
// tool catalog knows nothing about.
type Features struct {
	Words           int `json:"words"`
	Asks            int `json:"asks"`
	Conditionals    int `json:"conditionals"`
	UnknownEntities int `json:"unknown_entities"`
}

var (
	// Sequencing phrases and ordinal words each add an ask.
	sequenceRe = regexp.MustCompile(`(?i)\b(and then|after that|afterwards|next|finally|also|as well as|then)\b`)
	// List items: "1.", "2)", "a)", "-", "*" at the start of a line.
	listItemRe   = regexp.MustCompile(`(?m)^\s*(?:\d+[.)]|[a-z][)]|[-*•])\s+`)
	conditionRe  = regexp.MustCompile(`(?i)\b(if|unless|otherwise|else|in case|whether|only when|provided that)\b`)
	sentenceEndR = regexp.MustCompile(`[.!?:;]\s*$`)
)

// ExtractFeatures reads a request. known holds the lower-case words of the
// tool catalog (names and descriptions): a capitalised word or a number is
// an unknown entity unless the catalog knows it.
func ExtractFeatures(text string, known map[string]bool) Features {
	var f Features
	fields := strings.Fields(text)
	f.Words = len(fields)
	f.Asks = strings.Count(text, "?") + len(sequenceRe.FindAllString(text, -1)) + len(listItemRe.FindAllString(text, -1))
	if f.Asks == 0 && f.Words > 0 {
		f.Asks = 1
	}
	f.Conditionals = len(conditionRe.FindAllString(text, -1))
	seen := map[string]bool{}
	sentenceStart := true
	// List markers ("1.", "b)") are structure, not entities.
	for _, raw := range strings.Fields(listItemRe.ReplaceAllString(text, "\n")) {
		w := strings.TrimFunc(raw, notWordRune)
		startsSentence := sentenceStart
		sentenceStart = sentenceEndR.MatchString(raw)
		if w == "" {
			continue
		}
		first := []rune(w)[0]
		entity := unicode.IsDigit(first) || (unicode.IsUpper(first) && !startsSentence)
		lw := strings.ToLower(w)
		if !entity || known[lw] || known[stem(lw)] || seen[lw] {
			continue
		}
		seen[lw] = true
		f.UnknownEntities++
	}
	return f
}

// Score combines the features into a complexity in [0, 1]: each feature
// saturates, so one very long but simple request cannot escalate alone.
func (f Features) Score() float64 {
	sat := func(x, full float64) float64 {
		if x <= 0 {
			return 0
		}
		if x >= full {
			return 1
		}
		return x / full
	}
	return 0.15*sat(float64(f.Words-15), 100) +
		0.35*sat(float64(f.Asks-1), 4) +
		0.30*sat(float64(f.Conditionals), 3) +
		0.20*sat(float64(f.UnknownEntities-2), 6)
}

// KnownWords is the vocabulary of a tool catalog (tool names, descriptions
// and argument names), for ExtractFeatures.
func KnownWords(tools []plan.ToolInfo) map[string]bool {
	known := map[string]bool{}
	for _, t := range tools {
		for _, w := range words(toolText(t)) {
			known[w] = true
			known[stem(w)] = true
		}
	}
	return known
}

// Fingerprint identifies a request up to word order, case, punctuation and
// stop words, so that similar requests share a history.
func Fingerprint(text string) string {
	set := wordSet(text)
	ws := make([]string, 0, len(set))
	for w := range set {
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		// Nothing but stop words and numbers ("what is 2+2"): keep every
		// token, so short requests do not all share one history.
		ws = words(text)
	}
	sort.Strings(ws)
	sum := sha256.Sum256([]byte(strings.Join(ws, " ")))
	return hex.EncodeToString(sum[:16])
}
