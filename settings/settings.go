// Package settings holds the rules both command paths apply to what the user gave:
// the default folders, scope resolution and the shape of client and tenant ids. The
// full command line (cli) and the early cache-hit path (cli/hit) must compute the
// same request from the same input, so they share these rules instead of repeating
// them. It imports nothing heavy: cli/hit runs before most packages initialise.
package settings

import (
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/pctoken/pctoken-helper/cloud"
)

// Dir is the folder a flag names, else the user folder's pctoken-helper (user is
// os.UserConfigDir or os.UserCacheDir, which honour XDG_CONFIG_HOME and XDG_CACHE_HOME).
func Dir(flag string, user func() (string, error)) (string, error) {
	if flag != "" {
		return flag, nil
	}
	d, err := user()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "pctoken-helper"), nil
}

// Scopes resolves aliases in the given scopes (repeatable, comma or space separated);
// with none given, the first scope consented to, else Partner Center's.
func Scopes(c cloud.Cloud, consented, given []string) []string {
	var out []string
	for _, g := range given {
		for _, part := range strings.Fields(strings.ReplaceAll(g, ",", " ")) {
			out = append(out, c.Scope(part))
		}
	}
	if len(out) == 0 {
		if len(consented) > 0 {
			return []string{c.Scope(consented[0])}
		}
		return []string{c.DefaultScope()}
	}
	return out
}

// IsGUID reports whether id has the shape of an Entra application (client) id.
func IsGUID(id string) bool {
	ok := len(id) == 36
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			ok = c == '-'
		} else {
			ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
		}
	}
	return ok
}

// IsScope reports whether s may be sent as a scope: valid UTF-8 without control
// characters (C0, DEL, C1). Anything else is refused, as the same bytes in a tenant.
// U+FFFD is refused too: the command-line parser turns invalid UTF-8 into it.
func IsScope(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// IsTenant reports whether t is a tenant id or a domain name. The tenant becomes a
// segment of the token endpoint's path, so a '/', '?', '%' or ".." would send the
// refresh token to another path.
func IsTenant(t string) bool {
	const maxLen = 253 // the longest domain name; tenant ids are 36
	ok := len(t) > 0 && len(t) <= maxLen && t[0] != '.' && !strings.Contains(t, "..")
	for i := 0; ok && i < len(t); i++ {
		c := t[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
	}
	return ok
}
