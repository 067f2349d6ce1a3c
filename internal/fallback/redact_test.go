package fallback

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
)

var testPrivacy = config.PrivacyConfig{
	Names:              []string{"Kari Nordmann", "María José García", "Åse Bøe", "Okonkwo"},
	Terms:              []string{"Project Bluefin", "Codename ORCA"},
	IDs:                []string{"MRN-004512", "ASSET-7781-B"},
	NationalIDPatterns: []string{`\b\d{3}-\d{2}-\d{4}\b`, `\b[0-3]\d[01]\d{3} ?\d{5}\b`},
}

// planted is a sensitive value hidden in a generated request.
type planted struct {
	kind, value string
	sentence    string // the value in its context
}

// corpus generates sensitive values of every kind from a seeded source, so
// a failure names a value that can be reproduced.
type corpus struct {
	r *rand.Rand
}

func (c corpus) digits(n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + c.r.IntN(10)))
	}
	return b.String()
}

func (c corpus) chars(n int, alphabet string) string {
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[c.r.IntN(len(alphabet))])
	}
	return b.String()
}

func (c corpus) pick(s ...string) string { return s[c.r.IntN(len(s))] }

const (
	alnum    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upperNum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	hexChars = "0123456789abcdef"
)

func (c corpus) email() string {
	return c.pick("ola", "kari.n", "j.smith", "ops+alerts", "dr_amara", "ceo") + c.digits(2) + "@" +
		c.pick("example.com", "clinic-north.no", "mail.shipco.co.uk", "minesite.com.au", "fabrik.de")
}

func (c corpus) phone() string {
	switch c.r.IntN(9) {
	case 0:
		return "+47 9" + c.digits(2) + " " + c.digits(2) + " " + c.digits(3)
	case 1:
		return "+1 (" + c.pick("415", "212", "646") + ") " + c.pick("555", "382", "907") + "-" + c.digits(4)
	case 2:
		return "+44 20 7946 " + c.digits(4)
	case 3:
		return "+49 30 " + c.digits(8)
	case 4:
		return "(" + c.pick("415", "303", "718") + ") " + c.pick("555", "472", "839") + "-" + c.digits(4)
	case 5:
		return c.pick("415", "303", "718") + "-" + c.pick("555", "472", "839") + "-" + c.digits(4)
	case 6:
		return "020 7946 " + c.digits(4)
	case 7:
		return "0" + c.pick("1", "6", "7") + " " + c.digits(2) + " " + c.digits(2) + " " + c.digits(2) + " " + c.digits(2)
	}
	return "0049 " + c.digits(3) + " " + c.digits(7)
}

func luhnComplete(prefix string, n int, c corpus) string {
	body := prefix + c.digits(n-len(prefix)-1)
	for d := byte('0'); d <= '9'; d++ {
		if luhnValid(body + string(d)) {
			return body + string(d)
		}
	}
	panic("unreachable")
}

func (c corpus) card() string {
	var num string
	switch c.r.IntN(4) {
	case 0:
		num = luhnComplete("4", 16, c)
	case 1:
		num = luhnComplete("5"+c.pick("1", "3", "5"), 16, c)
	case 2:
		num = luhnComplete("37", 15, c)
	default:
		num = luhnComplete("6", 19, c)
	}
	sep := c.pick(" ", "-", "")
	var groups []string
	for i := 0; i < len(num); i += 4 {
		groups = append(groups, num[i:min(i+4, len(num))])
	}
	return strings.Join(groups, sep)
}

func (c corpus) iban() string {
	cc, bban := "", ""
	switch c.r.IntN(4) {
	case 0:
		cc, bban = "DE", c.digits(18)
	case 1:
		cc, bban = "NO", c.digits(11)
	case 2:
		cc, bban = "GB", c.pick("NWBK", "BARC", "HSBC")+c.digits(14)
	default:
		cc, bban = "FR", c.digits(10)+c.chars(11, upperNum)+c.digits(2)
	}
	for check := 2; check <= 98; check++ {
		s := fmt.Sprintf("%s%02d%s", cc, check, bban)
		if ibanValid(s) {
			if c.r.IntN(2) == 0 {
				return s
			}
			var groups []string
			for i := 0; i < len(s); i += 4 {
				groups = append(groups, s[i:min(i+4, len(s))])
			}
			return strings.Join(groups, " ")
		}
	}
	panic("no check digits")
}

