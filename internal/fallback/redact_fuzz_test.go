package fallback

import (
	"math/rand/v2"
	"testing"
)

// FuzzRedact plants a generated value between two arbitrary texts, each on
// its own line, and checks that redaction does not panic, never lets the
// planted value out in any form, and that Restore gives back the input
// whenever the input held no placeholder-shaped text of its own.
func FuzzRedact(f *testing.F) {
	f.Add("", "", uint64(1), uint8(0))
	f.Add("password: ", " trailing", uint64(2), uint8(5))
	f.Add("{\"api_key\": \"", "\"}", uint64(3), uint8(6))
	f.Add("Call 555 123 4567", "2024-05-17 08:30", uint64(4), uint8(1))
	f.Add("Mari\u0301a", "\xff\xfe invalid", uint64(5), uint8(10))
	f.Add("[EMAIL_1] x", "ordinary text", uint64(6), uint8(4))
	f.Add("user,token\nkari,", "\n\n", uint64(7), uint8(5))
	r, err := NewRedactor(testPrivacy)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string, seed uint64, class uint8) {
		c := corpus{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
		it := c.plant(corpusClasses[int(class)%len(corpusClasses)])
		in := prefix + "\n" + it.doc + "\n" + suffix
		s := r.NewSession()
		out := s.Redact(in)
		if !leaked(prefix+"\n"+suffix, it.value) && leaked(out, it.value) {
			t.Errorf("%s %q leaked:\n in: %q\nout: %q", it.class, it.value, in, out)
		}
		if !placeholderRe.MatchString(in) {
			if back := s.Restore(out); back != in {
				t.Errorf("round trip:\n in: %q\nout: %q\nback: %q", in, out, back)
			}
		}
		// The arbitrary text alone must survive the round trip as well.
		if raw := prefix + suffix; !placeholderRe.MatchString(raw) {
			s := r.NewSession()
			if back := s.Restore(s.Redact(raw)); back != raw {
				t.Errorf("round trip of %q gave %q", raw, back)
			}
		}
	})
}
