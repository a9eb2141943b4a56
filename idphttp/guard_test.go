package idphttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
)

// guarded starts a TLS server answering with h and returns a client restricted to
// it, and the count of requests it received.
func guarded(t *testing.T, h http.HandlerFunc) (*http.Client, string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := Restrict(srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL, &n
}

func wantKind(t *testing.T, err error, k failure.Kind, words ...string) {
	t.Helper()
	var f *failure.Error
	if !errors.As(err, &f) || f.Kind != k {
		t.Fatalf("error %v, want a failure of kind %v", err, k)
	}
	for _, w := range words {
		if !strings.Contains(f.Message, w) {
			t.Fatalf("message %q does not say %q", f.Message, w)
		}
	}
}

func TestRestrictNeedsHTTPS(t *testing.T) {
	for _, host := range []string{"http://127.0.0.1:8443", "127.0.0.1", "", "https://"} {
		if _, err := Restrict(nil, host); err == nil {
			t.Errorf("Restrict(%q) accepted", host)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://Login.MicrosoftOnline.com/x":     "https://login.microsoftonline.com:443",
		"https://login.microsoftonline.com:443/":  "https://login.microsoftonline.com:443",
		"HTTPS://127.0.0.1:8443/t/oauth2/v2.0/to": "https://127.0.0.1:8443",
		"http://127.0.0.1/":                       "http://127.0.0.1:80",
		"https://[::1]:8443/":                     "https://[::1]:8443",
	} {
		if got, err := originOf(in); err != nil || got != want {
			t.Errorf("originOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"https://user@host/", "/relative", "https:///x"} {
		if got, err := originOf(in); err == nil {
			t.Errorf("originOf(%q) = %q, want an error", in, got)
		}
	}
}

func TestRequestsElsewhereAreNotSent(t *testing.T) {
	c, _, _ := guarded(t, func(w http.ResponseWriter, r *http.Request) {})
	var other atomic.Int32
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.Add(1) }))
	defer elsewhere.Close()
	for _, u := range []string{elsewhere.URL + "/token", strings.Replace(elsewhere.URL, "https", "http", 1) + "/token"} {
		_, err := c.Post(u, "application/x-www-form-urlencoded", strings.NewReader("refresh_token=secret"))
		wantKind(t, err, failure.Configuration, "refused to send")
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("the message shows the body: %v", err)
		}
	}
	if other.Load() != 0 {
		t.Fatalf("%d requests reached the other host", other.Load())
	}
}

func TestRedirectsAreErrors(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		var target atomic.Int32
		c, url, n := guarded(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/moved" {
				target.Add(1)
				return
			}
			http.Redirect(w, r, "/moved", status)
		})
		_, err := c.Post(url+"/token", "application/x-www-form-urlencoded", strings.NewReader("refresh_token=secret"))
		wantKind(t, err, failure.Configuration, "never follows a redirect", url)
		if target.Load() != 0 || n.Load() != 1 {
			t.Fatalf("%d: redirect followed (%d requests, %d at the target)", status, n.Load(), target.Load())
		}
	}
}

