package browser

import (
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

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
	chromiumPath(t) // skip (or fail in CI) before building anything
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
			switch {
			case tc.client != entrasim.ConfidentialClientID:
			case tc.mode == "query":
				e.Vars["PCTOKEN_CLIENT_SECRET"] = entrasim.ClientSecret
			default:
				stdin, args = entrasim.ClientSecret+"\n", append(args, "--client-secret-stdin")
			}
			h := startHelper(t, e, stdin, args...)
			res := h.wait(t)
			wantExit(t, res, 0)

			// The browser runs with none of the helper's secrets in its environment.
			if env := c.Env(); strings.Contains(env, entrasim.ClientSecret) || strings.Contains(env, harness.Passphrase) {
				t.Error("the browser's environment holds the client secret or the file store passphrase")
			}

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
				// The redirect that carried the (redeemed, PKCE-bound) code is a hop in
				// the browser's own history database; that is the browser's doing, and
				// worth knowing.
				if strings.Contains(string(b), rec.Code) {
					t.Logf("the browser profile's %s holds the spent authorization code", f[len(c.profile):])
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
	// The page's style applied (the policy allows it by hash) and every text meets
	// WCAG AA contrast (4.5:1).
	styled := false
	for _, c := range s.Colours {
		ratio, err := contrast(c[1], c[2])
		if err != nil {
			t.Errorf("%s: %v", c[0], err)
			continue
		}
		if ratio < 4.5 {
			t.Errorf("%s: %s on %s has contrast %.1f:1, below 4.5:1", c[0], c[1], c[2], ratio)
		}
		if c[0] == "H1" && c[1] != "rgb(0, 0, 0)" {
			styled = true
		}
	}
	if !styled {
		t.Errorf("the page's style did not apply (blocked by its policy?): %v", s.Colours)
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

// The identity provider sends an error to the redirect URI: the person declined
// consent (access_denied, AADSTS65004), or the app is unknown (AADSTS700016); or the
// code comes back but its redemption fails (a wrong client secret, AADSTS7000215). The
// result page says what happened and what to run, as the terminal does, and nothing
// is saved.
func TestSignInError(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	const wrongSecret = "wrong-secret-typed-at-consent"
	for _, tc := range []struct {
		name, mode, client, secret string
		exit                       int
		aadsts, remedy             string
	}{
		{"declined/query", "query", entrasim.PublicClientID, "", 3, "AADSTS65004", "pctoken-helper consent --profile default"},
		{"declined/form_post", "form_post", entrasim.PublicClientID, "", 3, "AADSTS65004", "pctoken-helper consent --profile default"},
		{"unknown app/query", "query", "0f1e2d3c-0000-4000-8000-0000000bad01", "", 5, "AADSTS700016", "check --client-id"},
		{"wrong secret/form_post", "form_post", entrasim.ConfidentialClientID, wrongSecret, 5, "AADSTS7000215",
			"set PCTOKEN_CLIENT_SECRET to a valid secret, or store one: pctoken-helper consent --profile default --client-secret-stdin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := harness.New(t)
			e.Sim.DeclineConsent(tc.aadsts == "AADSTS65004")
			e.Vars["PCTOKEN_CLIENT_ID"] = tc.client
			c := newChromium(t, e, modeOpen, tc.mode)
			ports, _ := portRange(t)
			args := []string{"consent", "--port-range", ports, "--timeout", "60s"}
			stdin := ""
			if tc.secret != "" {
				stdin, args = tc.secret+"\n", append(args, "--client-secret-stdin")
			}
			res := startHelper(t, e, stdin, args...).wait(t)
			wantExit(t, res, tc.exit)
			if !strings.Contains(res.Stderr, tc.aadsts) || !strings.Contains(res.Stderr, "hint: "+tc.remedy) {
				t.Fatalf("stderr:\n%s", res.Stderr)
			}
			if storedRefreshToken(t, e, "default") != "" || profileSaved(e, "default") {
				t.Fatal("a declined consent saved something")
			}

			tab := c.firstTab()
			s := c.waitTitle(tab, titleFailed)
			checkAccessible(t, s)
			checkNothingLeft(t, s, map[string]string{"client secret": tc.secret})
			if !strings.HasSuffix(s.URL, "/done") {
				t.Errorf("the address bar shows %s", s.URL)
			}
			for _, want := range []string{"Sign-in failed", tc.aadsts, "What to do", tc.remedy} {
				if !strings.Contains(s.Text, want) {
					t.Errorf("the error page lacks %q:\n%s", want, s.Text)
				}
			}
			if strings.Contains(s.Text, "Trace ID") {
				t.Errorf("the error page shows Entra's trace lines:\n%s", s.Text)
			}
			if tc.name == "declined/query" {
				c.screenshot(tab, screenshotDir(t), "consent-error.png")
			}
		})
	}
}

// Other tabs reach the listener before the sign-in does: the browser's own favicon
// request, a wrong path, a response with the wrong state, the result page too early.
// Each gets a page saying it was ignored, and the sign-in that follows completes.
func TestStrayTabsFirst(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	e := harness.New(t)
	c := newChromium(t, e, modeHold, "")
	ports, first := portRange(t)
	h := startHelper(t, e, "", "consent", "--port-range", ports, "--timeout", "60s")
	authURL := c.URL()
	base := "http://localhost:" + itoa(first)
	for _, stray := range []struct{ path, title string }{
		{"/favicon.ico", "Not found - pctoken-helper"},
		{"/callback?code=stray-code&state=stray", "Not found - pctoken-helper"},
		{"/?code=stray-code&state=not-the-state", "Request refused - pctoken-helper"},
		{"/?error=access_denied&state=not-the-state", "Request refused - pctoken-helper"},
		{"/done", "No sign-in yet - pctoken-helper"},
	} {
		tab := c.newTab()
		if err := c.run(tab, chromedp.Navigate(base+stray.path)); err != nil {
			t.Fatalf("open %s: %v", stray.path, err)
		}
		if s := c.look(tab); s.Title != stray.title {
			t.Errorf("%s shows %q, want %q:\n%s", stray.path, s.Title, stray.title, s.Text)
		}
		select {
		case <-h.done:
			t.Fatalf("a stray tab (%s) ended consent: %s", stray.path, h.stderr.String())
		default:
		}
	}
	tab := c.firstTab()
	if err := c.run(tab, chromedp.Navigate(authURL)); err != nil {
		t.Fatal(err)
	}
	c.waitTitle(tab, titleSignedIn)
	wantExit(t, h.wait(t), 0)
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 || st.Errors[54005] != 0 {
		t.Fatalf("grants %v, errors %v", st.Grants, st.Errors)
	}
	if rt := storedRefreshToken(t, e, "default"); !e.Sim.RefreshTokenValid(rt) {
		t.Fatal("no valid refresh token stored")
	}
}

// The redirect URL is loaded again, in a second tab, while the code is being redeemed,
// and the result page is reloaded: the code is redeemed once, every load shows the
// result, and a reload after the helper has exited changes nothing.
func TestReloadAfterSignIn(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	e := harness.New(t)
	e.Sim.SetLatency(2 * time.Second) // the redemption takes a while, as on a slow network
	c := newChromium(t, e, modeHold, "")
	ports, first := portRange(t)
	h := startHelper(t, e, "", "consent", "--port-range", ports, "--timeout", "60s")
	authURL := c.URL()
	tab := c.firstTab()

	// Watch the tab's requests for the redirect to the listener, code and all.
	base := "http://localhost:" + itoa(first) + "/?"
	redirects := make(chan string, 4)
	chromedp.ListenTarget(tab, func(ev any) {
		if req, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(req.Request.URL, base) {
			select {
			case redirects <- req.Request.URL:
			default:
			}
		}
	})
	if err := c.run(tab, network.Enable()); err != nil {
		t.Fatal(err)
	}
	navigated := make(chan error, 1)
	go func() { navigated <- c.run(tab, chromedp.Navigate(authURL)) }()
	var redirect string
	select {
	case redirect = <-redirects:
	case <-time.After(30 * time.Second):
		t.Fatal("the browser never reached the listener")
	}
	if !strings.Contains(redirect, "code=") {
		t.Fatalf("redirect %s has no code", redirect)
	}

	// The same response again, in another tab, while the first waits for the result.
	// Chromium queues a second load of /done behind the first (its cache lock), so
	// it either shows the result or, when the helper has already closed its listener,
	// the browser's own "cannot connect" page; neither redeems the code again.
	second := c.newTab()
	if err := c.run(second, chromedp.Navigate(redirect)); err != nil {
		if !strings.Contains(err.Error(), "ERR_CONNECTION_REFUSED") {
			t.Fatal(err)
		}
		t.Logf("the second load found the listener closed: %v", err)
	} else {
		s2 := c.waitTitle(second, titleSignedIn)
		checkNothingLeft(t, s2, map[string]string{"code": redirect[strings.Index(redirect, "code="):]})
		t.Log("the second load showed the result page")
	}
	if err := <-navigated; err != nil {
		t.Fatal(err)
	}
	s1 := c.waitTitle(tab, titleSignedIn)
	rec, _ := e.Sim.LastAuthorize()
	checkNothingLeft(t, s1, map[string]string{"code": rec.Code})
	wantExit(t, h.wait(t), 0)
	rt := storedRefreshToken(t, e, "default")
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 || st.Errors[54005] != 0 {
		t.Fatalf("the code was redeemed more than once: grants %v, errors %v", st.Grants, st.Errors)
	}

	// The helper is gone: a reload finds nobody listening, which harms nothing.
	_ = c.run(tab, chromedp.Reload())
	if got := storedRefreshToken(t, e, "default"); got != rt || !e.Sim.RefreshTokenValid(got) {
		t.Fatal("the stored refresh token changed after the helper exited")
	}
	if st := e.Sim.Stats(); st.Grants["authorization_code"] != 1 {
		t.Fatalf("grants %v after the reload", st.Grants)
	}
}

// The person closes the browser before signing in: the helper waits until --timeout,
// then ends with exit 3 and says so, and saves nothing.
func TestBrowserClosedBeforeSignIn(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	e := harness.New(t)
	c := newChromium(t, e, modeHold, "")
	ports, first := portRange(t)
	h := startHelper(t, e, "", "consent", "--port-range", ports, "--timeout", "4s")
	c.URL()
	c.firstTab()
	c.closeBrowser()
	res := h.wait(t)
	wantExit(t, res, 3)
	if !strings.Contains(res.Stderr, "consent was not completed within 4s (--timeout)") ||
		!strings.Contains(res.Stderr, "hint: pctoken-helper consent --profile default") {
		t.Fatalf("stderr:\n%s", res.Stderr)
	}
	if h.took > 30*time.Second {
		t.Fatalf("the helper took %s with --timeout 4s", h.took)
	}
	if profileSaved(e, "default") || storedRefreshToken(t, e, "default") != "" {
		t.Fatal("an abandoned consent saved something")
	}
	if !portFree(first) {
		t.Fatal("the listener's port is still taken after the helper exited")
	}
}

// With scripts off, the sign-in still completes and its page reads the same: the
// query redirect needs no script, and Entra's form_post page shows a Submit button
// (its noscript part) that the person presses; the helper's pages have no script.
func TestScriptsOff(t *testing.T) {
	chromiumPath(t) // skip (or fail in CI) before building anything
	for _, mode := range []string{"query", "form_post"} {
		t.Run(mode, func(t *testing.T) {
			e := harness.New(t)
			c := newChromium(t, e, modeHold, mode)
			ports, _ := portRange(t)
			h := startHelper(t, e, "", "consent", "--port-range", ports, "--timeout", "60s")
			authURL := c.URL()
			tab := c.firstTab()
			if err := c.run(tab, emulation.SetScriptExecutionDisabled(true), chromedp.Navigate(authURL)); err != nil {
				t.Fatal(err)
			}
			if mode == "form_post" {
				// The script did not post the form: the person presses Submit.
				if err := c.run(tab, chromedp.Click(`input[type=submit]`, chromedp.ByQuery)); err != nil {
					t.Fatalf("press Submit on the form_post page: %v", err)
				}
			}
			s := c.waitTitle(tab, titleSignedIn)
			checkAccessible(t, s)
			if !strings.Contains(s.Text, "You are signed in as "+entrasim.UserUPN) {
				t.Errorf("success page with scripts off:\n%s", s.Text)
			}
			wantExit(t, h.wait(t), 0)
			if rec, _ := e.Sim.LastAuthorize(); rec.ResponseMode != mode {
				t.Fatalf("response mode %q, want %q", rec.ResponseMode, mode)
			}
		})
	}
}
