package core

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestClaimsChallenge: get --claims is never answered from the cache; the token it
// gets satisfies the challenge (the simulator puts the asked authentication context in
// acrs, as Entra does) and replaces the cached one.
func TestClaimsChallenge(t *testing.T) {
	e := harness.New(t)
	e.Consent()
	first := harness.DecodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
	if acrs(t, first.AccessToken) != nil {
		t.Fatal("a token without a challenge carries acrs")
	}
	challenge := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	for _, form := range []string{challenge, base64.StdEncoding.EncodeToString([]byte(challenge))} {
		e.Sim.ResetStats()
		got := harness.DecodeToken(t, e.MustRun("get", "--scope", "graph", "--claims", form).Stdout)
		if got.Cached || e.Sim.Stats().Requests["token"] != 1 || !slices.Equal(acrs(t, got.AccessToken), []string{"c1"}) {
			t.Fatalf("--claims %s: cached %v, %d token requests, acrs %v", form, got.Cached, e.Sim.Stats().Requests["token"], acrs(t, got.AccessToken))
		}
		again := harness.DecodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
		if !again.Cached || again.AccessToken != got.AccessToken {
			t.Fatal("the token that satisfies the challenge is not the cached one")
		}
	}
	for _, bad := range []string{"[1]", "not-base64!", `{"access_token":`} {
		res := e.Run("get", "--scope", "graph", "--claims", bad)
		wantExit(t, res, 2, "--claims "+bad)
		if !strings.Contains(res.Stderr, "--claims") {
			t.Errorf("--claims %s: %s", bad, res.Stderr)
		}
	}
}

// acrs is the acrs claim of an access token (nil when absent).
func acrs(t *testing.T, jwt string) []string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ACRS []string `json:"acrs"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.ACRS
}