func TestLargeAnswersAreRefused(t *testing.T) {
	for _, declared := range []bool{true, false} {
		c, url, _ := guarded(t, func(w http.ResponseWriter, r *http.Request) {
			if declared {
				w.Header().Set("Content-Length", "104857600")
			}
			w.WriteHeader(400)
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for i := 0; i < 100<<20/len(chunk); i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		resp, err := c.Post(url+"/token", "", strings.NewReader("x"))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		wantKind(t, err, failure.Transient, "larger than")
	}
	// Exactly MaxBody is fine.
	c, url, _ := guarded(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.Write(bytes.Repeat([]byte("x"), MaxBody))
	})
	resp, err := c.Post(url+"/token", "", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) != MaxBody {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
}

func TestDocumentsAreChecked(t *testing.T) {
	for _, c := range []struct {
		name, method, path, body string
		kind                     failure.Kind // Unexpected: passes
		words                    string
	}{
		{"good config", "GET", "/t/v2.0/.well-known/openid-configuration", `{"token_endpoint":"SELF/t/oauth2/v2.0/token","authorization_endpoint":"SELF/t/oauth2/v2.0/authorize","userinfo_endpoint":"https://graph.microsoft.com/oidc/userinfo"}`, failure.Unexpected, ""},
		{"http token endpoint", "GET", "/t/v2.0/.well-known/openid-configuration", `{"token_endpoint":"HTTPSELF/t/oauth2/v2.0/token"}`, failure.Configuration, "token endpoint"},
		{"foreign token endpoint", "GET", "/t/v2.0/.well-known/openid-configuration", `{"token_endpoint":"https://attacker.invalid/token"}`, failure.Configuration, "https://attacker.invalid"},
		{"foreign device endpoint", "GET", "/t/v2.0/.well-known/openid-configuration", `{"token_endpoint":"SELF/t/token","device_authorization_endpoint":"https://attacker.invalid/dc"}`, failure.Configuration, "device authorization endpoint"},
		{"no token endpoint", "GET", "/t/v2.0/.well-known/openid-configuration", `{"issuer":"x"}`, failure.Transient, "without a token endpoint"},
		{"config not json", "GET", "/t/v2.0/.well-known/openid-configuration", `<html>`, failure.Transient, "malformed openid-configuration"},
		{"foreign discovery", "GET", "/common/discovery/instance", `{"tenant_discovery_endpoint":"https://attacker.invalid/x"}`, failure.Configuration, "tenant discovery endpoint"},
		{"token", "POST", "/t/oauth2/v2.0/token", `{"access_token":"a","expires_in":3600}`, failure.Unexpected, ""},
		{"token not json", "POST", "/t/oauth2/v2.0/token", `{"access_token":`, failure.Transient, "malformed token answer"},
		{"no access token", "POST", "/t/oauth2/v2.0/token", `{"expires_in":3600}`, failure.Transient, "without an access token"},
		{"other answers pass", "POST", "/t/oauth2/v2.0/devicecode", `not json`, failure.Unexpected, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var self string
			cl, url, _ := guarded(t, func(w http.ResponseWriter, r *http.Request) {
				body := strings.ReplaceAll(c.body, "HTTPSELF", strings.Replace(self, "https", "http", 1))
				w.Write([]byte(strings.ReplaceAll(body, "SELF", self)))
			})
			self = url
			req, _ := http.NewRequest(c.method, url+c.path, nil)
			resp, err := cl.Do(req)
			if c.kind == failure.Unexpected {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), strings.Split(c.body, `"`)[0]) {
					t.Fatalf("body %q", b)
				}
				return
			}
			wantKind(t, err, c.kind, c.words)
		})
	}
}

func TestDribbledAnswerSaysSo(t *testing.T) {
	c, url, _ := guarded(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(400)
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/token", strings.NewReader("x"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	wantKind(t, err, failure.Transient, "still sending", "bytes received")
}

// FuzzCheckDocuments: the documents come from the network; judging them never
// panics, and a refusal always carries a kind.
func FuzzCheckDocuments(f *testing.F) {
	f.Add([]byte(`{"token_endpoint":"https://h:443/t/token","authorization_endpoint":"http://h/x"}`))
	f.Add([]byte(`{"tenant_discovery_endpoint":"https://h/x"}`))
	f.Add([]byte(`{"access_token":""}`))
	f.Add([]byte(`{"token_endpoint":"https://user@h/","access_token":["x"]}`))
	g := &guard{origin: "https://h:443"}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, check := range []func(*guard, []byte) error{checkOpenIDConfig, checkInstanceDiscovery, checkTokenAnswer} {
			if err := check(g, data); err != nil && failure.KindOf(err) == failure.Unexpected {
				t.Fatalf("refusal without a kind: %v", err)
			}
		}
	})
}
