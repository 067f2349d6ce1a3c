package fallback

import (
	"testing"

	"github.com/agentd/agentd/internal/config"
)

func TestRedactAllowedClasses(t *testing.T) {
	for _, tc := range []struct {
		allow    []string
		in, want string
	}{
		{nil, "call 5551234567", "call [PHONE_1]"},
		{[]string{config.RedactDigitRuns}, "call 5551234567", "call 5551234567"},
		// A card is also a digit run: it leaves only when both are allowed.
		{[]string{config.RedactCards}, "card 4111 1111 1111 1111", "card [NUMBER_1]"},
		{[]string{config.RedactDigitRuns}, "card 4111 1111 1111 1111 ok", "card [CARD_1] ok"},
		{[]string{config.RedactDigitRuns, config.RedactCards}, "card 4111 1111 1111 1111", "card 4111 1111 1111 1111"},
		{[]string{config.RedactEncodedStrings}, "sum d4735e3a265e16eee03f59718b9b5d03", "sum d4735e3a265e16eee03f59718b9b5d03"},
		{[]string{config.RedactSecretFields}, "password=tulip", "password=tulip"},
		{[]string{config.RedactEmails}, "mail ola@example.com", "mail ola@example.com"},
		{[]string{config.RedactIBANs, config.RedactDigitRuns}, "IBAN DE89370400440532013000", "IBAN [SECRET_1]"},
		// Configured names cannot be allowed away.
		{config.RedactionClasses, "Kari Nordmann, 5551234567", "[NAME_1], 5551234567"},
	} {
		p := testPrivacy
		p.Allow = tc.allow
		r, err := NewRedactor(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.NewSession().Redact(tc.in); got != tc.want {
			t.Errorf("allow %v: Redact(%q) = %q, want %q", tc.allow, tc.in, got, tc.want)
		}
	}
}

func TestRedactMinimums(t *testing.T) {
	r, _ := NewRedactor(config.PrivacyConfig{MinDigits: 10, MinEncodedLength: 32})
	s := r.NewSession()
	if got := s.Redact("ref 123 4567 and d4735e3a265e16ee"); got != "ref 123 4567 and d4735e3a265e16ee" {
		t.Errorf("got %q", got)
	}
	if got := s.Redact("call 555 123 4567"); got != "call [PHONE_1]" {
		t.Errorf("got %q", got)
	}
}

func TestViewMapsBackToOriginal(t *testing.T) {
	for _, tc := range []struct{ in, view string }{
		{"Mari\u0301a", "Maria"},
		{"Ｋａｒｉ", "Kari"},
		{"٠١٢٣٤٥٦٧٨٩ ०९", "0123456789 09"},
		{"a\u200bb\u00adc", "abc"},
		{"12\u201334 \u201cx\u201d", "12-34 \"x\""},
		{"Straße", "Strasse"},
		{"Кari", "Kari"},
		{"\xff1", "\ufffd1"},
	} {
		v := newView(tc.in)
		if v.s != tc.view {
			t.Errorf("view(%q) = %q, want %q", tc.in, v.s, tc.view)
		}
		if a, b := v.span(0, len(v.s)); a != 0 || b != len(tc.in) {
			t.Errorf("view(%q) spans [%d,%d), want [0,%d)", tc.in, a, b, len(tc.in))
		}
	}
}
