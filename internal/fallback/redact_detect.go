package fallback

import (
	"math/big"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The detectors below read a view (see view): NFKD without accents, ASCII
// digits, dashes, spaces and quotes, original case.

var (
	privateKeyRe = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)`)
	credURLRe    = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.\-]*://[^\s/?#@"'<>]+@[^\s"'<>]*`)
	// keyFormats are API key formats with a literal every key holds.
	keyFormats = []struct {
		literal string
		re      *regexp.Regexp
	}{
		{"sk-", regexp.MustCompile(`\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}`)},
		{"A", regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`)},
		{"_", regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}\b`)},
		{"github_pat_", regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{22,}`)},
		{"xox", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9\-]{10,}`)},
		{"glpat-", regexp.MustCompile(`\bglpat-[A-Za-z0-9_\-]{20,}`)},
		{"AIza", regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}`)},
		{"eyJ", regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}`)},
	}
	emailRe = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}`)
	// An IBAN in any case and with any of the separators people type.
	ibanRe = regexp.MustCompile(`(?i)\b[a-z]{2}[0-9]{2}(?:[ \-./]?[a-z0-9]){11,32}`)
	ipv6Re = regexp.MustCompile(`(?i)[0-9a-f]*:[0-9a-f:.]*`)
	ipv4Re = regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:/[0-9]{1,2})?\b`)
)

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

// alnumBoundary refuses a configured ID that is part of a longer one.
func alnumBoundary(text string, start, end int) (int, bool) {
	if start > 0 && isAlnum(text[start-1]) || end < len(text) && isAlnum(text[end]) {
		return 0, false
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

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// compact drops separators and upper-cases, the form checksums are taken on.
func compact(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -./()+\t", r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// longestValid accepts the longest prefix of a match that ends on a letter
// or digit not followed by another, holds min..max characters without
// separators, and passes valid. It keeps an IBAN from swallowing the word
// after it.
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

// ibanValid checks the ISO 13616 mod-97 checksum of an upper-case IBAN.
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
