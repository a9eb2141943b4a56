// Package redact makes text that came from outside the process safe to show a person
// or to keep: the identity provider's error descriptions and bodies, MSAL's messages,
// a device-code prompt, anything a WAF or proxy put in an error page. Such text may
// quote the request it answers, and the request carried the refresh token, the client
// secret, an assertion or an authorization code.
//
// The process registers every secret it comes to know, where it enters (the secure
// store's answers, the variables of CI mode, the rotated refresh token, the PKCE
// verifier and the authorization code), and String replaces in a text:
//
//   - every registered secret, and any piece of one at least windowLen bytes long, in
//     its raw, URL-encoded, form-encoded and JSON-escaped forms;
//   - anything shaped like a token: a JWT, an Entra refresh token ("0.A..." or
//     "1.A..."), the value of refresh_token=, client_secret=, client_assertion=,
//     code=, code_verifier=, password= and their kin in form, query or JSON text, and
//     any long run of token characters that mixes upper case, lower case and digits;
//   - control characters (C0, DEL, C1, Unicode bidi overrides and isolates) and
//     invalid UTF-8, by '?', so that no escape sequence reaches a terminal;
//
// and cuts the result to MaxLen bytes. It imports nothing of the project, so every
// package may use it, and it compiles nothing at start-up: the early cache-hit path
// never pays for it.
package redact

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Marker stands where a secret or a token was.
const Marker = "[redacted]"

// MaxLen bounds what String returns, in bytes; a longer text is cut and ends in
// cutSuffix. Error messages and prompts are one or two lines: a longer text from
// outside is a page quoting something, never worth showing whole.
const MaxLen = 1024

// maxWork bounds how much of a text String looks at. A 100 MB error body is cut to
// this before any scanning, so scrubbing costs the same however large the body.
const maxWork = 64 << 10

// minSecret is the shortest value Register keeps: shorter ones would scrub ordinary
// words and are no secret worth the name (Entra's client secrets are 40 characters,
// refresh tokens over a kilobyte).
const minSecret = 8

// windowLen is the length of the pieces of a secret that String finds anywhere: a
// text that quotes a secret cut short, or split over two lines, still shows nothing
// of it longer than windowLen-1 bytes.
const windowLen = 16

const cutSuffix = "...(cut)"

// registry is the process-wide set of known secrets.
var registry struct {
	mu      sync.RWMutex
	exact   map[string]struct{} // every form of every secret
	windows map[string]struct{} // every windowLen-byte piece of every form
}

// Register records secrets this process knows; empty and short values are ignored.
// It is safe to call from many goroutines, and cheap enough for a secret read once
// per process (a refresh token of 2 KB adds 2,000 pieces).
func Register(secrets ...string) {
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		forms := []string{s, url.QueryEscape(s), url.PathEscape(s), jsonEscape(s)}
		registry.mu.Lock()
		if registry.exact == nil {
			registry.exact = map[string]struct{}{}
			registry.windows = map[string]struct{}{}
		}
		for _, f := range forms {
			if _, ok := registry.exact[f]; ok {
				continue
			}
			registry.exact[f] = struct{}{}
			for i := 0; i+windowLen <= len(f); i++ {
				registry.windows[f[i:i+windowLen]] = struct{}{}
			}
		}
		registry.mu.Unlock()
	}
}

// Known reports whether s is, or holds, a registered secret (or a windowLen piece of
// one); for tests and checks.
func Known(s string) bool {
	return hideKnown(s) != s
}

func jsonEscape(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// String returns s scrubbed of secrets and token-shaped text, cleaned of control
// characters, and cut to MaxLen bytes.
func String(s string) string {
	if s == "" {
		return s
	}
	cut := false
	if len(s) > maxWork {
		s, cut = s[:maxWork], true
	}
	s = strings.ToValidUTF8(s, "?")
	s = hideKnown(s)
	s = hideShapes(s)
	s = clean(s)
	if len(s) > MaxLen {
		s, cut = s[:MaxLen], true
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if cut {
		s += cutSuffix
	}
	return s
}

// Clean only replaces control characters and cuts to MaxLen: for text that holds no
// secret but may hold escape sequences. String does this too.
func Clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = clean(s)
	if len(s) > MaxLen {
		s = s[:MaxLen]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += cutSuffix
	}
	return s
}

// hideKnown replaces every stretch of s covered by a piece of a registered secret,
// and every whole registered secret (short ones have no pieces).
func hideKnown(s string) string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	if len(registry.exact) == 0 {
		return s
	}
	// covered[i] is true for each byte inside a known piece.
	var covered []bool
	mark := func(from, to int) {
		if covered == nil {
			covered = make([]bool, len(s))
		}
		for j := from; j < to; j++ {
			covered[j] = true
		}
	}
	if len(s) >= windowLen {
		for i := 0; i+windowLen <= len(s); i++ {
			if _, ok := registry.windows[s[i:i+windowLen]]; ok {
				mark(i, i+windowLen)
			}
		}
	}
	for secret := range registry.exact {
		if len(secret) >= windowLen {
			continue // found through its pieces
		}
		for off := 0; ; {
			i := strings.Index(s[off:], secret)
			if i < 0 {
				break
			}
			mark(off+i, off+i+len(secret))
			off += i + len(secret)
		}
	}
	if covered == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(Marker)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String()
}

