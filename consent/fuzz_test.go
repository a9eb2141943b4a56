package consent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// FuzzRedirect sends arbitrary queries and form bodies through the real handler:
// it never panics, answers every request, and reports an outcome only for a request
// that carries the expected state exactly once.
func FuzzRedirect(f *testing.F) {
	f.Add("code=abc&state=S", "")
	f.Add("error=access_denied&error_description=%3Cscript%3E&state=S", "")
	f.Add("code=abc&state=S&state=S", "")
	f.Add("state=S", "code=x&state=S")
	f.Add("%zz=1;&&=", "error=%1b%5b31m&state=S")
	f.Add("", "code=%ff%fe&state=S")
	f.Fuzz(func(t *testing.T, query, body string) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			results := make(chan result, 1)
			h := &redirectHandler{port: 8400, state: "S", results: results, flow: newFlow()}
			req := &http.Request{
				Method: method,
				URL:    &url.URL{Path: "/", RawQuery: query},
				Host:   "localhost:8400",
				Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				Body:   http.NoBody,
			}
			params := query
			if method == http.MethodPost {
				req.Body = httptestBody(body)
				params = body
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code == 0 || rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("%s %q: status %d, headers %v", method, params, rec.Code, rec.Header())
			}
			v, parseErr := url.ParseQuery(params)
			select {
			case res := <-results:
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != DonePath || parseErr != nil || len(v["state"]) != 1 || v.Get("state") != "S" {
					t.Fatalf("%s %q: outcome %+v from a request that is not a valid response", method, params, res)
				}
				var authErr *AuthError
				if errors.As(res.err, &authErr) {
					if strings.IndexFunc(authErr.Error(), func(r rune) bool { return r != '\n' && !unicode.IsPrint(r) }) >= 0 {
						t.Fatalf("error text keeps control characters: %q", authErr.Error())
					}
				} else if res.code != v.Get("code") || res.code == "" {
					t.Fatalf("%s %q: code %q", method, params, res.code)
				}
			default:
				if rec.Code == http.StatusOK || rec.Code == http.StatusSeeOther {
					t.Fatalf("%s %q: %d without an outcome", method, params, rec.Code)
				}
			}
		}
	})
}

func httptestBody(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// FuzzParsePortRange: any flag value either fails or gives a valid range that
// survives a round trip through String.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"8400-8999", "8400", "0", "65536", "9-8", "+1", " 1 - 2 ", "1--2", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.First < 1 || r.Last > 65535 || r.First > r.Last {
			t.Fatalf("%q -> invalid %v", s, r)
		}
		if back, err := ParsePortRange(r.String()); err != nil || back != r {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, r, r.String(), back, err)
		}
	})
}
