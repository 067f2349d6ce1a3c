package tools

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// chunkUnit is a paragraph or a sentence: the smallest piece ChunkText keeps
// whole where it can.
type chunkUnit struct {
	text      string
	paraStart bool // joined to what precedes it with a blank line, not a space
}

var paragraphBreak = regexp.MustCompile(`\n[ \t]*\n\s*`)

// ChunkText cuts text into chunks of at most size characters (runes) that
// overlap by about overlap characters. Cuts fall between paragraphs where
// possible, else between sentences, else between words; the overlap is made
// of whole sentences where they fit, else of the previous chunk's last words.
func ChunkText(text string, size, overlap int) []string {
	if size <= 0 {
		return nil
	}
	if overlap < 0 || overlap >= size {
		overlap = 0
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var units []chunkUnit
	for _, para := range paragraphBreak.Split(text, -1) {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		if runeLen(para) <= size {
			units = append(units, chunkUnit{text: para, paraStart: true})
			continue
		}
		first := true
		for _, s := range splitSentences(para) {
			for _, piece := range splitWords(s, size) {
				units = append(units, chunkUnit{text: piece, paraStart: first})
				first = false
			}
		}
	}

	var chunks []string
	var cur []chunkUnit
	curLen := 0
	joinedLen := func(u chunkUnit, empty bool) int {
		if empty {
			return runeLen(u.text)
		}
		if u.paraStart {
			return runeLen(u.text) + 2
		}
		return runeLen(u.text) + 1
	}
	for _, u := range units {
		if len(cur) > 0 && curLen+joinedLen(u, false) > size {
			chunks = append(chunks, joinUnits(cur))
			cur = overlapUnits(cur, overlap)
			curLen = unitsLen(cur)
			for len(cur) > 0 && curLen+joinedLen(u, false) > size {
				cur = cur[1:]
				curLen = unitsLen(cur)
			}
		}
		cur = append(cur, u)
		curLen = unitsLen(cur)
	}
	if len(cur) > 0 {
		chunks = append(chunks, joinUnits(cur))
	}
	return chunks
}

// overlapUnits returns the trailing units of a finished chunk that fit in
// overlap characters, or, if none does, the chunk's last words.
func overlapUnits(cur []chunkUnit, overlap int) []chunkUnit {
	if overlap <= 0 || len(cur) == 0 {
		return nil
	}
	n, total := 0, 0
	for i := len(cur) - 1; i >= 0; i-- {
		l := runeLen(cur[i].text) + 1
		if total+l > overlap+1 {
			break
		}
		total += l
		n++
	}
	if n > 0 {
		out := append([]chunkUnit(nil), cur[len(cur)-n:]...)
		out[0].paraStart = true
		return out
	}
	last := cur[len(cur)-1].text
	tail := lastRunes(last, overlap)
	// Start at a word.
	if i := strings.IndexFunc(tail, unicode.IsSpace); i >= 0 && i < len(tail)-1 && tail != last {
		tail = strings.TrimLeftFunc(tail[i:], unicode.IsSpace)
	}
	if tail == "" {
		return nil
	}
	return []chunkUnit{{text: tail, paraStart: true}}
}

func joinUnits(us []chunkUnit) string {
	var sb strings.Builder
	for i, u := range us {
		if i > 0 {
			if u.paraStart {
				sb.WriteString("\n\n")
			} else {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(u.text)
	}
	return sb.String()
}

func unitsLen(us []chunkUnit) int { return utf8.RuneCountInString(joinUnits(us)) }

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func lastRunes(s string, n int) string {
	if runeLen(s) <= n {
		return s
	}
	i := len(s)
	for k := 0; k < n; k++ {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return s[i:]
}

// splitSentences cuts after . ! ? followed by space, and at line breaks.
func splitSentences(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		end := -1
		switch {
		case c == '\n':
			end = i
		case (c == '.' || c == '!' || c == '?') && i+1 < len(p) && (p[i+1] == ' ' || p[i+1] == '\n' || p[i+1] == '\t'):
			end = i + 1
		}
		if end < 0 {
			continue
		}
		if s := strings.TrimSpace(p[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	if s := strings.TrimSpace(p[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// splitWords cuts s into pieces of at most size runes, between words where
// possible.
func splitWords(s string, size int) []string {
	var out []string
	for runeLen(s) > size {
		// Byte offset of the rune just past the limit.
		limit := 0
		for k := 0; k < size; k++ {
			_, w := utf8.DecodeRuneInString(s[limit:])
			limit += w
		}
		cut := strings.LastIndexFunc(s[:limit], unicode.IsSpace)
		if cut <= 0 {
			cut = limit
		}
		out = append(out, strings.TrimSpace(s[:cut]))
		s = strings.TrimSpace(s[cut:])
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