// secretKeys are the names whose value is a secret in form, query, header or JSON text.
const secretKeys = `refresh_token|access_token|id_token|client_secret|client_assertion|assertion|code_verifier|device_code|code|password|passphrase|secret|credential`

// protocolKeys are the names no sentence uses: "refresh_token: x" is a secret too,
// while "the client secret: failed to ..." is a message.
const protocolKeys = `refresh_token|access_token|id_token|client_secret|client_assertion|code_verifier|device_code`

// shapes are compiled on first use, never at start-up.
var shapes = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		// key=value in a form or query (also %3D-encoded, or in a header), the key
		// not preceded by a word character: "error_code=" is not "code=".
		regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_])(` + secretKeys + `)(=|%3D)([^&\s"'<>,;]+)`),
		// "key": "value" in JSON, and its escaped forms inside a JSON string.
		regexp.MustCompile(`(?i)((?:\\?")(?:` + secretKeys + `)(?:\\?")\s*:\s*(?:\\?"))([^"\\]*)`),
		// "key: value", as in a header or a log line, for the protocol's own names.
		regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_])(` + protocolKeys + `)(:\s*)([^&\s"'<>,;]+)`),
		// A JWT (header.payload[.signature]), whatever it is.
		regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?`),
		// An Entra refresh token: "0.A" or "1.A" then base64url and dots, long.
		regexp.MustCompile(`(^|[^A-Za-z0-9])[01]\.A[A-Za-z0-9_.*-]{20,}`),
	}
})

// longRun is a run of token characters long enough to be a secret or a token.
const longRun = 40

func hideShapes(s string) string {
	re := shapes()
	s = re[0].ReplaceAllString(s, "${1}${2}${3}"+Marker)
	s = re[1].ReplaceAllString(s, "${1}"+Marker)
	s = re[2].ReplaceAllString(s, "${1}${2}${3}"+Marker)
	s = re[3].ReplaceAllString(s, Marker)
	s = re[4].ReplaceAllString(s, "${1}"+Marker)
	return hideLongRuns(s)
}

// isTokenByte: the characters of base64, base64url and of Entra's secrets; not '/',
// so that the folders of a path are taken one at a time.
func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '=' || c == '%'
}

// class of a byte for hideLongRuns: 1 upper, 2 lower, 3 digit, 0 other.
func class(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return 1
	case c >= 'a' && c <= 'z':
		return 2
	case c >= '0' && c <= '9':
		return 3
	}
	return 0
}

// hideLongRuns replaces runs of at least longRun token characters that look random:
// upper case, lower case and digits, changing from one to another at least every
// third character or so. Base64 of random bytes changes class at almost two
// characters in three; GUIDs (lower-case hex), words, CamelCase names (a test's
// folder) and digits in a row do not.
func hideLongRuns(s string) string {
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); {
		if !isTokenByte(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		var seen [4]bool
		changes, prev := 0, -1
		for j < len(s) && isTokenByte(s[j]) {
			c := class(s[j])
			seen[c] = true
			if c != 0 && prev != 0 && c != prev && prev != -1 {
				changes++
			}
			prev = c
			j++
		}
		if n := j - i; n >= longRun && seen[1] && seen[2] && seen[3] && changes*5 >= n*2 {
			b.WriteString(Marker)
			changed = true
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	if !changed {
		return s
	}
	return b.String()
}

// clean replaces control characters, keeping newlines, by '?'; a tab becomes a space.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if unsafeRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unsafeRune(r):
			return '?'
		}
		return r
	}, s)
}

// unsafeRune: C0 controls but newline, DEL, C1 controls, the bidi embeddings,
// overrides and isolates, the directional marks, and the replacement character's
// stand-ins for bytes that were not UTF-8 are left alone (they are already '?').
func unsafeRune(r rune) bool {
	switch {
	case r == '\n':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}
