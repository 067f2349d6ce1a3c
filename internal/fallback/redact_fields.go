package fallback

import (
	"strings"
	"unicode"
)

// secretKeyMarks are in every name isSecretKey accepts; words without one
// are not looked at further.
var secretKeyMarks = []string{"key", "secret", "token", "pass", "pwd", "pw", "auth", "cred", "cookie", "session",
	"sid", "sig", "pin", "otp", "jwt", "bearer", "private"}

func isKeyByte(b byte) bool { return isAlnum(b) || b == '_' || b == '.' || b == '-' }

// keyCandidates finds the words of v that may name a secret field.
func keyCandidates(v string) [][2]int {
	var out [][2]int
	for i := 0; i < len(v); {
		if !isKeyByte(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && isKeyByte(v[j]) {
			j++
		}
		w := strings.ToLower(v[i:j])
		for _, m := range secretKeyMarks {
			if strings.Contains(w, m) {
				out = append(out, [2]int{i, j})
				break
			}
		}
		i = j
	}
	return out
}

// secretKeyWords are field-name components that mark the field's value as a
// secret; secretKeyParts are marks anywhere in the name.
var (
	secretKeyWords = map[string]bool{
		"key": true, "keys": true, "apikey": true, "secret": true, "secrets": true, "token": true, "tokens": true,
		"password": true, "passwd": true, "pass": true, "passphrase": true, "passcode": true, "pwd": true, "pw": true,
		"auth": true, "authorization": true, "credential": true, "credentials": true, "cred": true, "creds": true,
		"cookie": true, "session": true, "sessionid": true, "sid": true, "signature": true, "sig": true,
		"pin": true, "otp": true, "jwt": true, "bearer": true, "private": true,
	}
	secretKeyParts = []string{"secret", "token", "passw", "passphrase", "apikey", "credential", "privatekey", "accesskey", "authkey"}
	// authSchemes precede the credential in an Authorization value.
	authSchemes = map[string]bool{"bearer": true, "basic": true, "token": true, "digest": true, "negotiate": true,
		"apikey": true, "hmac": true, "ntlm": true, "aws4-hmac-sha256": true, "sharedkey": true}
)

// keyComponents splits a field name into lower-case words: api_key,
// X-Api-Key, apiKey and API.KEY all give [api key].
func keyComponents(name string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case r == '_' || r == '-' || r == '.' || r == ' ':
			flush()
		case unicode.IsUpper(r) && i > 0 && unicode.IsLower(rs[i-1]):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}

// isSecretKey reports whether a field of this name holds a secret.
func isSecretKey(name string) bool {
	comps := keyComponents(name)
	for _, c := range comps {
		if secretKeyWords[c] {
			return true
		}
	}
	joined := strings.Join(comps, "")
	for _, p := range secretKeyParts {
		if strings.Contains(joined, p) {
			return true
		}
	}
	return false
}

// findSecretFields redacts the values of secret fields in every syntax met
// in requests: key=value, key: value, key => value, "key": "value" (also
// escaped inside another JSON string), YAML and .env lines, HTTP headers
// (Authorization: Bearer x, X-Api-Key: x, Cookie: ...), query strings
// (?token=x&), command-line flags (--password x), XML elements and
// "the password is x".
func findSecretFields(v string) []match {
	var out []match
	for _, m := range keyCandidates(v) {
		ks, ke := m[0], m[1]
		name := strings.Trim(v[ks:ke], "-._")
		if name == "" || !isSecretKey(name) {
			continue
		}
		if ks > 0 && v[ks-1] == '<' && ke < len(v) && v[ke] == '>' {
			if end := strings.IndexByte(v[ke+1:], '<'); end > 0 {
				out = append(out, match{ke + 1, ke + 1 + end, KindKey})
			}
			continue
		}
		p := ke
		for n := 0; p < len(v) && n < 3 && strings.IndexByte(`"'\`, v[p]) >= 0; n++ {
			p++
		}
		ws := p
		p = skipBlanks(v, p)
		spaced := p > ws
		sep := ""
		for _, s := range []string{":=", "=>", "->", "=", ":", "|"} {
			if strings.HasPrefix(v[p:], s) {
				sep = s
				break
			}
		}
		if sep == "" && spaced && len(v) >= p+3 && strings.EqualFold(v[p:p+3], "is ") {
			sep = "is"
		}
		lower := strings.ToLower(name)
		if sep == "" && spaced && (strings.HasPrefix(v[ks:], "--") || lower == "bearer") {
			sep = " "
		}
		if sep == "" || (sep == ":" && strings.HasPrefix(v[p:], "://")) {
			continue
		}
		if sep != " " {
			p += len(sep)
		}
		p = skipBlanks(v, p)
		// A YAML or header line's value runs to the end of the line, spaces
		// and all (Cookie: a=1; b=2); in prose it is one word.
		wholeLine := sep == ":" && startsLine(v, ks)
		if start, end, ok := fieldValue(v, p, wholeLine); ok {
			out = append(out, match{start, end, KindKey})
		}
	}
	return out
}

func skipBlanks(v string, p int) int {
	for p < len(v) && (v[p] == ' ' || v[p] == '\t') {
		p++
	}
	return p
}

// startsLine reports whether only indentation, a list marker or "export"
// stands between the start of the line and i (YAML, .env, headers).
func startsLine(v string, i int) bool {
	ls := strings.LastIndexByte(v[:i], '\n') + 1
	before := strings.TrimSpace(strings.Trim(v[ls:i], " \t-*>#\"'"))
	return before == "" || before == "export" || before == "set"
}

// fieldValue finds the value that starts at p: quoted, escaped-quoted,
// bracketed, the rest of the line, or one word; an Authorization scheme in
// front of it is kept.
func fieldValue(v string, p int, wholeLine bool) (int, int, bool) {
	if p >= len(v) {
		return 0, 0, false
	}
	eol := strings.IndexByte(v[p:], '\n')
	if eol < 0 {
		eol = len(v)
	} else {
		eol += p
	}
	switch c := v[p]; {
	case c == '\\' && p+1 < len(v) && (v[p+1] == '"' || v[p+1] == '\''):
		closing := v[p : p+2]
		if end := strings.Index(v[p+2:], closing); end >= 0 {
			return p + 2, p + 2 + end, end > 0
		}
		return p + 2, eol, eol > p+2
	case c == '"' || c == '\'':
		for i := p + 1; i < len(v); i++ {
			if v[i] == '\\' {
				i++
				continue
			}
			if v[i] == c {
				return p + 1, i, i > p+1
			}
		}
		return p + 1, eol, eol > p+1
	case c == '{':
		return 0, 0, false // a nested object: its own fields are looked at
	case c == '[':
		if end := strings.IndexByte(v[p:eol], ']'); end > 1 {
			return p + 1, p + end, true
		}
		return p + 1, eol, eol > p+1
	}
	word := p
	for word < eol && isAlnum(v[word]) || word < eol && v[word] == '-' {
		word++
	}
	if authSchemes[strings.ToLower(v[p:word])] && word < eol && v[word] == ' ' {
		p = skipBlanks(v, word)
		if p >= eol {
			return 0, 0, false
		}
	}
	end := p
	if wholeLine {
		end = eol
		if c := strings.Index(v[p:eol], " #"); c >= 0 {
			end = p + c
		}
		for end > p && strings.IndexByte(" \t\r,;", v[end-1]) >= 0 {
			end--
		}
	} else {
		for end < eol && strings.IndexByte(" \t\r,;&\"'<>)}]|", v[end]) < 0 {
			end++
		}
		for end > p && strings.IndexByte(".!?:", v[end-1]) >= 0 {
			end--
		}
	}
	return p, end, end > p
}

// findSecretColumns redacts secret columns of tables: a CSV, TSV or
// Markdown header naming a secret field, and the cells under it.
func findSecretColumns(v string) []match {
	var out []match
	lines := lineSpans(v)
	for li := 0; li < len(lines); li++ {
		line := v[lines[li][0]:lines[li][1]]
		for _, delim := range []byte{',', ';', '\t', '|'} {
			cells := splitCells(line, delim)
			if len(cells) < 2 {
				continue
			}
			var cols []int
			header := true
			for ci, c := range cells {
				name := strings.Trim(line[c[0]:c[1]], " \t\"'")
				if len(name) > 40 || strings.Count(name, " ") > 3 {
					header = false
					break
				}
				if name != "" && isSecretKey(name) {
					cols = append(cols, ci)
				}
			}
			if !header || len(cols) == 0 {
				continue
			}
			lj := li + 1
			for ; lj < len(lines); lj++ {
				row := v[lines[lj][0]:lines[lj][1]]
				rc := splitCells(row, delim)
				if strings.TrimSpace(row) == "" || len(rc) != len(cells) {
					break
				}
				for _, ci := range cols {
					s, e := rc[ci][0], rc[ci][1]
					for s < e && strings.IndexByte(" \t\"'", row[s]) >= 0 {
						s++
					}
					for e > s && strings.IndexByte(" \t\"'\r", row[e-1]) >= 0 {
						e--
					}
					if e > s {
						out = append(out, match{lines[lj][0] + s, lines[lj][0] + e, KindKey})
					}
				}
			}
			li = lj - 1 // the table's rows are not headers: linear in the text
			break
		}
	}
	return out
}

func lineSpans(v string) [][2]int {
	var out [][2]int
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '\n' {
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	return out
}

func splitCells(line string, delim byte) [][2]int {
	if strings.IndexByte(line, delim) < 0 {
		return nil
	}
	var out [][2]int
	start := 0
	for i := 0; i <= len(line); i++ {
		if i == len(line) || line[i] == delim {
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	return out
}
