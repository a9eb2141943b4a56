package entra

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
)

const (
	homeID     = "0f1e2d3c-0000-4000-8000-00000000c0de"
	customerID = "0f1e2d3c-0000-4000-8000-00000000fab1"
)

func jwt(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln"
}

func TestVet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hour := now.Add(time.Hour)
	for _, c := range []struct {
		name      string
		expires   time.Time
		token     string
		requested string
		scope     string
		kind      failure.Kind // Unexpected: accepted
		want      time.Time    // the expiry kept, when accepted
	}{
		{"good", hour, jwt(map[string]any{"tid": homeID, "aud": "https://graph.microsoft.com", "exp": hour.Unix()}), "", "https://graph.microsoft.com/.default", failure.Unexpected, hour},
		{"exp earlier", hour, jwt(map[string]any{"tid": homeID, "exp": now.Add(10 * time.Minute).Unix()}), "", "User.Read", failure.Unexpected, now.Add(10 * time.Minute)},
		{"exp later is ignored", hour, jwt(map[string]any{"exp": now.Add(5 * time.Hour).Unix()}), "", "User.Read", failure.Unexpected, hour},
		{"exp absurd is ignored", hour, jwt(map[string]any{"exp": 1e300}), "", "User.Read", failure.Unexpected, hour},
		{"exp past", hour, jwt(map[string]any{"exp": now.Add(-time.Second).Unix()}), "", "User.Read", failure.Transient, time.Time{}},
		{"at the limit", now.Add(MaxLifetime), "opaque", "", "User.Read", failure.Unexpected, now.Add(MaxLifetime)},
		{"past the limit", now.Add(MaxLifetime + time.Second), "opaque", "", "User.Read", failure.Transient, time.Time{}},
		{"expires now", now, "opaque", "", "User.Read", failure.Transient, time.Time{}},
		{"expired", now.Add(-time.Hour), "opaque", "", "User.Read", failure.Transient, time.Time{}},
		{"opaque skips claims", hour, "EwBwA8l6BAAU", customerID, "User.Read", failure.Unexpected, hour},
		{"home token for customer", hour, jwt(map[string]any{"tid": homeID}), customerID, "User.Read", failure.Configuration, time.Time{}},
		{"customer token for home", hour, jwt(map[string]any{"tid": customerID}), "", "User.Read", failure.Configuration, time.Time{}},
		{"tenant case", hour, jwt(map[string]any{"tid": strings.ToUpper(customerID)}), customerID, "User.Read", failure.Unexpected, hour},
		{"domain not checked", hour, jwt(map[string]any{"tid": customerID}), "fabrikam.onmicrosoft.com", "User.Read", failure.Unexpected, hour},
		{"organizations is the home tenant", hour, jwt(map[string]any{"tid": customerID}), "organizations", "User.Read", failure.Configuration, time.Time{}},
		{"no tid", hour, jwt(map[string]any{"aud": "https://graph.microsoft.com"}), customerID, "User.Read", failure.Unexpected, hour},
		{"wrong audience", hour, jwt(map[string]any{"tid": homeID, "aud": "https://management.azure.com"}), "", "https://graph.microsoft.com/.default", failure.Configuration, time.Time{}},
		{"v2 audience", hour, jwt(map[string]any{"tid": homeID, "aud": "00000003-0000-0000-c000-000000000000"}), "", "https://graph.microsoft.com/.default", failure.Unexpected, hour},
		{"wrong v2 audience", hour, jwt(map[string]any{"tid": homeID, "aud": "797f4846-ba00-4fd7-ba43-dac1f8f63013"}), "", "https://graph.microsoft.com/.default", failure.Configuration, time.Time{}},
		{"ARM alias", hour, jwt(map[string]any{"aud": "https://management.core.windows.net/"}), "", "https://management.azure.com/user_impersonation", failure.Unexpected, hour},
		{"custom app by id", hour, jwt(map[string]any{"aud": "5b3e2e5a-0000-4000-8000-000000000001"}), "", "api://contoso-api/access_as_user", failure.Unexpected, hour},
		{"custom app by uri", hour, jwt(map[string]any{"aud": "api://contoso-api"}), "", "api://contoso-api/access_as_user", failure.Unexpected, hour},
		{"another custom app", hour, jwt(map[string]any{"aud": "api://other-api"}), "", "api://contoso-api/access_as_user", failure.Configuration, time.Time{}},
		{"DevOps by id", hour, jwt(map[string]any{"aud": "499b84ac-1321-427f-aa17-267ca6975798"}), "", "499b84ac-1321-427f-aa17-267ca6975798/.default", failure.Unexpected, hour},
		{"aud list", hour, jwt(map[string]any{"aud": []string{"x", "https://graph.microsoft.com"}}), "", "User.Read", failure.Unexpected, hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := App{HomeTenant: homeID}
			tok := Token{AccessToken: c.token, ExpiresOn: c.expires}
			err := a.vet(&tok, accessTokenClaims(c.token), c.requested, homeID, []string{c.scope}, now)
			if c.kind == failure.Unexpected {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tok.ExpiresOn.Equal(c.want) {
					t.Fatalf("expiry %s, want %s", tok.ExpiresOn, c.want)
				}
				return
			}
			if err == nil || failure.KindOf(err) != c.kind {
				t.Fatalf("got %v (kind %v), want kind %v", err, failure.KindOf(err), c.kind)
			}
			if !strings.Contains(err.Error(), "not cached") {
				t.Fatalf("message %q does not say it is not cached", err)
			}
		})
	}
}

func TestExpectedTenant(t *testing.T) {
	for _, c := range []struct{ requested, appHome, accountHome, want string }{
		{"", homeID, homeID, homeID},
		{customerID, homeID, homeID, customerID},
		{strings.ToUpper(customerID), homeID, "", customerID},
		{"", "organizations", homeID, homeID},
		{"", "organizations", "", ""},
		{"common", homeID, homeID, homeID},
		{"fabrikam.onmicrosoft.com", homeID, homeID, ""},
		{"", "contoso.onmicrosoft.com", homeID, ""},
	} {
		if got := expectedTenant(c.requested, c.appHome, c.accountHome); got != c.want {
			t.Errorf("expectedTenant(%q, %q, %q) = %q, want %q", c.requested, c.appHome, c.accountHome, got, c.want)
		}
	}
}

// FuzzAccessTokenClaims: claims come from the network; reading them never panics,
// and whatever they say, vet either accepts with an expiry no later than the
// answer's, or refuses with a kind.
func FuzzAccessTokenClaims(f *testing.F) {
	f.Add(jwt(map[string]any{"tid": homeID, "aud": "https://graph.microsoft.com", "exp": 1_800_003_600}))
	f.Add(jwt(map[string]any{"aud": []any{1, "x"}, "exp": "soon"}))
	f.Add("a.b.c")
	f.Add("a." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":-1e400}`)) + ".c")
	f.Add("opaque")
	f.Fuzz(func(t *testing.T, token string) {
		now := time.Unix(1_800_000_000, 0)
		claims := accessTokenClaims(token)
		_ = claims.audiences()
		tok := Token{AccessToken: token, ExpiresOn: now.Add(time.Hour)}
		err := App{HomeTenant: homeID}.vet(&tok, claims, "", homeID, []string{"User.Read"}, now)
		if err == nil && (tok.ExpiresOn.After(now.Add(time.Hour)) || !tok.ExpiresOn.After(now)) {
			t.Fatalf("accepted with expiry %s", tok.ExpiresOn)
		}
		if err != nil && failure.KindOf(err) == failure.Unexpected {
			t.Fatalf("refused without a kind: %v", err)
		}
	})
}