func (c corpus) ip() string {
	if c.r.IntN(2) == 0 {
		return fmt.Sprintf("%d.%d.%d.%d", 10+c.r.IntN(200), c.r.IntN(256), c.r.IntN(256), 1+c.r.IntN(254))
	}
	switch c.r.IntN(3) {
	case 0:
		return "2001:db8:" + c.chars(4, hexChars) + "::" + c.chars(3, hexChars)
	case 1:
		return "fe80::" + c.chars(3, hexChars) + ":" + c.chars(4, hexChars) + ":" + c.chars(4, hexChars) + ":" + c.chars(4, hexChars)
	}
	var g []string
	for range 8 {
		g = append(g, c.chars(4, hexChars))
	}
	return strings.Join(g, ":")
}

func (c corpus) credURL() string {
	return c.pick("https", "postgres", "ftp", "redis") + "://" + c.pick("admin", "svc_backup", "bob") + ":" +
		c.chars(10, alnum) + "@" + c.pick("db.internal.example.com:5432/prod", "10.2.3.4/data", "files.example.org/export.csv")
}

func (c corpus) key() string {
	switch c.r.IntN(8) {
	case 0:
		return "sk-proj-" + c.chars(40, alnum)
	case 1:
		return "AKIA" + c.chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	case 2:
		return "ghp_" + c.chars(36, alnum)
	case 3:
		return "xoxb-" + c.digits(12) + "-" + c.digits(12) + "-" + c.chars(24, alnum)
	case 4:
		return c.chars(40, hexChars)
	case 5:
		return c.chars(40, alnum) + "=="
	case 6:
		return "eyJhbGciOiJIUzI1NiJ9." + c.chars(30, alnum) + "." + c.chars(43, alnum)
	}
	return "glpat-" + c.chars(20, alnum)
}

func (c corpus) nationalID() string {
	if c.r.IntN(2) == 0 {
		return c.pick("123", "078", "219") + "-" + c.digits(2) + "-" + c.digits(4)
	}
	return fmt.Sprintf("%d%d%d%d%s %s", c.r.IntN(3), 1+c.r.IntN(9), c.r.IntN(2), c.r.IntN(10), c.digits(2), c.digits(5))
}

// item returns a planted value of each kind in turn and the sentence that
// carries it.
func (c corpus) item(i int) (planted, string) {
	switch i % 12 {
	case 0:
		v := c.email()
		return planted{kind: KindEmail, value: v}, c.pick("Send the report to %s.", "Reply to %s with the summary", "CC: %s;")
	case 1:
		v := c.phone()
		return planted{kind: KindPhone, value: v}, c.pick("Call the skipper on %s tonight.", "Phone: %s", "If it fails ring %s, then stop.")
	case 2:
		v := c.card()
		return planted{kind: KindCard, value: v}, c.pick("Refund the card %s for the duplicate charge.", "card number %s (expires 09/27)")
	case 3:
		v := c.iban()
		return planted{kind: KindIBAN, value: v}, c.pick("Pay the supplier to IBAN %s by Friday.", "Account: %s.")
	case 4:
		v := c.ip()
		return planted{kind: KindIP, value: v}, c.pick("Check the PLC at %s for alarms.", "The gateway (%s) dropped packets")
	case 5:
		v := c.credURL()
		return planted{kind: KindURL, value: v}, c.pick("Back up the database at %s tonight.", "Source: %s")
	case 6:
		v := c.key()
		return planted{kind: KindKey, value: v}, c.pick("Use the key %s for the export.", "token=%s", "Authorization: Bearer %s")
	case 7:
		v := c.nationalID()
		return planted{kind: KindNationalID, value: v}, c.pick("Patient ID %s needs a follow-up.", "SSN %s on file")
	case 8:
		v := c.pick(testPrivacy.Names...)
		if c.r.IntN(2) == 0 {
			v = strings.ToUpper(v)
		}
		return planted{kind: KindName, value: v}, c.pick("Schedule a visit for %s next week.", "%s asked for the lab results.")
	case 9:
		v := c.pick(testPrivacy.Terms...)
		if c.r.IntN(2) == 0 {
			v = strings.ToLower(v)
		}
		return planted{kind: KindTerm, value: v}, c.pick("Summarise the status of %s.", "Keep %s out of the weekly mail")
	case 10:
		v := "password: " + c.chars(12, alnum)
		return planted{kind: KindKey, value: strings.TrimPrefix(v, "password: ")}, "Log in with %s then list the files."
	}
	v := c.email()
	return planted{kind: KindEmail, value: v}, "Forward everything from <%s> to the archive."
}

