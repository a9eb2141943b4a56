package protocol

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseClaims(t *testing.T) {
	const want = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	pretty := "{\n  \"access_token\": {\"acrs\": {\"essential\": true, \"value\": \"c1\"}}\n}"
	for name, in := range map[string]string{
		"raw":        want,
		"pretty":     pretty,
		"base64":     base64.StdEncoding.EncodeToString([]byte(want)),
		"base64url":  base64.RawURLEncoding.EncodeToString([]byte(want)),
		"whitespace": "  " + want + "\n",
	} {
		if got, err := ParseClaims(in); err != nil || got != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	for name, in := range map[string]string{
		"empty":       "",
		"array":       `[1]`,
		"null":        `null`,
		"not json":    `{access_token}`,
		"not base64":  "!!!",
		"base64 text": base64.StdEncoding.EncodeToString([]byte("hello")),
		"too long":    `{"a":"` + strings.Repeat("x", MaxClaimsBytes) + `"}`,
	} {
		if got, err := ParseClaims(in); err == nil {
			t.Errorf("%s: accepted as %q", name, got)
		}
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`)
	f.Add("eyJhY2Nlc3NfdG9rZW4iOnt9fQ")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ParseClaims(s)
		if err != nil {
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(out), &obj) != nil || obj == nil || len(out) > MaxClaimsBytes*2 {
			t.Fatalf("ParseClaims(%q) = %q: not a JSON object", s, out)
		}
	})
}
