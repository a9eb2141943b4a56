package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// sampleToken is fictitious: three base64url parts, no real claims.
var sampleToken = Token{
	AccessToken: "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl",
	// 14:09:26.535 UTC, given in another zone with a fraction, so the tests
	// see both the conversion to UTC and the rounding down to the second.
	ExpiresOn: time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("CET", 3600)),
	TenantID:  "11111111-2222-3333-4444-555555555555",
	Scopes:    []string{"https://api.partnercenter.microsoft.com/user_impersonation"},
	Profile:   "contoso",
	Cached:    true,
}

const sampleExpiryUnix = 1741961366 // 2025-03-14T14:09:26Z

func TestWriteShapesGolden(t *testing.T) {
	noScopes := sampleToken
	noScopes.Scopes = nil
	noScopes.Cached = false
	htmlish := sampleToken
	htmlish.Profile = "a&b<c>"

	tests := []struct {
		name  string
		write func(w *bytes.Buffer) error
		want  string
	}{
		{"json", func(w *bytes.Buffer) error { return WriteJSON(w, sampleToken) },
			`{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"11111111-2222-3333-4444-555555555555","scopes":["https://api.partnercenter.microsoft.com/user_impersonation"],"profile":"contoso","cached":true}` + "\n"},
		{"json without scopes is an empty list", func(w *bytes.Buffer) error { return WriteJSON(w, noScopes) },
			`{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"11111111-2222-3333-4444-555555555555","scopes":[],"profile":"contoso","cached":false}` + "\n"},
		{"json does not html-escape", func(w *bytes.Buffer) error { return WriteJSON(w, htmlish) },
			`{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"11111111-2222-3333-4444-555555555555","scopes":["https://api.partnercenter.microsoft.com/user_impersonation"],"profile":"a&b<c>","cached":true}` + "\n"},
		{"token", func(w *bytes.Buffer) error { return WriteToken(w, sampleToken) },
			"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl\n"},
		{"az", func(w *bytes.Buffer) error {
			return WriteAz(w, sampleToken, time.FixedZone("IST", 5*3600+1800))
		}, `{
  "accessToken": "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl",
  "expiresOn": "2025-03-14 19:39:26.000000",
  "expires_on": 1741961366,
  "tenant": "11111111-2222-3333-4444-555555555555",
  "tokenType": "Bearer"
}
`},
		{"azd", func(w *bytes.Buffer) error { return WriteAzd(w, sampleToken) }, `{
  "token": "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ0ZXN0In0.c2lnbmF0dXJl",
  "expiresOn": "2025-03-14T14:09:26Z"
}
`},
		{"error", func(w *bytes.Buffer) error {
			return WriteError(w, Error{Code: "consent_required", AADSTS: "AADSTS700082",
				Message: "the refresh token expired after 90 days of inactivity",
				Remedy:  "pctoken-helper consent --profile contoso"})
		}, `{"error":{"code":"consent_required","aadsts":"AADSTS700082","message":"the refresh token expired after 90 days of inactivity","remedy":"pctoken-helper consent --profile contoso"}}` + "\n"},
		{"error without aadsts and remedy", func(w *bytes.Buffer) error {
			return WriteError(w, Error{Code: "transient", Message: "login.example <unreachable> & retried"})
		}, `{"error":{"code":"transient","message":"login.example <unreachable> & retried"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleToken); err != nil {
		t.Fatal(err)
	}
	var got struct {
		AccessToken string    `json:"access_token"`
		ExpiresOn   int64     `json:"expires_on"`
		ExpiresAt   time.Time `json:"expires_at"`
		TenantID    string    `json:"tenant_id"`
		Scopes      []string  `json:"scopes"`
		Profile     string    `json:"profile"`
		Cached      bool      `json:"cached"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := sampleToken.ExpiresOn.Truncate(time.Second)
	if got.AccessToken != sampleToken.AccessToken || got.TenantID != sampleToken.TenantID ||
		got.Profile != sampleToken.Profile || !got.Cached ||
		strings.Join(got.Scopes, " ") != strings.Join(sampleToken.Scopes, " ") {
		t.Errorf("round trip changed fields: %+v", got)
	}
	if !got.ExpiresAt.Equal(want) || got.ExpiresOn != want.Unix() {
		t.Errorf("expiry: expires_at %v, expires_on %d; want %v", got.ExpiresAt, got.ExpiresOn, want)
	}
	// Rounded down, never up: a consumer must not believe in a second the
	// token lacks.
	if got.ExpiresAt.After(sampleToken.ExpiresOn) {
		t.Errorf("expires_at %v is after the real expiry %v", got.ExpiresAt, sampleToken.ExpiresOn)
	}
}

func TestWriteRefusesBadTokens(t *testing.T) {
	bad := map[string]Token{
		"empty token":  {ExpiresOn: sampleToken.ExpiresOn},
		"newline":      {AccessToken: "abc\ndef", ExpiresOn: sampleToken.ExpiresOn},
		"space":        {AccessToken: "abc def", ExpiresOn: sampleToken.ExpiresOn},
		"NUL":          {AccessToken: "abc\x00", ExpiresOn: sampleToken.ExpiresOn},
		"no expiry":    {AccessToken: "abc"},
		"carriage ret": {AccessToken: "abc\r", ExpiresOn: sampleToken.ExpiresOn},
	}
	writers := map[string]func(*bytes.Buffer, Token) error{
		"json":     func(w *bytes.Buffer, t Token) error { return WriteJSON(w, t) },
		"az":       func(w *bytes.Buffer, t Token) error { return WriteAz(w, t, time.UTC) },
		"azd":      func(w *bytes.Buffer, t Token) error { return WriteAzd(w, t) },
		"response": func(w *bytes.Buffer, t Token) error { return WriteResponse(w, json.RawMessage(`1`), t) },
	}
	for tn, tok := range bad {
		for wn, write := range writers {
			var buf bytes.Buffer
			if err := write(&buf, tok); err == nil {
				t.Errorf("%s with %s: no error, wrote %q", wn, tn, buf.String())
			} else if buf.Len() != 0 {
				t.Errorf("%s with %s: wrote %q despite the error", wn, tn, buf.String())
			}
		}
		if tn == "no expiry" {
			continue // the bare token needs no expiry
		}
		var buf bytes.Buffer
		if err := WriteToken(&buf, tok); err == nil || buf.Len() != 0 {
			t.Errorf("token with %s: err %v, wrote %q", tn, err, buf.String())
		}
	}
}

func TestWriteReportsWriterError(t *testing.T) {
	boom := errors.New("disk full")
	if err := WriteJSON(failWriter{boom}, sampleToken); !errors.Is(err, boom) {
		t.Errorf("WriteJSON: got %v, want %v", err, boom)
	}
	if err := WriteToken(failWriter{boom}, sampleToken); !errors.Is(err, boom) {
		t.Errorf("WriteToken: got %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// fakeCLI puts an executable called name on PATH that prints out, the way
// azidentity expects az or azd to.
func fakeCLI(t *testing.T, name string, out []byte) {
	t.Helper()
	dir := t.TempDir()
	outFile := filepath.Join(dir, name+".json")
	if err := os.WriteFile(outFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ncat '" + outFile + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

var azOptions = policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}

// TestAzidentityReadsAz runs azidentity's Azure CLI credential against a fake
// az printing what WriteAz wrote.
func TestAzidentityReadsAz(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteAz(&buf, sampleToken, time.FixedZone("PST", -8*3600)); err != nil {
		t.Fatal(err)
	}
	fakeCLI(t, "az", buf.Bytes())
	cred, err := azidentity.NewAzureCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	at, err := cred.GetToken(context.Background(), azOptions)
	if err != nil {
		t.Fatal(err)
	}
	if at.Token != sampleToken.AccessToken || at.ExpiresOn.Unix() != sampleExpiryUnix {
		t.Errorf("azidentity read token %q expiring %v", at.Token, at.ExpiresOn)
	}
}

// TestAzidentityReadsAzExpiresOn checks the local-time expiresOn field on its
// own: azidentity falls back to it when expires_on is missing (old az), and
// reads it in time.Local. It re-runs itself in a zone far from UTC, so a
// wrong zone cannot pass unnoticed on a UTC machine.
func TestAzidentityReadsAzExpiresOn(t *testing.T) {
	const zone = "Asia/Kolkata"
	if os.Getenv("TZ") != zone {
		if _, err := time.LoadLocation(zone); err != nil {
			t.Skipf("no zone data for %s: %v", zone, err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestAzidentityReadsAzExpiresOn$", "-test.v")
		cmd.Env = append(os.Environ(), "TZ="+zone)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
			t.Fatalf("in %s: %v\n%s", zone, err, out)
		}
		return
	}
	if _, off := sampleToken.ExpiresOn.In(time.Local).Zone(); off == 0 {
		t.Fatalf("time.Local is UTC despite TZ=%s", zone)
	}
	var buf bytes.Buffer
	if err := WriteAz(&buf, sampleToken, nil); err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(buf.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	delete(fields, "expires_on")
	old, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	fakeCLI(t, "az", old)
	cred, err := azidentity.NewAzureCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	at, err := cred.GetToken(context.Background(), azOptions)
	if err != nil {
		t.Fatal(err)
	}
	if at.ExpiresOn.Unix() != sampleExpiryUnix {
		t.Errorf("azidentity read expiresOn %s as %v, want unix %d", fields["expiresOn"], at.ExpiresOn, sampleExpiryUnix)
	}
}

// TestAzidentityReadsAzd runs azidentity's Azure Developer CLI credential
// against a fake azd printing what WriteAzd wrote.
func TestAzidentityReadsAzd(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteAzd(&buf, sampleToken); err != nil {
		t.Fatal(err)
	}
	fakeCLI(t, "azd", buf.Bytes())
	cred, err := azidentity.NewAzureDeveloperCLICredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	at, err := cred.GetToken(context.Background(), azOptions)
	if err != nil {
		t.Fatal(err)
	}
	if at.Token != sampleToken.AccessToken || at.ExpiresOn.Unix() != sampleExpiryUnix {
		t.Errorf("azidentity read token %q expiring %v", at.Token, at.ExpiresOn)
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteJSON(discard{}, sampleToken); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is io.Discard without its io.StringWriter fast path, like a pipe.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
