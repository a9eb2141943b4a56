package settings

import (
	"strings"

	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/suggest"
)

// oidcScopes are the scopes Entra takes as bare words besides the aliases.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// CheckScopes refuses scopes Entra could only answer with an error, before anything is
// sent: a bare word (no "." or "/", so not a permission such as User.Read nor a
// resource's scope) that is neither an alias nor an OIDC scope is a typo, named with
// the nearest alias; text that is not UTF-8 or holds control characters is refused as
// it is in a tenant.
func CheckScopes(given []string) error {
	for _, g := range given {
		for _, s := range strings.Fields(strings.ReplaceAll(g, ",", " ")) {
			if !IsScope(s) {
				return failure.Errorf(failure.Usage, "invalid scope %s: a scope is text without control characters, such as https://graph.microsoft.com/.default", QuoteShort(s))
			}
			if strings.ContainsAny(s, "./") || isAlias(s) {
				continue
			}
			known := append(cloud.Aliases(), oidcScopes...)
			msg := "unknown scope " + QuoteShort(s) + ": not an alias (" + strings.Join(cloud.Aliases(), ", ") + ") nor a full scope such as https://graph.microsoft.com/.default"
			if near := suggest.Nearest(s, known); near != "" {
				msg = "unknown scope " + QuoteShort(s) + ": did you mean " + near + "? (aliases: " + strings.Join(cloud.Aliases(), ", ") + ")"
			}
			return &failure.Error{Kind: failure.Usage, Message: msg, Remedy: "pctoken-helper get --scope " + orFirst(suggest.Nearest(s, known), "graph")}
		}
	}
	return nil
}

func isAlias(s string) bool {
	for _, a := range append(cloud.Aliases(), oidcScopes...) {
		if strings.EqualFold(a, s) {
			return true
		}
	}
	return false
}

func orFirst(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
