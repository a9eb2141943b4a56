package cli

import (
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
