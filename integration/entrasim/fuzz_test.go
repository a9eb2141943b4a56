package entrasim

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fuzzSim is a simulator whose handler the fuzz targets call in-process.
func fuzzSim(f *testing.F) *Sim {
	return newSim(f, Options{Logf: func(string, ...any) {}})
}

// FuzzTokenEndpoint feeds arbitrary forms to the token and device code endpoints: they
// must never panic, and must always answer Entra-shaped JSON.
func FuzzTokenEndpoint(f *testing.F) {
	s := fuzzSim(f)
	rt := signIn(f, s, PublicClientID, HomeTenantID, PartnerCenterScope).RefreshToken
	_, challenge := pkce()
	code := authorize(f, s, HomeTenantID, authCodeParams(PublicClientID, "http://localhost:1", challenge, GraphScope)).Query().Get("code")

	seeds := []struct {
		tenant, contentType, body, basic string
		device                           bool
	}{
		{HomeTenantID, "application/x-www-form-urlencoded", refreshForm(PublicClientID, rt, PartnerCenterScope).Encode(), "", false},
		{CustomerTenantDomain, "application/x-www-form-urlencoded", refreshForm(PublicClientID, rt, "User.Read a/b c//d /x").Encode(), "", false},
		{"common", "application/x-www-form-urlencoded", "grant_type=authorization_code&client_id=" + PublicClientID + "&code=" + code + "&redirect_uri=http://localhost:1&code_verifier=x", "", false},
		{HomeTenantID, "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=" + url.QueryEscape(GraphScope), ConfidentialClientID + ":" + ClientSecret, false},
		{HomeTenantID, "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=" + CertClientID + "&client_assertion_type=" + url.QueryEscape(clientAssertionType) + "&client_assertion=eyJhbGciOiJQUzI1NiIsIng1dCNTMjU2IjoiQUFBQSJ9.e30.sig", "", false},
		{HomeTenantID, "application/x-www-form-urlencoded", "grant_type=device_code&client_id=" + PublicClientID + "&device_code=DAQABAAEAAAD", "", false},
		{HomeTenantID, "application/x-www-form-urlencoded", "client_id=" + PublicClientID + "&scope=openid", "", true},
		{"organizations", "application/json", `{"grant_type":"refresh_token"}`, "", false},
		{HomeTenantID, "application/x-www-form-urlencoded", "%zz=1&grant_type=%", "", false},
		{"", "", "", ":", true},
		{"%2F..%2F", "multipart/form-data; boundary=x", "--x\r\n", "a%zz:b", false},
	}
	for _, sd := range seeds {
		f.Add(sd.tenant, sd.contentType, []byte(sd.body), sd.basic, sd.device)
	}

	f.Fuzz(func(t *testing.T, tenant, contentType string, body []byte, basic string, device bool) {
		endpoint := "token"
		if device {
			endpoint = "devicecode"
		}
		req, err := http.NewRequest(http.MethodPost, s.URL()+"/"+url.PathEscape(tenant)+"/oauth2/v2.0/"+endpoint, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", contentType)
		if user, pass, ok := strings.Cut(basic, ":"); ok {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK:
			var ok struct {
				AccessToken string `json:"access_token"`
				DeviceCode  string `json:"device_code"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ok); err != nil || ok.AccessToken == "" && ok.DeviceCode == "" {
				t.Fatalf("200 without a token: %s", rec.Body)
			}
			if ok.AccessToken != "" {
				if _, err := s.ValidateAccessToken(ok.AccessToken); err != nil {
					t.Fatalf("issued an invalid token: %v", err)
				}
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			var e entraError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || len(e.ErrorCodes) != 1 ||
				!strings.HasPrefix(e.ErrorDescription, "AADSTS") || e.TraceID == "" {
				t.Fatalf("malformed error %d: %s", rec.Code, rec.Body)
			}
			if (rec.Code == http.StatusUnauthorized) != (e.Error == "invalid_client") {
				t.Fatalf("status %d for %s", rec.Code, e.Error)
			}
		case http.StatusNotFound:
			// A tenant segment with a slash leaves the endpoint paths.
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzAuthorizeEndpoint checks that no request makes the authorize endpoint panic or
// send a code or error anywhere but an allowed redirect URI.
func FuzzAuthorizeEndpoint(f *testing.F) {
	s := fuzzSim(f)
	_, challenge := pkce()
	for _, q := range []url.Values{
		authCodeParams(PublicClientID, "http://localhost:8400", challenge, GraphScope),
		withParam(authCodeParams(PublicClientID, "http://127.0.0.1:1/cb?x=1", challenge, GraphScope), "response_mode", "form_post"),
		withParam(authCodeParams("11111111-2222-4333-8444-555555555555", "http://localhost:1", "", GraphScope), "response_mode", "fragment"),
		withParam(authCodeParams(PublicClientID, "https://evil.example/", challenge), "response_type", "token"),
		withParam(authCodeParams(PublicClientID, "http://localhost@evil.example/", challenge), "code_challenge_method", "plain"),
	} {
		f.Add(HomeTenantID, q.Encode(), false)
		f.Add("organizations", q.Encode(), true)
	}
	f.Add("common", "%zz", true)

	f.Fuzz(func(t *testing.T, tenant, query string, post bool) {
		target := s.URL() + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/authorize"
		var req *http.Request
		var err error
		if post {
			req, err = http.NewRequest(http.MethodPost, target, strings.NewReader(query))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req, err = http.NewRequest(http.MethodGet, target+"?"+query, nil)
		}
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusFound:
			loc := rec.Header().Get("Location")
			i := strings.IndexAny(loc, "?#")
			if i < 0 {
				t.Fatalf("redirect without parameters: %s", loc)
			}
			// Without registered URIs only loopback redirects are allowed; the base must
			// be the redirect URI the request named.
			if !isLoopbackRedirect(loc[:i]) {
				t.Fatalf("redirect to %s", loc)
			}
		case http.StatusOK:
			if !formActionRe.Match(rec.Body.Bytes()) {
				t.Fatalf("200 without a form: %s", rec.Body)
			}
			action := formActionRe.FindSubmatch(rec.Body.Bytes())[1]
			if !isLoopbackRedirect(html.UnescapeString(string(action))) {
				t.Fatalf("form posts to %s", action)
			}
		case http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzParseScopes checks the scope rules on any input: one resource per token, never
// offline_access in the answer.
func FuzzParseScopes(f *testing.F) {
	for _, seed := range []string{
		PartnerCenterScope + " openid offline_access profile",
		GraphScope + " " + AzureDevOpsScope,
		"User.Read https://graph.microsoft.com/Mail.Read 00000003-0000-0000-c000-000000000000/Files.Read",
		"https://storage.azure.com//.default OFFLINE_ACCESS Email",
		"/ // /x x/ .default",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q := parseScopes(raw)
		for _, sc := range strings.Fields(q.responseScope()) {
			if strings.EqualFold(sc, "offline_access") {
				t.Fatalf("response scope lists offline_access: %q", q.responseScope())
			}
		}
		for _, sc := range q.resScopes {
			if res, _ := splitScope(sc); !sameResource(res, q.resource) {
				t.Fatalf("scope %q of another resource than %q", sc, q.resource)
			}
		}
		if q.audience() == "" {
			t.Fatal("empty audience")
		}
		wantOffline := false
		for _, sc := range strings.Fields(raw) {
			wantOffline = wantOffline || strings.EqualFold(sc, "offline_access")
		}
		if wantOffline != q.offline {
			t.Fatalf("offline_access detected %v in %q", q.offline, raw)
		}
	})
}
