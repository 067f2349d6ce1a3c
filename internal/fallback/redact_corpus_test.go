package fallback

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// A generated corpus of planted values in many formats and embeddings. Each
// planted value is redacted inside its embedding and must not come out in
// any form: verbatim, or after folding case, Unicode form and separators.

// item is one planted value and the document that carries it.
type item struct {
	class string // what the generator meant to plant, for the per-class report
	value string
	doc   string
}

const (
	base64Chars    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	base64URLChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	base32Chars    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	passwordChars  = alnum + "!@$%^*~+=/_-"
)

// canon folds a text for leak checks: Unicode compatibility form without
// accents, lower case, no separators or invisible characters.
func canon(s string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if strings.ContainsRune(" \t\n\r-./()+_:#,;'\"", r) {
			return -1
		}
		return r
	}, fold(s)))
}

// leaked reports whether out still carries value in some form.
func leaked(out, value string) bool {
	return strings.Contains(out, value) || strings.Contains(canon(out), canon(value))
}

// separated joins the characters of s in groups of size with sep.
func separated(s string, size int, sep string) string {
	var g []string
	for i := 0; i < len(s); i += size {
		g = append(g, s[i:min(i+size, len(s))])
	}
	return strings.Join(g, sep)
}

// unicodeForm writes s in one of the forms people and programs produce.
func (c corpus) unicodeForm(s string) string {
	switch c.r.IntN(9) {
	case 0:
		return norm.NFD.String(s)
	case 1:
		return norm.NFC.String(s)
	case 2:
		return strings.ToUpper(s)
	case 3:
		return strings.ToLower(s)
	case 4: // full-width ASCII, as typed with an East Asian input method
		return strings.Map(func(r rune) rune {
			if r > ' ' && r < 0x7f {
				return r + 0xfee0
			}
			return r
		}, s)
	case 5:
		return strings.ReplaceAll(s, " ", "\u00a0")
	case 6: // a zero-width space after the first character
		_, n := firstRune(s)
		return s[:n] + "\u200b" + s[n:]
	case 7: // Cyrillic letters that look Latin
		return strings.NewReplacer("a", "а", "e", "е", "o", "о", "K", "К", "M", "М").Replace(s)
	}
	return norm.NFKC.String(s)
}

func firstRune(s string) (rune, int) {
	for i, r := range s {
		if i > 0 {
			return r, i
		}
	}
	return 0, len(s)
}

func (c corpus) digitID() string {
	for {
		n := 7 + c.r.IntN(10)
		d := c.digits(n)
		var b strings.Builder
		if c.r.IntN(5) == 0 {
			b.WriteString(c.pick("+", "("))
		}
		for i := 0; i < len(d); {
			w := min(1+c.r.IntN(5), len(d)-i)
			if i > 0 {
				b.WriteString(c.pick(" ", ".", "-", "/", " - ", ") ", "", "+", " / "))
			}
			b.WriteString(d[i : i+w])
			i += w
		}
		s := b.String()
		if !hasCalendar(s) {
			return s
		}
	}
}

// hasCalendar reports whether a generated number contains a date or a year
// range, which redaction keeps by design.
func hasCalendar(s string) bool {
	v := newView(s).s
	for _, run := range digitRuns(v) {
		taken := make([]bool, len(run))
		markCalendar(v, run, taken)
		for _, t := range taken {
			if t {
				return true
			}
		}
	}
	return false
}

func (c corpus) phoneAny() string {
	switch c.r.IntN(4) {
	case 0:
		return c.pick("2", "4", "6", "9") + c.digits(9) // ten digits, no separators
	case 1:
		return "+" + c.pick("47", "1", "44", "234") + c.digits(9)
	case 2:
		return c.pick("+47", "0047") + c.pick(" ", ".", "-", "") + separated(c.digits(8), 2, c.pick(" ", ".", "-"))
	}
	for {
		if p := c.phone(); !hasCalendar(p) {
			return p
		}
	}
}

func (c corpus) cardAny() string {
	num := luhnComplete(c.pick("4", "51", "55", "37", "6011"), c.pickInt(16, 16, 15, 19)[0], c)
	return separated(num, 4, c.pick("", " ", "-", ".", "/", " . ", "  "))
}

func (c corpus) pickInt(v ...int) []int { return []int{v[c.r.IntN(len(v))]} }

func (c corpus) ibanAny() string {
	s := strings.ReplaceAll(c.iban(), " ", "")
	switch c.r.IntN(3) {
	case 0:
		s = strings.ToLower(s)
	case 1:
		s = strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
	}
	return separated(s, 4, c.pick("", " ", "-", ".", "  "))
}

