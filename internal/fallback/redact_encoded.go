package fallback

import (
	"math"
	"strings"
)

// isTokenByte is the alphabet of hex, base64, base64url and base32 strings.
func isTokenByte(b byte) bool { return isAlnum(b) || strings.IndexByte("+/=_-", b) >= 0 }

// encodedFinder redacts strings of minLen or more letters and digits that
// read as encoded data rather than words: hex with letters and digits, or
// any token one of whose parts is not word-like (random case, letters mixed
// with digits, no vowels, long consonant runs). Words, identifiers such as
// get_weather_forecast, paths and long compounds are kept.
func encodedFinder(minLen int) func(string) []match {
	return func(v string) []match {
		var out []match
		for i := 0; i < len(v); {
			if !isTokenByte(v[i]) {
				i++
				continue
			}
			// '=' is padding at the end, never inside: key=value is two.
			j := i
			for j < len(v) && isTokenByte(v[j]) {
				if v[j] == '=' && j+1 < len(v) && isTokenByte(v[j+1]) && v[j+1] != '=' {
					break
				}
				j++
			}
			if j == i {
				i++
				continue
			}
			// Separators at the ends count: base64 may begin or end with
			// '+', '/', '-' or '_'.
			if looksEncoded(v[i:j], minLen) {
				out = append(out, match{i, j, KindSecret})
			}
			i = j
		}
		return out
	}
}

func looksEncoded(tok string, minLen int) bool {
	if len(strings.TrimRight(tok, "=")) < minLen {
		return false
	}
	n, digits, hex := 0, 0, true
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !isAlnum(c) {
			continue
		}
		n++
		if isDigit(c) {
			digits++
		} else if !(c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			hex = false
		}
	}
	if n*4 < minLen*3 {
		return false // mostly punctuation, like ---- or a/b/c/d/e/f/g/h
	}
	if hex && n >= minLen && digits > 0 && digits < n {
		return true
	}
	for _, seg := range strings.FieldsFunc(tok, func(r rune) bool { return strings.ContainsRune("+/=_-", r) }) {
		if !wordLike(seg) {
			return true
		}
	}
	// Base64 padding, or characters that change between upper case, lower
	// case and digits at most steps: random, whatever the separators (words,
	// paths and camelCase names change at a third of their letters or less).
	if strings.HasSuffix(tok, "=") && (digits > 0 || strings.ToLower(tok) != tok) {
		return true
	}
	return classChanges(tok)*20 >= n*7
}

// classChanges counts the steps between upper case, lower case and digits
// in the letters and digits of tok.
func classChanges(tok string) int {
	class := func(b byte) int {
		switch {
		case isDigit(b):
			return 0
		case b >= 'A' && b <= 'Z':
			return 1
		}
		return 2
	}
	changes, prev := 0, -1
	for i := 0; i < len(tok); i++ {
		if !isAlnum(tok[i]) {
			continue
		}
		if c := class(tok[i]); prev >= 0 && c != prev {
			changes++
		}
		prev = class(tok[i])
	}
	return changes
}

// wordLike reports whether a run of letters and digits reads as a word, a
// name or a short code (utf8, x86, sha256) rather than random characters.
func wordLike(seg string) bool {
	letters, digits := 0, 0
	for i := 0; i < len(seg); i++ {
		if isDigit(seg[i]) {
			digits++
		} else {
			letters++
		}
	}
	switch {
	case letters == 0:
		return true // digits alone are the digit-run detector's
	case digits > 0:
		return len(seg) <= 8 && digits <= 4
	}
	if !caseWordLike(seg) {
		return false
	}
	hasUpper, hasLower := strings.ToLower(seg) != seg, strings.ToUpper(seg) != seg
	if hasUpper && hasLower && !strings.ContainsAny(seg, "aeiouyAEIOUY") {
		return false // mixed case without a vowel: jqzS, not a word
	}
	if len(seg) < 16 {
		return true
	}
	// A long single word: random letters have few vowels, long consonant
	// runs or rare letters; words, German and Norwegian compounds too, have
	// none of these. A random 16-letter string passes all three about once
	// in a hundred (digits or mixed case catch the rest of real keys).
	vowels, run, longest, score := 0, 0, 0, 0.0
	for i := 0; i < len(seg); i++ {
		c := seg[i] | 0x20 // lower case
		score += letterScore[c-'a']
		if strings.IndexByte("aeiouy", c) >= 0 {
			vowels++
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return vowels*100 >= len(seg)*28 && longest <= 5 && score >= 0.05*float64(len(seg))
}

// letterScore is, per letter, the log of how much likelier it is in
// English text than in uniformly random letters; words score above zero on
// average, random strings below.
var letterScore = func() [26]float64 {
	freq := [26]float64{8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4,
		6.7, 7.5, 1.9, 0.095, 6.0, 6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074}
	total := 0.0
	for _, f := range freq {
		total += f
	}
	var out [26]float64
	for i, f := range freq {
		out[i] = math.Log(26 * f / total)
	}
	return out
}()

// caseWordLike accepts lower, UPPER, Capitalised and camelCase words
// (iPhone, JSONParser, getWeatherForecast): after the first, every
// lower-case run is two letters or more, and upper-case runs after the
// start are single letters.
func caseWordLike(seg string) bool {
	upper := func(b byte) bool { return b >= 'A' && b <= 'Z' }
	for i := 0; i < len(seg); {
		j := i
		for j < len(seg) && upper(seg[j]) == upper(seg[i]) {
			j++
		}
		if upper(seg[i]) {
			// An upper-case run inside a word is one letter, unless it ends
			// the word (HTTPS) or starts it (JSONParser).
			if i > 0 && j < len(seg) && j-i > 1 {
				return false
			}
		} else if i > 0 && j-i < 2 && j < len(seg) {
			return false
		}
		i = j
	}
	return true
}
