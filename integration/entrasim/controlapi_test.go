package entrasim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// control calls the control API and returns the status and body.
func control(t *testing.T, s *Sim, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+"/_sim/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestControlAPI(t *testing.T) {
	s := newSim(t, Options{ControlAPI: true})
	ok := func(method, path, body string) string {
		t.Helper()
		status, out := control(t, s, method, path, body)
		if status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, status, out)
		}
		return out
	}
	tb := signIn(t, s, PublicClientID, HomeTenantID, PartnerCenterScope)
	form := refreshForm(PublicClientID, tb.RefreshToken, PartnerCenterScope)

	ok("POST", "fail?n=1&status=503", "")
	resp, body := postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 503, "temporarily_unavailable", 90033)

	ok("POST", "throttle?n=1&retry_after=3", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 429, "temporarily_unavailable", 90055)
	if resp.Header.Get("Retry-After") != "3" {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}

	ok("POST", "lifetime?d=10m", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	fresh := wantToken(t, resp, body)
	if fresh.ExpiresIn != 600 {
		t.Errorf("expires_in %d", fresh.ExpiresIn)
	}

	var claims Claims
	if err := json.Unmarshal([]byte(ok("POST", "validate", fresh.AccessToken)), &claims); err != nil || claims.UPN != UserUPN {
		t.Errorf("validate: %+v %v", claims, err)
	}
	if status, _ := control(t, s, "POST", "validate", "not.a.token"); status != http.StatusUnauthorized {
		t.Errorf("validate garbage: %d", status)
	}
	if out := ok("POST", "refresh-token-valid", tb.RefreshToken); !strings.Contains(out, `"valid":true`) {
		t.Errorf("refresh-token-valid: %s", out)
	}

	ok("POST", "strict?on=1", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 400, "invalid_grant", 70000)
	ok("POST", "strict?on=0", "")

	ok("POST", "mfa", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 400, "invalid_grant", 50076)
	ok("POST", "mfa?on=0", "")
	ok("POST", "consent?on=true", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 400, "invalid_grant", 65001)
	ok("POST", "consent?on=off", "")

	ok("POST", "amr?values=pwd,rsa", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	if c, err := s.ValidateAccessToken(wantToken(t, resp, body).AccessToken); err != nil || strings.Join(c.AMR, ",") != "pwd,rsa" {
		t.Errorf("amr %v %v", c.AMR, err)
	}

	ok("POST", "latency?d=120ms", "")
	start := time.Now()
	resp, body = postToken(t, s, HomeTenantID, form)
	wantToken(t, resp, body)
	if time.Since(start) < 120*time.Millisecond {
		t.Error("latency not applied")
	}
	ok("POST", "latency?d=0", "")

	ok("POST", "hang?n=1", "")
	hc := &http.Client{Transport: s.HTTPClient().Transport, Timeout: 200 * time.Millisecond}
	if r, err := hc.PostForm(s.URL()+"/"+HomeTenantID+"/oauth2/v2.0/token", form); err == nil {
		r.Body.Close()
		t.Error("hang: got an answer")
	}

	ok("POST", "tenant?id=0f1e2d3c-0000-4000-8000-00000000add2&domain=litware.onmicrosoft.com&access=1", "")
	resp, body = postToken(t, s, "litware.onmicrosoft.com", form)
	wantToken(t, resp, body)

	ok("POST", "autoapprove?on=0", "")
	dcResp, err := s.HTTPClient().PostForm(s.URL()+"/organizations/oauth2/v2.0/devicecode", url.Values{"client_id": {PublicClientID}, "scope": {GraphScope + " offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	var dc deviceCodeResponse
	_ = json.NewDecoder(dcResp.Body).Decode(&dc)
	dcResp.Body.Close()
	var last DeviceCodeRecord
	if err := json.Unmarshal([]byte(ok("GET", "last-device-code", "")), &last); err != nil || last.UserCode != dc.UserCode {
		t.Errorf("last-device-code %+v %v", last, err)
	}
	dcForm := url.Values{"grant_type": {"device_code"}, "client_id": {PublicClientID}, "device_code": {dc.DeviceCode}}
	for range 2 {
		resp, body = postToken(t, s, "organizations", dcForm)
		wantError(t, resp, body, 400, "authorization_pending", 70016)
	}
	ok("POST", "approve?user_code="+dc.UserCode, "")
	resp, body = postToken(t, s, "organizations", dcForm)
	if wantToken(t, resp, body).RefreshToken == "" {
		t.Error("device code sign-in without refresh token")
	}

	var rec AuthorizeRecord
	if err := json.Unmarshal([]byte(ok("GET", "last-authorize", "")), &rec); err != nil || rec.ClientID != PublicClientID {
		t.Errorf("last-authorize %+v %v", rec, err)
	}

	var st Stats
	if err := json.Unmarshal([]byte(ok("GET", "stats", "")), &st); err != nil || st.Requests["token"] < 10 || st.Errors[90055] != 1 || st.RefreshTokensIssued < 5 {
		t.Errorf("stats %+v %v", st, err)
	}
	ok("POST", "revoke", "")
	resp, body = postToken(t, s, HomeTenantID, form)
	wantError(t, resp, body, 400, "invalid_grant", 50173)
	ok("POST", "expire", "")
	ok("POST", "reset-stats", "")
	if st := s.Stats(); len(st.Requests) != 0 || st.RefreshTokensIssued != 0 {
		t.Errorf("after reset %+v", st)
	}

	for _, bad := range []struct{ method, path string }{
		{"GET", "expire"},
		{"POST", "stats"},
		{"POST", "fail?n=x"},
		{"POST", "mfa?on=maybe"},
		{"POST", "latency?d=soon"},
		{"POST", "approve?user_code=NOPE"},
		{"POST", "tenant?id=not-a-guid"},
		{"POST", "nothing"},
	} {
		if status, out := control(t, s, bad.method, bad.path, ""); status < 400 || !strings.Contains(out, `"error"`) {
			t.Errorf("%s %s: %d %s", bad.method, bad.path, status, out)
		}
	}
}
