package redact

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	rt     = "0.AVYAq5dF-secretRefreshTokenBody_abc123XYZ.AgABAAEAAAD--DLA3VO7QrddgJg7WevrAgDs_wUA9P-zzzz"
	secret = "Sv38Q~abcDEF123.ghiJKL456_mnoPQR789~stu"
	pass   = "harness-file-store-passphrase"
)

func init() { Register(rt, secret, pass, "short") }

func TestKnownSecretsInEveryForm(t *testing.T) {
	for _, in := range []string{
		"grant_type=refresh_token&refresh_token=" + url.QueryEscape(rt) + "&client_secret=" + url.QueryEscape(secret),
		`{"body":"` + rt + `"}`,
		"echo: " + rt[:40] + " ... " + rt[30:],
		"the secret is " + url.PathEscape(secret) + " and the passphrase " + pass,
		"<html><pre>" + strings.Repeat("x", 3000) + secret + "</pre>",
	} {
		out := String(in)
		for _, s := range []string{rt, secret, pass, url.QueryEscape(secret)} {
			for i := 0; i+windowLen <= len(s); i++ {
				if strings.Contains(out, s[i:i+windowLen]) {
					t.Fatalf("String(%.60q) = %q still holds a piece of a secret", in, out)
				}
			}
		}
	}
	if got := String("this is short and stays"); got != "this is short and stays" {
		t.Fatalf("a short registered value is no secret: %q", got)
	}
}

func TestTokenShapes(t *testing.T) {
	jwt := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiIxMjMifQ.c2lnbmF0dXJl"
	for in, gone := range map[string]string{
		"refresh_token=unknownvalue123&x=1":               "unknownvalue123",
		"client_secret=abc~def&":                          "abc~def",
		"client_assertion=" + jwt:                         "c2lnbmF0dXJl",
		"a=1&code=OAQABAAIAAAD&state=z":                   "OAQABAAIAAAD",
		"code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r":    "dBjftJeZ4CVP",
		"?password=hunter2hunter2":                        "hunter2",
		`{"refresh_token": "abcdefghij", "x": 1}`:         "abcdefghij",
		`description: {\"client_secret\":\"xyzxyzxyz\"}`:  "xyzxyzxyz",
		"bearer " + jwt + " end":                          "eyJ0eXAi",
		"token 1.AXYZabcdefghijklmnopqrstuvwxyz0123 end":  "abcdefghijklmnop",
		"blob Ab3" + strings.Repeat("xY9", 20) + " end":   "xY9xY9xY9",
		"secret Sv38Q~abcDEF123.ghiJKL456_mnoPQR789~stuv": "abcDEF123",
		"refresh_token%3Dsomething-long&":                 "something-long",
	} {
		out := String(in)
		if strings.Contains(out, gone) || !strings.Contains(out, Marker) {
			t.Errorf("String(%q) = %q, want %q hidden", in, out, gone)
		}
	}
	for _, keep := range []string{
		"AADSTS700082: The refresh token has expired due to inactivity.",
		"Trace ID: 3f2a1b4c-1111-2222-3333-444455556666 Correlation ID: 0e9c2b1a-aaaa-bbbb-cccc-ddddeeeeffff",
		"https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
		"error_code=50076 suberror=basic_action",
		"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD1234 to authenticate.",
		"version 1.2.3",
		"failed to store the client secret: the secure store is locked",
		"the device code: expired; the password: wrong",
		"/tmp/TestUnsafeConfigFolderIsRefused3456789012/001/home/.config/pctoken-helper/profiles/default.json",
		"cache entry 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is stale",
	} {
		if out := String(keep); out != keep {
			t.Errorf("String(%q) = %q, want it unchanged", keep, out)
		}
	}
}

