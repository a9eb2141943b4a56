// Package childenv is the environment of a process the helper starts: a browser
// opener at consent, the command of `mi exec`. Such a process (and a browser it starts
// in turn) may live for hours and is no part of the helper: it gets none of the
// helper's secrets.
package childenv

import (
	"strings"

	"github.com/pctoken/pctoken-helper/redact"
)

// SecretVars are the variables that hold a secret of the helper's.
var SecretVars = []string{"PCTOKEN_CLIENT_SECRET", "PCTOKEN_FILE_PASSPHRASE", "PCTOKEN_REFRESH_TOKEN"}

// Environ returns environ (os.Environ's form, "KEY=value") without SecretVars,
// without any variable whose value holds a secret registered with redact (a variable
// of the user's own naming that carries the passphrase, say), and without the
// variables named in drop. The order of what is kept is unchanged.
func Environ(environ []string, drop ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if isSecretVar(k) || contains(drop, k) || (v != "" && redact.Known(v)) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func isSecretVar(k string) bool {
	for _, s := range SecretVars {
		// Windows variables are case-insensitive; elsewhere a variable differing
		// only in case is another one, but no one means it as such.
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}

func contains(list []string, k string) bool {
	for _, d := range list {
		if d == k {
			return true
		}
	}
	return false
}
