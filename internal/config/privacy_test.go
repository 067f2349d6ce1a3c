package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePrivacy(t *testing.T) {
	for _, tt := range []struct {
		name    string
		toml    string
		mention []string // empty: valid
	}{
		{"allow a class", "[fallback.privacy]\nallow = [\"digit_runs\", \"emails\"]\n", nil},
		{"allow an unknown class", "[fallback.privacy]\nallow = [\"emails\", \"phones\"]\n",
			[]string{"fallback.privacy.allow[1]", `"phones"`, "digit_runs", "encoded_strings"}},
		{"too few digits", "[fallback.privacy]\nmin_digits = 3\n", []string{"fallback.privacy.min_digits", "3", "between 5 and 19"}},
		{"short encoded", "[fallback.privacy]\nmin_encoded_length = 4\n", []string{"fallback.privacy.min_encoded_length", "between 8 and 64"}},
		{"empty id", "[fallback.privacy]\nids = [\"MRN-1\", \" \"]\n", []string{"fallback.privacy.ids[1]", "must not be empty"}},
		{"bad pattern", "[fallback.privacy]\nnational_id_patterns = [\"(\"]\n", []string{"fallback.privacy.national_id_patterns[0]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(tt.toml), "test.toml")
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = cfg.Validate()
			if len(tt.mention) == 0 {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError wrapping ErrInvalid", err)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

func TestPrivacyDefaultsDenyEverything(t *testing.T) {
	p := Default().Fallback.Privacy
	if len(p.Allow) != 0 || p.MinDigits != 7 || p.MinEncodedLength != 16 {
		t.Errorf("default privacy = %+v; want nothing allowed, min_digits 7, min_encoded_length 16", p)
	}
}
