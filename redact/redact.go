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
//   - every registered secret, and any piece of one 16 bytes long (23 for a secret of
//     256 bytes or more), in its raw, URL-encoded, form-encoded and JSON-escaped forms;
//   - anything shaped like a token: a JWT, an Entra refresh token ("0.A..." or
//     "1.A..."), the value of refresh_token=, client_secret=, client_assertion=,
//     code=, code_verifier=, password= and their kin in form, query or JSON text, and
//     any run of 40 or more token characters that looks random (upper case, lower case
//     and digits, changing often);
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
// of it that long. A short secret (a client secret, a passphrase, a PKCE verifier) is
// indexed at every offset, so any windowLen bytes of it are found; a long one (a
// refresh token, an authorization code) every longStride bytes, so any
// windowLen+longStride-1 bytes of it are found, and a match is then grown to the
// whole stretch the text shares with the secret.
const (
	windowLen  = 16
	longSecret = 256
	longStride = 8
)

// maxLongForms bounds the forms of long secrets kept (a secret has up to four:
// raw, URL-, form- and JSON-encoded): each rotation of a refresh token registers the
// new one, and a batch of a thousand tenants rotates a thousand times. The oldest are
// forgotten first (a text quoting one is still scrubbed by its shape); short secrets
// stay for the life of the process. At most about 16,000 windows, a megabyte.
const maxLongForms = 64

const cutSuffix = "...(cut)"

// form is one form (raw, URL-encoded, ...) of one registered secret.
type form struct {
	text string
	long bool
}

// piece locates a window in a form.
type piece struct {
	f   *form
	off int
}

// registry is the process-wide set of known secrets.
var registry struct {
	mu      sync.RWMutex
	forms   map[string]*form
	windows map[string]piece
	long    []*form // long forms, oldest first
}

// Register records secrets this process knows; empty and short values are ignored.
// It is safe to call from many goroutines and cheap: a refresh token of 2 KB adds
// about 250 pieces per form.
func Register(secrets ...string) {
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		registry.mu.Lock()
		if registry.forms == nil {
			registry.forms = map[string]*form{}
			registry.windows = map[string]piece{}
		}
		for _, text := range []string{s, url.QueryEscape(s), url.PathEscape(s), jsonEscape(s)} {
			if _, ok := registry.forms[text]; ok {
				continue
			}
			f := &form{text: text, long: len(text) >= longSecret}
			registry.forms[text] = f
			step := 1
			if f.long {
				step = longStride
				registry.long = append(registry.long, f)
			}
			for i := 0; i+windowLen <= len(text); i += step {
				if _, ok := registry.windows[text[i:i+windowLen]]; !ok {
					registry.windows[text[i:i+windowLen]] = piece{f, i}
				}
			}
		}
		for len(registry.long) > maxLongForms {
			forget(registry.long[0])
			registry.long = registry.long[1:]
		}
		registry.mu.Unlock()
	}
}

// forget removes f and its windows; registry.mu is held.
func forget(f *form) {
	delete(registry.forms, f.text)
	for i := 0; i+windowLen <= len(f.text); i += longStride {
		if p, ok := registry.windows[f.text[i:i+windowLen]]; ok && p.f == f {
			delete(registry.windows, f.text[i:i+windowLen])
		}
	}
}

// Known reports whether s is, or holds, a registered secret (or a piece of one, as
// String finds them); for tests and checks.
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

// hideKnown replaces every stretch of s that a registered secret shares with it,
// found through the secret's windows, and every whole registered secret (short ones
// have no windows).
func hideKnown(s string) string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	if len(registry.forms) == 0 {
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
	for i := 0; i+windowLen <= len(s); i++ {
		p, ok := registry.windows[s[i:i+windowLen]]
		if !ok {
			continue
		}
		// Grow the match both ways as far as the text follows the secret.
		from, to := i, i+windowLen
		for k := p.off; from > 0 && k > 0 && s[from-1] == p.f.text[k-1]; k-- {
			from--
		}
		for k := p.off + windowLen; to < len(s) && k < len(p.f.text) && s[to] == p.f.text[k]; k++ {
			to++
		}
		mark(from, to)
	}
	for text := range registry.forms {
		if len(text) >= windowLen {
			continue // found through its windows
		}
		for off := 0; ; {
			i := strings.Index(s[off:], text)
			if i < 0 {
				break
			}
			mark(off+i, off+i+len(text))
			off += i + len(text)
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