func TestControlCharacters(t *testing.T) {
	in := "a\x1b[2J\x1b]0;title\x07b\rc\x00d\x7fe\u0085f\u202eg\u2066h\xffi\tj\nk"
	out := String(in)
	for _, bad := range []string{"\x1b", "\x07", "\r", "\x00", "\x7f", "\u0085", "\u202e", "\u2066", "\xff", "\t"} {
		if strings.Contains(out, bad) {
			t.Fatalf("String kept %q: %q", bad, out)
		}
	}
	if !strings.Contains(out, "j\nk") {
		t.Fatalf("String dropped a newline: %q", out)
	}
	if Clean("x\x1b]0;t\x07") != "x?]0;t?" {
		t.Fatalf("Clean = %q", Clean("x\x1b]0;t\x07"))
	}
}

func TestCut(t *testing.T) {
	out := String(strings.Repeat("é", 100<<10))
	if len(out) > MaxLen+len(cutSuffix) || !utf8.ValidString(out) || !strings.HasSuffix(out, cutSuffix) {
		t.Fatalf("a long text came back %d bytes (valid %v)", len(out), utf8.ValidString(out))
	}
}

// FuzzString: whatever the input, the output is valid UTF-8, bounded, holds no
// control character but newlines, and no piece of a registered secret.
func FuzzString(f *testing.F) {
	f.Add("refresh_token=" + rt)
	f.Add("\x1b[2J" + secret)
	f.Add(url.QueryEscape(pass) + "\u202e")
	f.Add(`{"client_secret":"` + secret + `"}`)
	f.Fuzz(func(t *testing.T, prefix string) {
		for _, in := range []string{prefix, prefix + rt + prefix, prefix + url.QueryEscape(secret), prefix + pass[:20] + "|" + pass[9:]} {
			out := String(in)
			if !utf8.ValidString(out) || len(out) > MaxLen+len(cutSuffix) {
				t.Fatalf("String(%q) = %q: invalid or too long", in, out)
			}
			for _, r := range out {
				if unsafeRune(r) || r == '\t' {
					t.Fatalf("String(%q) kept %U", in, r)
				}
			}
			for _, s := range []string{rt, secret, pass} {
				for i := 0; i+windowLen <= len(s); i++ {
					if strings.Contains(out, s[i:i+windowLen]) {
						t.Fatalf("String(%q) = %q holds a piece of a secret", in, out)
					}
				}
			}
		}
	})
}

// TestLongSecrets: a refresh token of 2 KB is found from any 23 bytes of it, and the
// whole stretch the text shares with it is hidden, not just those bytes.
func TestLongSecrets(t *testing.T) {
	var b strings.Builder
	for sum := sha256.Sum256([]byte("seed")); b.Len() < 2048; sum = sha256.Sum256(sum[:]) {
		b.WriteString(base64.RawURLEncoding.EncodeToString(sum[:]))
	}
	long := "0.AXYA" + b.String()
	Register(long)
	for _, cut := range [][2]int{{0, 23}, {100, 123}, {1000, 1500}, {len(long) - 23, len(long)}} {
		piece := long[cut[0]:cut[1]]
		out := String("before " + piece + " after")
		if out != "before "+Marker+" after" {
			t.Fatalf("a piece [%d:%d] of a long secret: %q", cut[0], cut[1], out)
		}
	}
}

// TestLongSecretsAreBounded: of many rotated refresh tokens only the newest maxLongForms
// forms are kept; short secrets stay.
func TestLongSecretsAreBounded(t *testing.T) {
	first := "1.AQ" + strings.Repeat("first-long-secret-", 20)
	Register(first)
	for i := 0; i < maxLongForms+5; i++ {
		Register(strings.Repeat(string(rune('a'+i%26)), 300) + "-" + strings.Repeat("Q", i+1))
	}
	registry.mu.RLock()
	_, kept := registry.forms[first]
	n := len(registry.long)
	registry.mu.RUnlock()
	if kept || n > maxLongForms {
		t.Fatalf("first long secret kept: %v, %d long forms", kept, n)
	}
	if !Known(secret) || !Known(pass) {
		t.Fatal("a short secret was forgotten")
	}
}
