package entrasim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func getAuthorize(t *testing.T, s *Sim, tenant string, params url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect(s).Get(s.URL() + "/" + tenant + "/oauth2/v2.0/authorize?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestAuthorizeErrors(t *testing.T) {
	s := newSim(t, Options{})
	const fixedClient = "0f1e2d3c-0000-4000-8000-00000000a005"
	s.AddClient(Client{ID: fixedClient, Public: true, RedirectURIs: []string{"https://app.example/cb"}})
	_, challenge := pkce()
	base := authCodeParams(PublicClientID, "http://localhost:8400", challenge, GraphScope)

	// Errors Entra shows in the browser, because it cannot trust the redirect URI.
	for _, tc := range []struct {
		name, tenant string
		params       url.Values
		code         string
	}{
		{"unknown tenant", "nowhere.example", base, "AADSTS90002"},
		{"unknown client, foreign redirect", HomeTenantID, withParam(withParam(base, "client_id", "11111111-2222-4333-8444-555555555555"), "redirect_uri", "https://evil.example/"), "AADSTS700016"},
		{"redirect not registered", HomeTenantID, withParam(withParam(base, "client_id", fixedClient), "redirect_uri", "http://localhost:8400"), "AADSTS50011"},
		{"https loopback is not a native redirect", HomeTenantID, withParam(base, "redirect_uri", "https://localhost:8400"), "AADSTS50011"},
		{"tenant without access", OtherTenantID, base, "AADSTS50020"},
		{"missing client_id", HomeTenantID, withParam(base, "client_id", ""), "AADSTS900144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getAuthorize(t, s, tc.tenant, tc.params)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.code+":") {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
		})
	}

	// Errors sent back to a valid redirect URI, with the state.
	for _, tc := range []struct {
		name   string
		params url.Values
		err    string
		code   string
	}{
		{"unknown client, loopback redirect", withParam(base, "client_id", "11111111-2222-4333-8444-555555555555"), "unauthorized_client", "AADSTS700016"},
		{"implicit grant", withParam(base, "response_type", "token"), "unsupported_response_type", "AADSTS700054"},
		{"no scope", withParam(base, "scope", ""), "invalid_request", "AADSTS900144"},
		{"short challenge", withParam(base, "code_challenge", "abc"), "invalid_request", "AADSTS501491"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getAuthorize(t, s, HomeTenantID, tc.params)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			q := loc.Query()
			if q.Get("error") != tc.err || !strings.HasPrefix(q.Get("error_description"), tc.code+": ") ||
				!strings.Contains(q.Get("error_description"), "\r\nTrace ID: ") || q.Get("state") != "state-123" || q.Get("code") != "" {
				t.Errorf("redirect %s", loc)
			}
		})
	}

	// A registered redirect URI works for its client.
	resp, _ := getAuthorize(t, s, HomeTenantID, withParam(withParam(base, "client_id", fixedClient), "redirect_uri", "https://app.example/cb"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example/cb?") {
		t.Errorf("registered redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAuthorizeResponseModes(t *testing.T) {
	s := newSim(t, Options{})
	_, challenge := pkce()
	params := authCodeParams(PublicClientID, "http://127.0.0.1:8400/callback?x=1", challenge, GraphScope)

	resp, _ := getAuthorize(t, s, CustomerTenantDomain, params)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/callback" || loc.Query().Get("x") != "1" || loc.Query().Get("code") == "" {
		t.Fatalf("query mode: %d %s", resp.StatusCode, loc)
	}

	resp, _ = getAuthorize(t, s, HomeTenantID, withParam(params, "response_mode", "fragment"))
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "#code=") {
		t.Errorf("fragment mode: %s", loc)
	}

	// form_post also arrives by POST, with the parameters in the body.
	post := withParam(params, "response_mode", "form_post")
	post.Set("state", `"<&>"`)
	r, err := noRedirect(s).PostForm(s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/authorize", post)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !formActionRe.Match(page) || strings.Contains(string(page), `"<&>"`) {
		t.Fatalf("form_post page %d: %s", r.StatusCode, page)
	}

	// Browse submits the form to the loopback listener like a browser.
	var got url.Values
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = r.PostForm
		_, _ = io.WriteString(w, "done")
	}))
	defer listener.Close()
	post.Set("redirect_uri", listener.URL+"/cb")
	status, body, err := s.Browse(testCtx(t), s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/authorize?"+post.Encode())
	if err != nil || status != 200 || string(body) != "done" {
		t.Fatalf("browse: %d %q %v", status, body, err)
	}
	rec, _ := s.LastAuthorize()
	if got.Get("state") != `"<&>"` || got.Get("code") != rec.Code || got.Get("session_state") == "" {
		t.Errorf("listener got %v", got)
	}

	// Browse reports an error page as an error.
	if _, _, err := s.Browse(testCtx(t), s.URL()+"/nowhere.example/oauth2/v2.0/authorize?"+params.Encode()); err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Errorf("browse error page: %v", err)
	}
}