func (c corpus) encoded() string {
	n := 16 + c.r.IntN(49)
	switch c.r.IntN(8) {
	case 0:
		return c.chars(n, hexChars)
	case 1:
		return strings.ToUpper(c.chars(n, hexChars))
	case 2:
		return c.chars(n, base64Chars) + c.pick("", "=", "==")
	case 3:
		return c.chars(n, base64URLChars)
	case 4:
		return c.chars(n, base32Chars) + c.pick("", "====")
	case 5:
		return strings.ToLower(c.chars(n, base32Chars))
	case 6:
		return fmt.Sprintf("%s-%s-%s-%s-%s", c.chars(8, hexChars), c.chars(4, hexChars), c.chars(4, hexChars), c.chars(4, hexChars), c.chars(12, hexChars))
	}
	return "eyJ" + c.chars(20, base64URLChars) + "." + c.chars(30, base64URLChars) + "." + c.chars(43, base64URLChars)
}

var secretKeyNames = []string{"api_key", "apiKey", "API-KEY", "x-api-key", "password", "PASSWORD", "passwd", "pwd",
	"secret", "client_secret", "access_token", "auth_token", "token", "refresh_token", "private_key", "db_password",
	"session_id", "credentials", "AUTH", "signing_secret", "X-Auth-Token", "passphrase"}

func (c corpus) password() string {
	s := c.chars(7+c.r.IntN(18), passwordChars)
	return s + c.chars(1, alnum)
}

// secretField plants a secret as the value of a secret field in one of the
// syntaxes requests carry, and returns the document and the value.
func (c corpus) secretField() (doc, value string) {
	k := c.pick(secretKeyNames...)
	v := c.password()
	switch c.r.IntN(19) {
	case 0:
		return fmt.Sprintf("Use %s=%s for the export.", k, v), v
	case 1:
		return fmt.Sprintf("Use %s = %s for the export.", k, v), v
	case 2:
		return fmt.Sprintf("The %s: %s (rotate it later)", k, v), v
	case 3:
		return fmt.Sprintf(`{"user": "ops", "%s": "%s", "retries": 3}`, k, v), v
	case 4:
		return fmt.Sprintf(`{'%s': '%s'}`, k, v), v
	case 5:
		return fmt.Sprintf("config:\n  host: db.local\n  %s: %s\n  port: 5432", k, v), v
	case 6:
		return fmt.Sprintf("export %s=%s\nrun the backup", strings.ToUpper(strings.ReplaceAll(k, "-", "_")), v), v
	case 7:
		return fmt.Sprintf("GET /v1/items HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer %s\nAccept: */*", v), v
	case 8:
		return fmt.Sprintf("curl -H 'Authorization: Basic %s' https://api.example.com", v), v
	case 9:
		return fmt.Sprintf("Fetch https://api.example.com/v2/report?format=csv&%s=%s&page=2 tonight", k, v), v
	case 10:
		return fmt.Sprintf("run backup --%s %s --verbose", strings.ToLower(k), v), v
	case 11:
		return fmt.Sprintf("run backup --%s=%s --verbose", strings.ToLower(k), v), v
	case 12:
		return fmt.Sprintf("<config><%s>%s</%s></config>", k, v, k), v
	case 13:
		return fmt.Sprintf("the %s is %s, keep it safe", k, v), v
	case 14:
		return fmt.Sprintf(`{"body": "{\"%s\": \"%s\"}"}`, k, v), v
	case 15:
		return fmt.Sprintf("user,%s,site\nkari,%s,north\nola,%s,south", k, v, c.password()), v
	case 16:
		return fmt.Sprintf("| user | %s |\n|---|---|\n| kari | %s |", k, v), v
	case 17:
		pass := strings.Join([]string{c.pick("correct", "violet", "anchor"), c.pick("horse", "river", "mango"), c.pick("battery", "stone", "lamp"), c.digits(2)}, " ")
		return fmt.Sprintf("settings:\n  %s: %s\n  retries: 3", k, pass), pass
	}
	return fmt.Sprintf("X-Api-Key: %s\nContent-Type: application/json", v), v
}

// embed places a value in one of the contexts requests carry.
func (c corpus) embed(v string) string {
	switch c.r.IntN(10) {
	case 0:
		return fmt.Sprintf(c.pick("Please check %s before the 08:30 shift.", "Reference: %s.", "(%s)", "ask about %s, then stop"), v)
	case 1:
		return fmt.Sprintf(`{"note": "see %s", "count": 3}`, v)
	case 2:
		return fmt.Sprintf("ticket:\n  ref: %s\n  priority: 2", v)
	case 3:
		return fmt.Sprintf("name,ref,notes\nkari,%s,ok", v)
	case 4:
		return fmt.Sprintf("X-Reference: %s\nAccept: */*", v)
	case 5:
		return fmt.Sprintf("https://portal.example.com/lookup?q=%s&lang=en", v)
	case 6:
		return fmt.Sprintf("2024-05-17T08:30:00Z INFO lookup ref=%s status=ok", v)
	case 7:
		return fmt.Sprintf("* %s\n* 3 pumps", v)
	case 8:
		return fmt.Sprintf("<ref>%s</ref>", v)
	}
	return v
}

