package reliability

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"

	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
)

// The token responses and error bodies below are what the identity provider sends:
// input from the network, parsed by MSAL and by entra. The other decoders of outside
// input have their fuzz tests in their packages (protocol: --request lines,
// KUBERNETES_EXEC_INFO, git-credential text; profile: saved profiles; cache: cache
// entries; idphttp: Retry-After and stored metadata; securestore: the file store and
// stdin lines; consent: redirect requests and port ranges).

const (
	fuzzHost     = "login.fuzz.test"
	fuzzTenant   = "0f1e2d3c-0000-4000-8000-00000000f022"
	fuzzClientID = "0f1e2d3c-0000-4000-8000-00000000f0cc"
	fuzzUID      = "0f1e2d3c-0000-4000-8000-00000000f0aa"
	// fuzzRT is the refresh token redeemed in FuzzTokenResponse.
	fuzzRT = "0.AAAAfuzz-refresh-token-sent-to-the-identity-provider"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// fakeJWT is a token-shaped string with the given claims and no valid signature;
// MSAL does not verify id tokens, and the helper reads access tokens unverified.
func fakeJWT(claims map[string]any) string {
	return b64(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".c2ln"
}

func goodTokenResponse() []byte {
	now := time.Now().Unix()
	b, _ := json.Marshal(map[string]any{
		"token_type":     "Bearer",
		"scope":          "https://graph.microsoft.com/.default",
		"expires_in":     3599,
		"ext_expires_in": 3599,
		"access_token":   fakeJWT(map[string]any{"tid": fuzzTenant, "amr": []string{"pwd", "mfa"}, "exp": now + 3600}),
		"refresh_token":  "0.AAAArotated-refresh-token",
		"id_token": fakeJWT(map[string]any{"aud": fuzzClientID, "iss": "https://" + fuzzHost + "/" + fuzzTenant + "/v2.0",
			"iat": now, "nbf": now, "exp": now + 3600, "oid": fuzzUID, "tid": fuzzTenant, "preferred_username": "admin@contoso.example", "ver": "2.0"}),
		"client_info": b64(map[string]string{"uid": fuzzUID, "utid": fuzzTenant}),
	})
	return b
}

var errorBodySeeds = []string{
	`{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: x","error_codes":[700082],"timestamp":"2024-01-01 00:00:00Z","trace_id":"x","correlation_id":"y","suberror":"bad_token"}`,
	`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`,
	`{"error":"temporarily_unavailable","error_description":"AADSTS90055: throttled","error_codes":[90055]}`,
	`{"error":"interaction_required","error_codes":[50076],"suberror":"basic_action"}`,
	`{"error":"invalid_request","error_codes":[]}`,
	`{"error":5,"error_codes":"x"}`,
	`{"error_codes":[-1,99999999999999999999]}`,
	`<html><body>Service Unavailable</body></html>`,
	``,
	`null`,
	`[]`,
	"{\"error\":\"invalid_grant\",\"error_description\":\"\\u001b[2Jline1\\rline2\\nline3\"}",
}

// FuzzClassify: entra.Classify turns any answer of the identity provider (status and
// body) into a classified error: no panic, a kind, a one-line message without control
// characters (it is shown on a terminal), and the rules
// the retry and exit codes rely on (5xx and 429 transient, invalid_grant consent,
// invalid_client configuration) unless a known AADSTS code says otherwise.
func FuzzClassify(f *testing.F) {
	for _, b := range errorBodySeeds {
		for _, status := range []int{400, 401, 429, 500, 503} {
			f.Add(status, []byte(b))
		}
	}
	f.Add(200, goodTokenResponse())
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		req, _ := http.NewRequest(http.MethodPost, "https://"+fuzzHost+"/"+fuzzTenant+"/oauth2/v2.0/token", nil)
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
		err := entra.Classify(msalerrors.CallErr{Req: req, Resp: resp, Err: errors.New("http call failed")})
		var e *failure.Error
		if !errors.As(err, &e) {
			t.Fatalf("Classify returned %T %v, not an *failure.Error", err, err)
		}
		if e.Kind < failure.Unexpected || e.Kind > failure.Configuration {
			t.Fatalf("kind %d out of range", e.Kind)
		}
		if e.Message == "" || strings.IndexFunc(e.Message, unicode.IsControl) >= 0 {
			t.Fatalf("message %q is empty or holds control characters", e.Message)
		}
		var parsed struct {
			Error      any   `json:"error"`
			ErrorCodes []any `json:"error_codes"`
		}
		if json.Unmarshal(body, &parsed) != nil || len(parsed.ErrorCodes) > 0 {
			return // a code may override the status: the aadsts table decides
		}
		oauth, _ := parsed.Error.(string)
		switch {
		case status == 429 || status >= 500:
			if e.Kind != failure.Transient {
				t.Fatalf("status %d (error %q) classified %v, want transient", status, oauth, e.Kind)
			}
		case oauth == "invalid_grant":
			if e.Kind != failure.ConsentNeeded {
				t.Fatalf("invalid_grant with status %d classified %v", status, e.Kind)
			}
		case oauth == "invalid_client":
			if e.Kind != failure.Configuration {
				t.Fatalf("invalid_client with status %d classified %v", status, e.Kind)
			}
		}
	})
}

