package managedidentity

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
)

const (
	testHost     = "127.0.0.1:40123"
	testPath     = "/pctoken-helper/default/home"
	testSecret   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testClientID = "0f1e2d3c-0000-4000-8000-00000000a001"
	testObjectID = "0f1e2d3c-0000-4000-8000-00000000ad01"
	testCustomer = "0f1e2d3c-0000-4000-8000-00000000fab1"
	testToken    = "eyJ.test-access-token.sig"
)

type recordingSource struct {
	calls atomic.Int32
	last  atomic.Value // Request
	err   error
}

func (s *recordingSource) Token(ctx context.Context, r Request) (Token, error) {
	s.calls.Add(1)
	s.last.Store(r)
	if s.err != nil {
		return Token{}, s.err
	}
	return Token{AccessToken: testToken, ExpiresOn: time.Unix(1900000000, 0)}, nil
}

func newTestHandler(t testing.TB, src Source, allow ...string) *Handler {
	t.Helper()
	h, err := NewHandler(testHost, nil, Endpoint{
		Path:     testPath,
		Secret:   testSecret,
		ClientID: testClientID,
		ObjectID: testObjectID,
		Aliases:  map[string]string{"fabrikam": testCustomer},
		Allow:    allow,
		Source:   src,
		Remedy:   func(error) string { return "pctoken-helper consent --profile default" },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// rawRequest parses a request as the server would receive it.
func rawRequest(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return r
}

func good(query string, extra ...string) string {
	return "GET " + testPath + "?" + query + " HTTP/1.1\r\nHost: " + testHost + "\r\n" + HeaderName + ": " + testSecret + "\r\n" + strings.Join(extra, "") + "\r\n"
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAnswersInTheAppServiceShape(t *testing.T) {
	src := &recordingSource{}
	h := newTestHandler(t, src)
	w := serve(h, rawRequest(t, good("api-version=2019-08-01&resource=https://management.azure.com/")))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"access_token": testToken,
		"expires_on":   "1900000000",
		"resource":     "https://management.azure.com/",
		"token_type":   "Bearer",
		"client_id":    testClientID,
	}
	if len(body) != len(want) {
		t.Errorf("body %v, want exactly %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %#v, want %#v", k, body[k], v)
		}
	}
	got := src.last.Load().(Request)
	if got.Scope != "https://management.azure.com/.default" || got.Tenant != "" {
		t.Errorf("source asked for %+v", got)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
}

func TestNormalizeResource(t *testing.T) {
	for in, want := range map[string]string{
		"https://management.azure.com/":                 "https://management.azure.com",
		"https://graph.microsoft.com/.default":          "https://graph.microsoft.com",
		"https://graph.microsoft.com//.DEFAULT":         "https://graph.microsoft.com",
		" https://vault.azure.net ":                     "https://vault.azure.net",
		"499b84ac-1321-427f-aa17-267ca6975798":          "499b84ac-1321-427f-aa17-267ca6975798",
		"499b84ac-1321-427f-aa17-267ca6975798/.default": "499b84ac-1321-427f-aa17-267ca6975798",
		"api://0f1e2d3c-0000-4000-8000-00000000a001":    "api://0f1e2d3c-0000-4000-8000-00000000a001",
	} {
		got, err := NormalizeResource(in)
		if err != nil || got != want {
			t.Errorf("NormalizeResource(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/.default", "graph", "https://a b", "https://x,https://y", "https://x?y", "https://u@x", "https://x\ny", strings.Repeat("a", 600)} {
		if got, err := NormalizeResource(bad); err == nil {
			t.Errorf("NormalizeResource(%q) = %q, want an error", bad, got)
		}
	}
}

// TestRefusals: every refusal of the contract gets a 4xx, no token, no CORS header,
// and never reaches the source.
func TestRefusals(t *testing.T) {
	q := "api-version=2019-08-01&resource=https://management.azure.com"
	cases := map[string]struct {
		raw    string
		status int
	}{
		"no header":          {"GET " + testPath + "?" + q + " HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n", 401},
		"wrong header":       {strings.Replace(good(q), testSecret, strings.Repeat("0", 64), 1), 401},
		"header in query":    {"GET " + testPath + "?" + q + "&X-IDENTITY-HEADER=" + testSecret + " HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n", 401},
		"two headers":        {good(q, HeaderName+": "+testSecret+"\r\n"), 400},
		"wrong host":         {strings.Replace(good(q), "Host: "+testHost, "Host: evil.example:40123", 1), 403},
		"localhost host":     {strings.Replace(good(q), "Host: "+testHost, "Host: localhost:40123", 1), 403},
		"no host":            {strings.Replace(good(q), "Host: "+testHost+"\r\n", "", 1), 403},
		"origin":             {good(q, "Origin: http://evil.example\r\n"), 403},
		"referer":            {good(q, "Referer: http://evil.example/\r\n"), 403},
		"sec-fetch-site":     {good(q, "Sec-Fetch-Site: cross-site\r\n"), 403},
		"sec-fetch-mode":     {good(q, "sec-fetch-mode: no-cors\r\n"), 403},
		"x-forwarded-for":    {good(q, "X-Forwarded-For: 10.0.0.1\r\n"), 403},
		"forwarded":          {good(q, "Forwarded: for=10.0.0.1\r\n"), 403},
		"post":               {strings.Replace(good(q), "GET ", "POST ", 1), 405},
		"options":            {strings.Replace(good(q), "GET ", "OPTIONS ", 1), 405},
		"head":               {strings.Replace(good(q), "GET ", "HEAD ", 1), 405},
		"backslash path":     {strings.Replace(good(q), testPath, `/pctoken-helper\default\home`, 1), 404},
		"encoded slash":      {strings.Replace(good(q), testPath, "/pctoken-helper%2Fdefault%2Fhome", 1), 404},
		"encoded letter":     {strings.Replace(good(q), testPath, "/pctoken-helper/defaul%74/home", 1), 404},
		"dot segment":        {strings.Replace(good(q), testPath, "/pctoken-helper/x/../default/home", 1), 404},
		"double slash":       {strings.Replace(good(q), testPath, "/pctoken-helper//default/home", 1), 404},
		"trailing slash":     {strings.Replace(good(q), testPath, testPath+"/", 1), 404},
		"other tenant path":  {strings.Replace(good(q), testPath, "/pctoken-helper/default/"+testCustomer, 1), 404},
		"absolute form":      {strings.Replace(good(q), "GET "+testPath, "GET http://"+testHost+testPath, 1), 404},
		"no api-version":     {good("resource=https://management.azure.com"), 400},
		"old api-version":    {good("api-version=2017-09-01&resource=https://management.azure.com"), 400},
		"no resource":        {good("api-version=2019-08-01"), 400},
		"two resources":      {good(q + "&resource=https://graph.microsoft.com"), 400},
		"bad resource":       {good("api-version=2019-08-01&resource=graph"), 400},
		"semicolon query":    {good(q + ";x=1"), 400},
		"unknown client_id":  {good(q + "&client_id=00000000-0000-0000-0000-000000000000"), 400},
		"unknown object_id":  {good(q + "&object_id=" + testClientID), 400},
		"unknown mi_res_id":  {good(q + "&mi_res_id=/subscriptions/x/resourceGroups/y"), 400},
		"two selectors":      {good(q + "&client_id=" + testClientID + "&object_id=" + testObjectID), 400},
		"body":               {good(q, "Content-Length: 2\r\n") + "{}", 400},
		"long uri":           {good(q + "&x=" + strings.Repeat("a", 5000)), 414},
		"resource not allow": {good("api-version=2019-08-01&resource=https://graph.microsoft.com"), 403},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			src := &recordingSource{}
			h := newTestHandler(t, src, "https://management.azure.com")
			w := serve(h, rawRequest(t, c.raw))
			if w.Code != c.status {
				t.Errorf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if strings.Contains(w.Body.String(), testToken) || strings.Contains(w.Body.String(), "access_token") {
				t.Errorf("body carries a token: %s", w.Body)
			}
			if strings.Contains(w.Body.String(), testSecret) {
				t.Errorf("body carries the secret: %s", w.Body)
			}
			for k := range w.Header() {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("CORS header %s", k)
				}
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.StatusCode != c.status || body.Message == "" || body.Error == "" {
				t.Errorf("error body %s (%v)", w.Body, err)
			}
			if n := src.calls.Load(); n != 0 {
				t.Errorf("source called %d times", n)
			}
		})
	}
}

func TestSelectors(t *testing.T) {
	q := "api-version=2019-08-01&resource=https://graph.microsoft.com"
	for sel, tenant := range map[string]string{
		"":                           "",
		"&client_id=" + testClientID: "",
		"&client_id=" + strings.ToUpper(testClientID): "",
		"&object_id=" + testObjectID:                  "",
		"&client_id=fabrikam":                         testCustomer,
		"&mi_res_id=FABRIKAM":                         testCustomer,
		"&object_id=fabrikam":                         testCustomer,
	} {
		src := &recordingSource{}
		w := serve(newTestHandler(t, src), rawRequest(t, good(q+sel)))
		if w.Code != 200 {
			t.Errorf("%q: status %d: %s", sel, w.Code, w.Body)
			continue
		}
		if got := src.last.Load().(Request).Tenant; got != tenant {
			t.Errorf("%q: tenant %q, want %q", sel, got, tenant)
		}
	}
}

func TestFailureKindsBecomeStatuses(t *testing.T) {
	for kind, status := range map[failure.Kind]int{
		failure.Usage:         400,
		failure.ConsentNeeded: 401,
		failure.Configuration: 403,
		failure.Transient:     503,
		failure.Unexpected:    500,
	} {
		src := &recordingSource{err: &failure.Error{Kind: kind, Message: "the refresh token expired\x1b[31m", AADSTS: "700082"}}
		w := serve(newTestHandler(t, src), rawRequest(t, good("api-version=2019-08-01&resource=https://graph.microsoft.com")))
		if w.Code != status {
			t.Errorf("kind %v: status %d, want %d", kind, w.Code, status)
		}
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body.Message, "the refresh token expired") || !strings.Contains(body.Message, "AADSTS700082") ||
			!strings.Contains(body.Message, "hint: pctoken-helper consent --profile default") || body.Message != body.ErrorDescription {
			t.Errorf("kind %v: message %q", kind, body.Message)
		}
		if strings.ContainsRune(body.Message, 0x1b) {
			t.Errorf("control character in message %q", body.Message)
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.1:8080", "[::1]:0", "127.1.2.3:99"} {
		if err := CheckListenAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:80", ":8080", "localhost:80", "10.0.0.1:80", "[::]:80", "127.0.0.1", "[fe80::1%lo]:80", "127.0.0.1:x"} {
		if err := CheckListenAddr(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzRequest: whatever bytes arrive, the handler never panics, and it hands out a
// token only to a request that passes every check.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(good("api-version=2019-08-01&resource=https://management.azure.com")))
	f.Add([]byte(good("api-version=2019-08-01&resource=https://graph.microsoft.com/.default&client_id=fabrikam")))
	f.Add([]byte(good("api-version=2019-08-01&resource=x", "Origin: null\r\n")))
	f.Add([]byte("POST " + testPath + " HTTP/1.1\r\nHost: " + testHost + "\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		src := &recordingSource{}
		w := serve(newTestHandler(t, src), r)
		if w.Code != 200 {
			if src.calls.Load() != 0 || strings.Contains(w.Body.String(), testToken) {
				t.Fatalf("status %d but the source was asked: %q", w.Code, raw)
			}
			return
		}
		path, _, _ := strings.Cut(r.RequestURI, "?")
		switch {
		case r.Method != "GET", path != testPath, r.Host != testHost,
			len(r.Header.Values(HeaderName)) != 1 || r.Header.Get(HeaderName) != testSecret,
			forbiddenHeader(r.Header) != "":
			t.Fatalf("token handed out for %q", raw)
		}
		res, err := NormalizeResource(r.URL.Query().Get("resource"))
		if err != nil || src.last.Load().(Request).Scope != res+"/.default" {
			t.Fatalf("scope %+v for %q", src.last.Load(), raw)
		}
	})
}

// FuzzNormalizeResource: a normalised resource is stable, bounded, and never ends in
// "/" or "/.default", so one resource is one cache entry.
func FuzzNormalizeResource(f *testing.F) {
	for _, s := range []string{"https://management.azure.com/", "https://graph.microsoft.com/.default", "499b84ac-1321-427f-aa17-267ca6975798", "api://x/.default/", "https://a//.default"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := NormalizeResource(raw)
		if err != nil {
			return
		}
		again, err := NormalizeResource(r)
		if err != nil || again != r {
			t.Fatalf("NormalizeResource(%q) = %q, but again %q, %v", raw, r, again, err)
		}
		if strings.HasSuffix(r, "/") || strings.HasSuffix(strings.ToLower(r), "/.default") || len(r) > maxResourceLen {
			t.Fatalf("NormalizeResource(%q) = %q", raw, r)
		}
	})
}