var corpusClasses = []string{"digit_id", "phone", "card", "iban", "email", "secret_field", "encoded", "key_format",
	"credential_url", "ip", "name", "term", "configured_id", "national_id"}

// plant generates one planted item of the given class.
func (c corpus) plant(class string) item {
	it := item{class: class}
	switch class {
	case "digit_id":
		it.value = c.digitID()
	case "phone":
		it.value = c.phoneAny()
	case "card":
		it.value = c.cardAny()
	case "iban":
		it.value = c.ibanAny()
	case "email":
		it.value = c.email()
		if c.r.IntN(2) == 0 {
			it.value = strings.ToUpper(it.value)
		}
	case "secret_field":
		it.doc, it.value = c.secretField()
		return it
	case "encoded":
		it.value = c.encoded()
	case "key_format":
		it.value = c.key()
	case "credential_url":
		it.value = c.credURL()
		return item{class: class, value: it.value, doc: fmt.Sprintf(c.pick("Back up %s tonight.", "source: %s\n", `{"dsn": "%s"}`), it.value)}
	case "ip":
		it.value = c.ip()
	case "name":
		it.value = c.unicodeForm(c.pick(testPrivacy.Names...))
		if c.r.IntN(6) == 0 { // typed without its accents
			it.value = fold(it.value)
		}
	case "term":
		it.value = c.unicodeForm(c.pick(testPrivacy.Terms...))
	case "configured_id":
		id := c.pick(testPrivacy.IDs...)
		switch c.r.IntN(4) {
		case 0:
			id = strings.ToLower(id)
		case 1:
			id = strings.ReplaceAll(id, "-", " ")
		case 2:
			id = strings.ReplaceAll(id, "-", "")
		}
		it.value = c.unicodeForm(id)
	case "national_id":
		it.value = c.nationalID()
	}
	it.doc = c.embed(it.value)
	return it
}

// generateCorpus plants n values, cycling through the classes.
func generateCorpus(seed uint64, n int) []item {
	c := corpus{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	out := make([]item, 0, n)
	for i := range n {
		out = append(out, c.plant(corpusClasses[i%len(corpusClasses)]))
	}
	return out
}

// redactSeeds runs the corpus again for generator seeds 1..N, for a wider
// check than CI's one seed: go test ./internal/fallback -run TestRedactCorpus -redact.seeds=60
var redactSeeds = flag.Int("redact.seeds", 0, "also plant the corpus for seeds 1..N")

func TestRedactCorpus(t *testing.T) {
	r, err := NewRedactor(testPrivacy)
	if err != nil {
		t.Fatal(err)
	}
	items := generateCorpus(20261130, 7000)
	planted, leaks := map[string]int{}, map[string]int{}
	check := func(doc string, values []item) {
		s := r.NewSession()
		out := s.Redact(doc)
		for _, it := range values {
			planted[it.class]++
			if leaked(out, it.value) {
				leaks[it.class]++
				if leaks[it.class] <= 3 {
					t.Errorf("%s %q leaked:\n in: %q\nout: %q", it.class, it.value, doc, out)
				}
			}
		}
		if back := s.Restore(out); back != doc {
			t.Errorf("round trip lost text:\n in: %q\nout: %q\nback: %q", doc, out, back)
		}
	}
	for _, it := range items[:6000] {
		check(it.doc, []item{it})
	}
	// The rest go five to a document, each a paragraph.
	for i := 6000; i+5 <= len(items); i += 5 {
		var docs []string
		for _, it := range items[i : i+5] {
			docs = append(docs, it.doc)
		}
		check(strings.Join(docs, "\n\n"), items[i:i+5])
	}
	total, totalLeaks := 0, 0
	var classes []string
	for k := range planted {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	for _, k := range classes {
		total += planted[k]
		totalLeaks += leaks[k]
		t.Logf("%-15s planted %5d leaked %d", k, planted[k], leaks[k])
	}
	t.Logf("items leaked / items planted: %d / %d", totalLeaks, total)
	if total < 5000 {
		t.Errorf("corpus planted %d items, want at least 5000", total)
	}
	extra, extraLeaks := 0, 0
	for seed := uint64(1); seed <= uint64(*redactSeeds); seed++ {
		for _, it := range generateCorpus(seed, 7000) {
			s := r.NewSession()
			out := s.Redact(it.doc)
			extra++
			if leaked(out, it.value) {
				extraLeaks++
				t.Errorf("seed %d: %s %q leaked: %q", seed, it.class, it.value, out)
			}
			if back := s.Restore(out); back != it.doc {
				t.Errorf("seed %d: round trip lost text: %q", seed, it.doc)
			}
		}
	}
	if extra > 0 {
		t.Logf("seeds 1..%d: items leaked / items planted: %d / %d", *redactSeeds, extraLeaks, extra)
	}
}
