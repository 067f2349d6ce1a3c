package localplanner

import (
	"testing"
)

func TestFingerprintOfShortRequestsDiffers(t *testing.T) {
	a, b := Fingerprint("what is 2+2"), Fingerprint("what is 3+5")
	if a == b {
		t.Fatalf("short requests share fingerprint %s", a)
	}
	if Fingerprint("What is 2 + 2?") != a {
		t.Error("fingerprint depends on case or punctuation")
	}
	if Fingerprint("") == a {
		t.Error("empty and non-empty requests share a fingerprint")
	}
}
