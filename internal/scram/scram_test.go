package scram

import (
	"strings"
	"testing"
)

func TestVerifier(t *testing.T) {
	v, err := WithSalt("secret-password", []byte("0123456789abcdef"), Iterations)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$") || strings.Contains(v, "secret-password") {
		t.Errorf("verifier = %s", v)
	}
	tests := []struct {
		stored, password string
		want             bool
	}{
		{v, "secret-password", true},
		{v, "other", false},
		{"md5abc", "secret-password", false},
		{"", "secret-password", false},
		{"SCRAM-SHA-256$x:y$z", "secret-password", false},
	}
	for _, tc := range tests {
		if got := Matches(tc.stored, tc.password); got != tc.want {
			t.Errorf("Matches(%.20q, %q) = %v, want %v", tc.stored, tc.password, got, tc.want)
		}
	}
	a, _ := Verifier("p")
	b, _ := Verifier("p")
	if a == b || !Matches(a, "p") || !Matches(b, "p") {
		t.Errorf("random salts: %s %s", a, b)
	}
}
