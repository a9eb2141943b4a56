package browser

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// Titles of the helper's pages.
const (
	titleSignedIn = "Signed in - pctoken-helper"
	titleFailed   = "Sign-in failed - pctoken-helper"
)

// A person signs in: the browser the helper started follows Entra's answer (a query
// redirect, or the form_post page whose script posts the form) to the loopback
// listener, which sends it on to /done; the refresh token is stored and shown
// nowhere in the browser.
func TestSignIn(t *testing.T) {
	for _, tc := range []struct {
		name, mode, client string
	}{
		{"query/public", "query", entrasim.PublicClientID},
		{"form_post/public", "form_post", entrasim.PublicClientID},
		{"query/confidential", "query", entrasim.ConfidentialClientID},
		{"form_post/confidential", "form_post", entrasim.ConfidentialClientID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := harness.New(t)
			c := newChromium(t, e, modeOpen, tc.mode)
			ports, first := portRange(t)
			e.Vars["PCTOKEN_CLIENT_ID"] = tc.client
			stdin, args := "", []string{"consent", "--port-range", ports, "--timeout", "60s"}
			if tc.client == entrasim.ConfidentialClientID {
				stdin, args = entrasim.ClientSecret+"\n", append(args, "--client-secret-stdin")
			}
			h := startHelper(t, e, stdin, args...)
			res := h.wait(t)
			wantExit(t, res, 0)

			rec, ok := e.Sim.LastAuthorize()
			if !ok || rec.ResponseMode != tc.mode || rec.ClientID != tc.client {
				t.Fatalf("authorize saw %+v, want response mode %s", rec, tc.mode)
			}
			rt := storedRefreshToken(t, e, "default")
			if rt == "" || !e.Sim.RefreshTokenValid(rt) {
				t.Fatal("no valid refresh token stored")
			}
			if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 {
				t.Fatalf("grants %v", st.Grants)
			}

			tab := c.firstTab()
			s := c.waitTitle(tab, titleSignedIn)
			if want := "http://localhost:" + itoa(first) + "/done"; s.URL != want {
				t.Errorf("the address bar shows %s, want %s", s.URL, want)
			}
			checkAccessible(t, s)
			if s.H1 != "Signed in" || !strings.Contains(s.Text, entrasim.UserUPN) || !strings.Contains(s.Text, "close this tab") {
				t.Errorf("success page: h1 %q, text:\n%s", s.H1, s.Text)
			}
			secrets := map[string]string{"refresh token": rt, "code": rec.Code, "client secret": entrasim.ClientSecret}
			checkNothingLeft(t, s, secrets)
			if tc.name == "query/public" {
				c.screenshot(tab, screenshotDir(t), "consent-success.png")
			}
			c.closeBrowser()
			for _, f := range c.profileFiles() {
				b, _ := os.ReadFile(f)
				if found := containsAny(string(b), map[string]string{"refresh token": rt, "client secret": entrasim.ClientSecret}); found != nil {
					t.Errorf("the browser profile's %s holds the %v", f, found)
				}
			}
		})
	}
}

// checkAccessible checks the page's language, title and one heading; the rest (no
// script, contrast) is fixed by the page's style and policy.
func checkAccessible(t *testing.T, s shown) {
	t.Helper()
	if s.Lang != "en" || !strings.HasSuffix(s.Title, " - pctoken-helper") || s.H1 == "" || strings.Contains(s.H1, "|") {
		t.Errorf("page lang %q, title %q, h1 %q", s.Lang, s.Title, s.H1)
	}
	if strings.Contains(strings.ToLower(s.HTML), "<script") {
		t.Error("the page has a script")
	}
}

// checkNothingLeft checks that neither the address bar, the tab's history nor the
// page shows a secret, and that the final URL carries no query at all.
func checkNothingLeft(t *testing.T, s shown, secrets map[string]string) {
	t.Helper()
	if u, err := url.Parse(s.URL); err != nil || u.RawQuery != "" || u.Fragment != "" {
		t.Errorf("the final URL %q has a query or fragment", s.URL)
	}
	for what, text := range map[string]string{"address bar": s.URL, "history": strings.Join(s.History, "\n"), "page": s.HTML} {
		if found := containsAny(text, secrets); found != nil {
			t.Errorf("the %s shows the %v", what, found)
		}
	}
	for _, h := range s.History {
		if u, err := url.Parse(h); err == nil && u.Query().Has("code") {
			t.Errorf("history entry %s carries a code", h)
		}
	}
}
