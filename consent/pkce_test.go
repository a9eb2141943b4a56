package consent_test

import (
	"net/url"
	"regexp"
	"testing"

	"github.com/pctoken/pctoken-helper/consent"
)

func TestPKCEChallengeRFC7636Vector(t *testing.T) {
	// RFC 7636 appendix B (checked against the RFC text and openssl).
	got := consent.PKCEChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
	if want := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; got != want {
		t.Fatalf("challenge %q, want %q", got, want)
	}
}

// unreserved is the verifier alphabet of RFC 7636 section 4.1, restricted to what
// base64url yields, at the allowed lengths.
var unreserved = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func TestNewPKCE(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		v, c, err := consent.NewPKCE()
		if err != nil {
			t.Fatal(err)
		}
		if !unreserved.MatchString(v) {
			t.Fatalf("verifier %q is not 43-128 unreserved characters", v)
		}
		if c != consent.PKCEChallenge(v) || len(c) != 43 {
			t.Fatalf("challenge %q does not belong to verifier %q", c, v)
		}
		if seen[v] {
			t.Fatalf("verifier %q repeated", v)
		}
		seen[v] = true
	}
}

func TestNewState(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := consent.NewState()
		if err != nil {
			t.Fatal(err)
		}
		// 128 bits at least, and nothing to escape in a URL.
		if len(s) < 22 || url.QueryEscape(s) != s {
			t.Fatalf("state %q is short or not URL-safe", s)
		}
		if seen[s] {
			t.Fatalf("state %q repeated", s)
		}
		seen[s] = true
	}
}