func TestCustomerTenantSignIn(t *testing.T) {
	s := newSim(t, Options{})
	tb := signIn(t, s, PublicClientID, CustomerTenantDomain, PartnerCenterScope)
	c, err := s.ValidateAccessToken(tb.AccessToken)
	if err != nil || c.TenantID != CustomerTenantID {
		t.Fatalf("claims %+v: %v", c, err)
	}
	// A tenant added later works the same.
	const added = "0f1e2d3c-0000-4000-8000-00000000add1"
	resp, body := postToken(t, s, added, refreshForm(PublicClientID, tb.RefreshToken, GraphScope))
	wantError(t, resp, body, 400, "invalid_request", 90002)
	s.AddTenant(added, "adatum.onmicrosoft.com")
	resp, body = postToken(t, s, "adatum.onmicrosoft.com", refreshForm(PublicClientID, tb.RefreshToken, GraphScope))
	if c, err := s.ValidateAccessToken(wantToken(t, resp, body).AccessToken); err != nil || c.TenantID != added {
		t.Errorf("added tenant: %+v %v", c, err)
	}
	s.AddTenantNoAccess(added, "adatum.onmicrosoft.com")
	resp, body = postToken(t, s, added, refreshForm(PublicClientID, tb.RefreshToken, GraphScope))
	wantError(t, resp, body, 400, "invalid_grant", 50020)
}

func TestDeviceLoginPage(t *testing.T) {
	s := newSim(t, Options{})
	resp, err := s.HTTPClient().Get(s.URL() + "/devicelogin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `name="otc"`) {
		t.Errorf("page %d %s", resp.StatusCode, page)
	}
	resp, err = s.HTTPClient().PostForm(s.URL()+"/devicelogin", url.Values{"otc": {"NOPE12345"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown code: %d", resp.StatusCode)
	}
	if err := s.ApproveDeviceCode("NOPE12345"); err == nil {
		t.Error("ApproveDeviceCode accepts an unknown code")
	}
}

func TestDeviceCodeEndpointErrors(t *testing.T) {
	s := newSim(t, Options{})
	post := func(tenant string, form url.Values) (*http.Response, []byte) {
		resp, err := s.HTTPClient().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/devicecode", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := post("nowhere.example", url.Values{"client_id": {PublicClientID}, "scope": {GraphScope}})
	wantError(t, resp, body, 400, "invalid_request", 90002)
	resp, body = post(HomeTenantID, url.Values{"client_id": {"11111111-2222-4333-8444-555555555555"}, "scope": {GraphScope}})
	wantError(t, resp, body, 400, "unauthorized_client", 700016)
	resp, body = post(HomeTenantID, url.Values{"client_id": {PublicClientID}})
	wantError(t, resp, body, 400, "invalid_request", 900144)

	// Sign-in to a tenant without access fails once the user has approved.
	resp, body = post(OtherTenantID, url.Values{"client_id": {PublicClientID}, "scope": {GraphScope}})
	var dc deviceCodeResponse
	if err := json.Unmarshal(body, &dc); err != nil || resp.StatusCode != 200 || dc.ExpiresIn != 900 || dc.Interval != 5 {
		t.Fatalf("device code %d %s", resp.StatusCode, body)
	}
	form := url.Values{"grant_type": {"device_code"}, "client_id": {PublicClientID}, "device_code": {dc.DeviceCode}}
	resp, body = postToken(t, s, OtherTenantID, form)
	wantError(t, resp, body, 400, "authorization_pending", 70016)
	resp, body = postToken(t, s, OtherTenantID, form)
	wantError(t, resp, body, 400, "invalid_grant", 50020)
}