// generateRequests builds n realistic requests carrying at least minItems
// planted values between them.
func generateRequests(seed uint64, n int) ([]string, [][]planted) {
	c := corpus{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	openers := []string{"Hi, please help with the following.", "Urgent for the night shift:", "From the clinic desk:",
		"Weekly ops task.", "Following up on ticket 4471 from 2024-05-17 at 08:30:"}
	var reqs []string
	var items [][]planted
	k := 0
	for range n {
		var b strings.Builder
		b.WriteString(c.pick(openers...))
		var ps []planted
		for range 3 + c.r.IntN(3) {
			p, tmpl := c.item(k)
			k++
			if strings.HasPrefix(tmpl, "Log in with") {
				p.sentence = fmt.Sprintf(tmpl, "password: "+p.value)
			} else {
				p.sentence = fmt.Sprintf(tmpl, p.value)
			}
			ps = append(ps, p)
			b.WriteString(" ")
			b.WriteString(p.sentence)
		}
		b.WriteString(" Keep the answer under 200 words and list 3 steps.")
		reqs = append(reqs, b.String())
		items = append(items, ps)
	}
	return reqs, items
}

func TestRedactionCorpusNeverLeaves(t *testing.T) {
	ctx := context.Background()
	reqs, items := generateRequests(20261122, 60)
	total := 0
	kinds := map[string]int{}
	for _, ps := range items {
		total += len(ps)
		for _, p := range ps {
			kinds[p.kind]++
		}
	}
	if total < 200 || len(kinds) < 10 {
		t.Fatalf("corpus has %d items of %d kinds; want >= 200 of every kind", total, len(kinds))
	}
	f := newFakeRemote(t)
	store := openStore(t)
	gates := map[string]*Gate{}
	for _, kind := range []string{"openai", "anthropic", "ollama"} {
		cfg := testConfig(f, kind)
		cfg.Privacy = testPrivacy
		gates[kind] = newTestGate(t, store, cfg, nil)
	}
	kindsOrder := []string{"openai", "anthropic", "ollama"}
	for i, req := range reqs {
		g := gates[kindsOrder[i%3]]
		sys := "You are a planner. Site notes: " + items[i][0].sentence
		plan, usage, err := g.PlanRemote(ctx, PlanRequest{RunID: fmt.Sprintf("run-%d", i), SystemPrompt: sys,
			UserRequest: req, Schema: json.RawMessage(testSchema), LocalPlan: items[i][1].sentence,
			LocalErrors: []string{"step 2 failed: " + items[i][2].sentence}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		// Round trip: the fake echoes the redacted request as goal and as a
		// step argument; restored, they are the original request.
		var p struct {
			Goal  string `json:"goal"`
			Steps []struct {
				Args map[string]string `json:"args"`
			} `json:"steps"`
		}
		if err := json.Unmarshal(plan, &p); err != nil {
			t.Fatal(err)
		}
		if p.Goal != req || len(p.Steps) != 1 || p.Steps[0].Args["text"] != req {
			t.Errorf("request %d did not round-trip:\n got %q\nwant %q", i, p.Goal, req)
		}
		n := 0
		for _, c := range usage.Redactions {
			n += c
		}
		if n < len(items[i]) {
			t.Errorf("request %d: report counts %d redactions (%v), planted %d", i, n, usage.Redactions, len(items[i]))
		}
	}
	rec := f.recorded()
	if len(rec) != len(reqs) {
		t.Fatalf("fake remote saw %d requests, want %d", len(rec), len(reqs))
	}
	var all strings.Builder
	for _, r := range rec {
		all.Write(r.Body)
		all.WriteByte('\n')
	}
	// Fine-tuning candidates are stored redacted too.
	_ = store.EachFinetune(ctx, func(c db.FinetuneCandidate) error {
		fmt.Fprintln(&all, c.SystemPrompt, c.Request, c.LocalPlan, c.LocalErrors, c.RemotePlan)
		return nil
	})
	sent := all.String()
	for _, ps := range items {
		for _, p := range ps {
			forms := []string{p.value}
			if p.kind == KindCard || p.kind == KindIBAN || p.kind == KindPhone {
				forms = append(forms, compact(p.value))
			}
			if p.kind == KindName || p.kind == KindTerm {
				forms = []string{strings.ToLower(p.value)}
			}
			for _, v := range forms {
				hay := sent
				if p.kind == KindName || p.kind == KindTerm {
					hay = strings.ToLower(sent)
				}
				if strings.Contains(hay, v) {
					t.Errorf("%s %q left the machine", p.kind, v)
				}
			}
		}
	}
	// The ledger counts kinds, never values.
	var ledger strings.Builder
	if err := gates["openai"].ExportEgress(ctx, &ledger, time.Time{}, "jsonl"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ledger.String(), `"EMAIL":`) {
		t.Errorf("ledger lacks redaction counts: %.300s", ledger.String())
	}
	for _, ps := range items[:5] {
		if strings.Contains(ledger.String(), ps[0].value) {
			t.Errorf("ledger holds a value: %q", ps[0].value)
		}
	}
}

func TestRedactKinds(t *testing.T) {
	r, err := NewRedactor(testPrivacy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, want string
	}{
		{"mail ola@example.com now", "mail [EMAIL_1] now"},
		{"ola@example.com and OLA@example.com and ola@example.com", "[EMAIL_1] and [EMAIL_2] and [EMAIL_1]"},
		{"card 4111 1111 1111 1111.", "card [CARD_1]."},
		{"card 4111-1111-1111-1111 2025", "card [CARD_1] 2025"},
		{"not a card 4111 1111 1111 1112", "not a card [NUMBER_1]"}, // default-deny: still an identifier
		{"IBAN DE89 3704 0044 0532 0130 00 TODAY", "IBAN [IBAN_1] TODAY"},
		{"IBAN GB82WEST12345698765432.", "IBAN [IBAN_1]."},
		{"bad GB82 WEST 1234 5698 7654 33", "bad GB82 WEST [PHONE_1]"},
		{"at 192.168.1.20, or 2001:db8::ff00:42:8329.", "at [IP_1], or [IP_2]."},
		{"meet at 12:30:45 on 2024-05-17", "meet at 12:30:45 on 2024-05-17"},
		{"use https://bob:hunter2@example.com/x.", "use [URL_1]."},
		{"Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [KEY_1]"},
		{"key sk-proj-abcdefghijklmnopqrstuvwx", "key [KEY_1]"},
		{"api_key=s3cr3tvalue rest", "api_key=[KEY_1] rest"},
		{"call +47 912 34 567 or (415) 555-0134", "call [PHONE_1] or [PHONE_2]"},
		{"KARI NORDMANN met kari nordmann and Åse Bøe", "[NAME_1] met [NAME_2] and [NAME_3]"},
		{"Okonkwos are not Okonkwo", "Okonkwos are not [NAME_1]"},
		{"SSN 123-45-6789", "SSN [ID_1]"},
		{"project bluefin is late", "[TERM_1] is late"},
		{"sha d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35 done", "sha [SECRET_1] done"},
		{"plain step get_weather_forecast_for_city and version 1.2.3", "plain step get_weather_forecast_for_city and version 1.2.3"},
		// The formats an independent test got through before default-deny.
		{"call 5551234567 now", "call [PHONE_1] now"},
		{"card 4111.1111.1111.1111 please", "card [CARD_1] please"},
		{"iban de89 3704 0044 0532 0130 00 ok", "iban [IBAN_1] ok"},
		{`{"api_key": "abc123", "n": 3}`, `{"api_key": "[KEY_1]", "n": 3}`},
		{"visit for Mari\u0301a Jose\u0301 Garci\u0301a", "visit for [NAME_1]"},
		// Every separator, every syntax.
		{"ref 12/345/67.89 (ok)", "ref [PHONE_1] (ok)"},
		{"tel +47 (0) 912-34-567", "tel [PHONE_1]"},
		{"Authorization: Bearer abc.def", "Authorization: Bearer [KEY_1]"},
		{"db:\n  password: correct horse battery\n  port: 5432", "db:\n  password: [KEY_1]\n  port: 5432"},
		{"GET /x?access_token=abc&page=2", "GET /x?access_token=[KEY_1]&page=2"},
		{"run --password s3cret -v", "run --password [KEY_1] -v"},
		{"the passphrase is tulip", "the passphrase is [KEY_1]"},
		{"<clientSecret>xyz</clientSecret>", "<clientSecret>[KEY_1]</clientSecret>"},
		{"ssh_keys: [\"abc\", \"def\"] and the author: Ibsen, shipping: 3 days", "ssh_keys: [[KEY_1]] and the author: Ibsen, shipping: 3 days"},
		{"Cookie: sid=abc; theme=dark\nAccept: */*", "Cookie: [KEY_1]\nAccept: */*"},
		{"user,password\nkari,tulip99", "user,password\nkari,[KEY_1]"},
		{"id 550e8400-e29b-41d4-a716-446655440000.", "id [SECRET_1]."},
		{"base32 JBSWY3DPEHPK3PXPJBSW done", "base32 [SECRET_1] done"},
		{"patient mrn 004512 and asset7781b", "patient [ID_1] and [ID_2]"},
		{"ＫＡＲＩ　ＮＯＲＤＭＡＮＮ called", "[NAME_1] called"},
		{"Кari Nоrdmann called", "[NAME_1] called"}, // Cyrillic К and о
		{"０１２３４５６７８９", "[PHONE_1]"},
		// Ordinary values stay.
		{"on 2024-05-17 08:30 run 3 pumps at 72% for $1,299.00 (2020-2024)", "on 2024-05-17 08:30 run 3 pumps at 72% for $1,299.00 (2020-2024)"},
		{"from 17.05.2024 - 20.05.2024, ticket 44718", "from 17.05.2024 - 20.05.2024, ticket 44718"},
		{"but 2019.10.05.123 is a reference", "but [PHONE_1] is a reference"},
	} {
		s := r.NewSession()
		got := s.Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if back := s.Restore(got); back != tc.in {
			t.Errorf("Restore(%q) = %q, want %q", got, back, tc.in)
		}
	}
}

func TestRestoreJSONIsRecursive(t *testing.T) {
	r, _ := NewRedactor(config.PrivacyConfig{})
	s := r.NewSession()
	red := s.Redact("write to ola@example.com and kari@example.no")
	if red != "write to [EMAIL_1] and [EMAIL_2]" {
		t.Fatal(red)
	}
	out, err := s.RestoreJSON([]byte(`{"steps":[{"args":{"to":["[EMAIL_2]",{"cc":"x [EMAIL_1] y"}],"n":3}}],"[EMAIL_1]":"[PHONE_9]"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ola@example.com":"[PHONE_9]","steps":[{"args":{"n":3,"to":["kari@example.no",{"cc":"x ola@example.com y"}]}}]}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if _, err := s.RestoreJSON([]byte(`{"a":1} trailing`)); err == nil {
		t.Error("text after the JSON document accepted")
	}
	if rep := s.Report(); rep[KindEmail] != 2 || len(rep) != 1 {
		t.Errorf("report = %v", rep)
	}
}

func TestNewRedactorRejectsBadPattern(t *testing.T) {
	if _, err := NewRedactor(config.PrivacyConfig{NationalIDPatterns: []string{"("}}); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestRedactSchemaKeepsStructure(t *testing.T) {
	r, _ := NewRedactor(testPrivacy)
	s := r.NewSession()
	out, err := s.RedactSchema(json.RawMessage(`{"type":"object","description":"Ask ola@example.com","properties":{"tool":{"enum":["send_mail","Project Bluefin"],"title":"Tool for Project Bluefin"}},"required":["tool"]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"description":"Ask [EMAIL_1]","properties":{"tool":{"enum":["send_mail","Project Bluefin"],"title":"Tool for [TERM_1]"}},"required":["tool"],"type":"object"}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if _, err := s.RedactSchema(json.RawMessage(`{`)); err == nil {
		t.Error("broken schema accepted")
	}
}
