package cli

import (
	"strings"

	"github.com/pctoken/pctoken-helper/redact"
)

// secretVars are the variables whose values are secrets of the helper's: they are
// registered with redact at start-up, so that no text shown quotes them, and left out
// of the environment of every process the helper starts (consent.ChildEnv).
var secretVars = []string{"PCTOKEN_CLIENT_SECRET", "PCTOKEN_FILE_PASSPHRASE", "PCTOKEN_REFRESH_TOKEN"}

// registerEnvSecrets tells redact the secrets given in the environment.
func registerEnvSecrets(getenv func(string) string) {
	if getenv == nil {
		return
	}
	for _, v := range secretVars {
		redact.Register(getenv(v))
	}
}

// shown is text about to be shown that may quote the outside world: an error, a
// diagnostic, a warning.
func shown(s string) string { return redact.String(s) }

// registerSecret tells redact a secret read from stdin (a client secret, an imported
// refresh token).
func registerSecret(s string) { redact.Register(s) }

// gitHostOK: a host git names is a host name (or an IP literal), maybe with a port,
// and has no empty label, so that "*.visualstudio.com" matches a.visualstudio.com
// but neither ".visualstudio.com" nor "visualstudio.com".
func gitHostOK(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	if host[0] == '[' {
		return true // an IPv6 literal: only a pattern naming it matches
	}
	name, port, hasPort := strings.Cut(host, ":")
	if hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return false
		}
	}
	return true
}
