package harness

import (
	"regexp"
	"strings"
	"sync"
)

// tokenShape matches the simulator's refresh tokens (and Entra's: "0.A...") and JWTs.
var tokenShape = regexp.MustCompile(`0\.AAAA[A-Za-z0-9_-]{26,}|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}`)

// Secrets are the values a test must never see outside the secure store: refresh
// tokens, client secrets, passphrases, codes. Safe for concurrent use.
type Secrets struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
}

// Add records v, named what; "" is ignored.
func (s *Secrets) Add(what, v string) {
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	s.values[v] = what
}

// Len is how many secrets are recorded.
func (s *Secrets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

// Find names the first secret in text: any 24-byte piece of one, or anything shaped
// like a refresh token; "" when there is none. Access tokens (JWTs) are allowed where
// allowJWT is true: a successful answer carries one.
func (s *Secrets) Find(text string, allowJWT bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, what := range s.values {
		const piece = 24
		if len(v) <= piece {
			if strings.Contains(text, v) {
				return what
			}
			continue
		}
		for i := 0; i+piece <= len(v); i++ {
			if strings.Contains(text, v[i:i+piece]) {
				return what + " (a piece of it: " + v[i:i+piece] + ")"
			}
		}
	}
	for _, m := range tokenShape.FindAllString(text, -1) {
		if strings.HasPrefix(m, "eyJ") && allowJWT {
			continue
		}
		return "something shaped like a token: " + m[:16] + "..."
	}
	return ""
}
