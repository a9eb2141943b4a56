package settings

import (
	"strings"

	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/failure"
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
			if near := Nearest(s, known); near != "" {
				msg = "unknown scope " + QuoteShort(s) + ": did you mean " + near + "? (aliases: " + strings.Join(cloud.Aliases(), ", ") + ")"
			}
			return &failure.Error{Kind: failure.Usage, Message: msg, Remedy: "pctoken-helper get --scope " + orFirst(Nearest(s, known), "graph")}
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

// Nearest is the candidate closest to word by edit distance (case ignored), if one is
// close enough to be what was meant: at most a third of the word's letters apart, and
// never more than three.
func Nearest(word string, candidates []string) string {
	best, bestD := "", 0
	limit := min(3, max(1, len(word)/3))
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (adjacent swaps count one), the
// usual measure of a typing mistake.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
