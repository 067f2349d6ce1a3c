package fallback

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// view is a text as the detectors see it. Each character is folded to its
// compatibility form without accents (NFKD, combining marks dropped, so NFC,
// NFD and NFKC spellings of a name read alike), Unicode digits, dashes,
// spaces and quotes become their ASCII kin, and invisible format characters
// (zero-width space, soft hyphen, joiners) vanish. Case is kept: detectors
// that care match case-insensitively.
//
// Matching happens on the view; replacement happens in the original text,
// through from/to. What is sent is therefore the user's own text with
// placeholders, not a rewritten copy, and Restore gives the original back
// byte for byte: normalising what is sent would change the request the
// remote plans for and could not be undone.
type view struct {
	s string
	// from and to give, for each byte of s, the span of the original text
	// whose folding produced it: a base character with its combining marks.
	from, to []int
}

func newView(text string) view {
	var b strings.Builder
	b.Grow(len(text))
	from := make([]int, 0, len(text))
	to := make([]int, 0, len(text))
	for i := 0; i < len(text); {
		if c := text[i]; c < utf8.RuneSelf && (i+1 == len(text) || text[i+1] < utf8.RuneSelf) {
			// ASCII with no combining mark after it: the common case.
			switch c {
			case '`':
				c = '\''
			case '\v', '\f':
				c = ' '
			}
			b.WriteByte(c)
			from = append(from, i)
			to = append(to, i+1)
			i++
			continue
		}
		start := i
		r, n := utf8.DecodeRuneInString(text[i:])
		i += n
		for i < len(text) {
			m, k := utf8.DecodeRuneInString(text[i:])
			if !isMark(m) || (m == utf8.RuneError && k == 1) {
				break
			}
			i += k
		}
		before := b.Len()
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			foldInto(&b, text[start:i])
		}
		for range b.Len() - before {
			from = append(from, start)
			to = append(to, i)
		}
	}
	return view{s: b.String(), from: from, to: to}
}

// span maps the view's bytes [a, b) to the original text's bytes.
func (v view) span(a, b int) (int, int) {
	return v.from[a], v.to[b-1]
}

// fold is the view of a configured value (a name, a term, an ID), so that it
// is compared with texts in the same form.
func fold(s string) string {
	var b strings.Builder
	foldInto(&b, s)
	return b.String()
}

func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) }

func foldInto(b *strings.Builder, seg string) {
	for _, r := range norm.NFKD.String(seg) {
		switch {
		case isMark(r), unicode.Is(unicode.Cf, r):
			// accents and invisible characters
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case unicode.Is(unicode.Zs, r), unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Pd, r), r == '\u2212', r == '\u2043':
			b.WriteByte('-')
		case strings.ContainsRune("\u2018\u2019\u201a\u201b\u2032\u02bc\u00b4`", r):
			b.WriteByte('\'')
		case strings.ContainsRune("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", r):
			b.WriteByte('"')
		case r == '\u2044' || r == '\u2215':
			b.WriteByte('/')
		case r == 'ß':
			b.WriteString("ss")
		case r == 'ẞ':
			b.WriteString("SS")
		case r > unicode.MaxASCII && unicode.IsDigit(r):
			b.WriteByte(byte('0' + digitValue(r)))
		case lookalikes[r] != 0:
			b.WriteByte(lookalikes[r])
		default:
			b.WriteRune(r)
		}
	}
}

// digitValue is the value of a decimal digit from any script: Unicode lays
// each script's digits out as a run of ten from zero.
func digitValue(r rune) int {
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return 0
}

// lookalikes are Cyrillic and Greek letters drawn like Latin ones, so that a
// configured name typed with one ("Кari", Cyrillic К) still matches.
var lookalikes = map[rune]byte{
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T', 'Х': 'X',
	'І': 'I', 'Ј': 'J', 'Ѕ': 'S', 'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x',
	'і': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'һ': 'h', 'ӏ': 'l',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X', 'ο': 'o', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ρ': 'p',
}