// fuzzIdP answers MSAL as an identity provider would, except that the token endpoint
// answers status and body as the fuzzer chooses.
type fuzzIdP struct {
	status int
	body   []byte
	tokens int
}

func (p *fuzzIdP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	answer := func(status int, body []byte) (*http.Response, error) {
		return &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
			Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	base := "https://" + fuzzHost + "/" + fuzzTenant
	switch {
	case req.URL.Host != fuzzHost:
		return nil, errors.New("unexpected host " + req.URL.Host)
	case strings.HasSuffix(req.URL.Path, "/v2.0/.well-known/openid-configuration"):
		doc, _ := json.Marshal(map[string]any{
			"issuer":                   base + "/v2.0",
			"authorization_endpoint":   base + "/oauth2/v2.0/authorize",
			"token_endpoint":           base + "/oauth2/v2.0/token",
			"jwks_uri":                 "https://" + fuzzHost + "/" + fuzzTenant + "/discovery/v2.0/keys",
			"response_types_supported": []string{"code", "id_token"},
			"subject_types_supported":  []string{"pairwise"},
		})
		return answer(200, doc)
	case strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token"):
		p.tokens++
		return answer(p.status, p.body)
	}
	return answer(404, []byte(`{"error":"not_found"}`))
}

// FuzzTokenResponse redeems a refresh token through entra and MSAL against an identity
// provider whose token endpoint answers anything at all. The redemption ends without a
// panic, within its deadline, in either a token with an access token (and a rotated
// refresh token, never the one sent) or a classified error whose message does not
// carry the refresh token that was sent.
func FuzzTokenResponse(f *testing.F) {
	f.Add(200, goodTokenResponse())
	var noRT map[string]any
	json.Unmarshal(goodTokenResponse(), &noRT)
	delete(noRT, "refresh_token")
	b, _ := json.Marshal(noRT)
	f.Add(200, b)
	for _, mutate := range []func(m map[string]any){
		func(m map[string]any) { m["expires_in"] = -5 },
		func(m map[string]any) { m["expires_in"] = "3599" },
		func(m map[string]any) { m["expires_in"] = 1e300 },
		func(m map[string]any) { m["client_info"] = "%%%" },
		func(m map[string]any) { m["client_info"] = b64(map[string]string{"uid": "", "utid": ""}) },
		func(m map[string]any) { m["id_token"] = "a.b" },
		func(m map[string]any) { m["id_token"] = "x.eyJ.y" },
		func(m map[string]any) { m["scope"] = "" },
		func(m map[string]any) { m["access_token"] = "" },
		func(m map[string]any) { m["refresh_token"] = fuzzRT },
		func(m map[string]any) { m["token_type"] = "pop" },
	} {
		var m map[string]any
		json.Unmarshal(goodTokenResponse(), &m)
		mutate(m)
		b, _ := json.Marshal(m)
		f.Add(200, b)
	}
	for _, s := range errorBodySeeds {
		f.Add(400, []byte(s))
		f.Add(503, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 100 + (status%900+900)%900
		}
		idp := &fuzzIdP{status: status, body: body}
		app := entra.App{
			ClientID:      fuzzClientID,
			AuthorityHost: "https://" + fuzzHost,
			HomeTenant:    fuzzTenant,
			HTTPClient:    &http.Client{Transport: idp},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		acct := entra.Account{HomeAccountID: fuzzUID + "." + fuzzTenant, HomeTenantID: fuzzTenant}
		tok, err := app.Redeem(ctx, fuzzRT, acct, "", []string{"https://graph.microsoft.com/.default"})
		if ctx.Err() != nil {
			t.Fatal("the redemption ran into its deadline")
		}
		if err != nil {
			var e *failure.Error
			if !errors.As(err, &e) {
				t.Fatalf("unclassified error %T: %v", err, err)
			}
			if strings.Contains(e.Error(), fuzzRT) && !bytes.Contains(body, []byte(fuzzRT)) {
				t.Fatalf("the error carries the refresh token that was sent: %v", e)
			}
			return
		}
		if tok.AccessToken == "" {
			t.Fatal("success without an access token")
		}
		if tok.RefreshToken == fuzzRT {
			t.Fatal("the redeemed refresh token came back as the rotated one")
		}
		if idp.tokens == 0 {
			t.Fatal("a token without a token request")
		}
	})
}
