package keyvault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/pctoken/pctoken-helper/failure"
)

func TestParseSecretID(t *testing.T) {
	for _, c := range []struct {
		in, host, name, err string
	}{
		{in: "https://contoso-sam.vault.azure.net/secrets/partner-rt", host: "contoso-sam.vault.azure.net", name: "partner-rt"},
		{in: "https://Contoso-SAM.Vault.Azure.Net:443/secrets/RT", host: "contoso-sam.vault.azure.net", name: "RT"},
		{in: "https://gov-vault.vault.usgovcloudapi.net/secrets/rt", host: "gov-vault.vault.usgovcloudapi.net", name: "rt"},
		{in: "https://cn-vault.vault.azure.cn/secrets/rt", host: "cn-vault.vault.azure.cn", name: "rt"},
		{in: "http://contoso-sam.vault.azure.net/secrets/rt", err: "https://"},
		{in: "https://contoso-sam.vault.azure.net/secrets/rt/0123abcd", err: "names one version"},
		{in: "https://contoso-sam.vault.azure.net/secrets/rt/", err: "trailing slash"},
		{in: "https://contoso-sam.vault.azure.net/secrets/rt?api-version=7.4", err: "no user, query or fragment"},
		{in: "https://contoso-sam.vault.azure.net/secrets/rt#x", err: "no user, query or fragment"},
		{in: "https://user:pw@contoso-sam.vault.azure.net/secrets/rt", err: "no user, query or fragment"},
		{in: "https://contoso-sam.vault.azure.net:8443/secrets/rt", err: "port 443"},
		{in: "https://evil.example.com/secrets/rt", err: "not a Key Vault host"},
		{in: "https://contoso-sam.vault.azure.net.evil.com/secrets/rt", err: ""}, // a vault host by shape: a name there is the user's choice
		{in: "https://vault.azure.net/secrets/rt", err: "not a Key Vault host"},
		{in: "https://127.0.0.1/secrets/rt", err: "not a Key Vault host"},
		{in: "https://ab.vault.azure.net/secrets/rt", err: "not a Key Vault host"},
		{in: "https://1vault.vault.azure.net/secrets/rt", err: "not a Key Vault host"},
		{in: "https://contoso-sam.vault.azure.net/keys/rt", err: "want https://"},
		{in: "https://contoso-sam.vault.azure.net/secrets/r_t", err: "letters, digits and dashes"},
		{in: "https://contoso-sam.vault.azure.net/secrets/r%2Ft", err: "escaped"},
		{in: "https://contoso-sam.vault.azure.net/secrets/", err: "letters, digits and dashes"},
		{in: "contoso-sam.vault.azure.net/secrets/rt", err: "https://"},
	} {
		id, err := ParseSecretID(c.in)
		if c.err == "" && c.host == "" {
			continue
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || id.Host != c.host || id.Name != c.name {
			t.Errorf("%s: %+v %v", c.in, id, err)
		}
		if again, err := ParseSecretID(id.String()); err != nil || again != id {
			t.Errorf("%s: String() does not parse back: %v", c.in, err)
		}
	}
}

func FuzzParseSecretID(f *testing.F) {
	for _, s := range []string{"https://contoso-sam.vault.azure.net/secrets/rt", "https://a.vault.b.c/secrets/x/y", "http://x", "https://contoso-sam.vault.azure.net/secrets/rt?x#y", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := ParseSecretID(raw)
		if err != nil {
			if len(err.Error()) > 1000 {
				t.Fatalf("unbounded message: %d bytes", len(err.Error()))
			}
			return
		}
		u, perr := url.Parse(id.String())
		if perr != nil || u.Scheme != "https" || u.Host != id.Host || u.RawQuery != "" || u.Fragment != "" || !strings.Contains(id.Host, ".vault.") {
			t.Fatalf("%q accepted as %+v", raw, id)
		}
		if again, err := ParseSecretID(id.String()); err != nil || again != id {
			t.Fatalf("%q: round trip %v", raw, err)
		}
	})
}

func FuzzClean(f *testing.F) {
	f.Add("Caller is not authorized\r\nCaller: appid=x\x1b[31m")
	f.Add(strings.Repeat("é", 500))
	f.Fuzz(func(t *testing.T, s string) {
		c := clean(s)
		if len(c) > maxShown+3 {
			t.Fatalf("%d bytes", len(c))
		}
		for _, r := range c {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("control character %U kept", r)
			}
		}
	})
}

// FuzzVaultError: whatever the vault answers, the failure shown is bounded and clean.
func FuzzVaultError(f *testing.F) {
	f.Add(403, `{"error":{"code":"Forbidden","message":"Caller is not authorized\r\nCaller: appid=a;oid=b","innererror":{"code":"ForbiddenByRbac"}}}`)
	f.Add(429, `{"error":{"code":"Throttled"}}`)
	f.Add(500, "<html>\x1b]0;pwned\x07</html>")
	s := &Store{opts: Options{Secret: SecretID{Host: "contoso-sam.vault.azure.net", Name: "rt"}, AuthName: "environment"}}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 400 || status > 599 {
			return
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewBufferString(body)),
			Request: httptest.NewRequest("GET", "https://contoso-sam.vault.azure.net/secrets/rt", nil)}
		err := s.classify(opRead, runtime.NewResponseError(resp))
		var fe *failure.Error
		if !errors.As(err, &fe) {
			t.Fatalf("not a failure: %v", err)
		}
		if len(fe.Message) > 1200 {
			t.Fatalf("message of %d bytes", len(fe.Message))
		}
		for _, r := range fe.Message + fe.Remedy {
			if unicode.IsControl(r) {
				t.Fatalf("control character %U in %q", r, fe.Message)
			}
		}
		want := failure.Configuration
		if status == 429 || status == 408 || status >= 500 {
			want = failure.Transient
		}
		if fe.Kind != want {
			t.Fatalf("%d: kind %v", status, fe.Kind)
		}
	})
}

// The refresh token goes only to the vault host over https, and no redirect is followed.
func TestRequestsStayOnTheVault(t *testing.T) {
	allow := onlyVault("contoso-sam.vault.azure.net")
	for _, u := range []string{"http://contoso-sam.vault.azure.net/secrets/rt", "https://evil.example/secrets/rt", "https://contoso-sam.vault.azure.net:8443/x"} {
		pu, _ := url.Parse(u)
		if allow(pu) == nil {
			t.Errorf("%s allowed", u)
		}
	}
	moved := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/steal", http.StatusTemporaryRedirect)
	}))
	defer moved.Close()
	c := noRedirectClient(nil)
	c.Transport.(*http.Transport).TLSClientConfig = moved.Client().Transport.(*http.Transport).TLSClientConfig
	resp, err := c.Post(moved.URL, "application/json", strings.NewReader(`{"value":"rt"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("redirect followed: %d", resp.StatusCode)
	}
}

func TestSaveRotatedSkipsAYoungVersion(t *testing.T) {
	s := &Store{opts: Options{RefreshKey: "rt", RotateAfter: DefaultRotateAfter}, margin: DefaultRotateAfter / 10}
	s.seen = &version{id: "v1", age: DefaultRotateAfter, readAt: time.Now()} // not yet past the jittered limit
	if err := s.SaveRotated(context.Background(), "rt", "new"); err != nil {
		t.Fatalf("a young version: %v", err)
	}
	if err := s.SaveRotated(context.Background(), "client-secret:p", "x"); !errors.Is(err, ErrNotInVault) {
		t.Fatalf("another key: %v", err)
	}
}
