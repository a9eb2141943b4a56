package keyvault

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// SecretID is a parsed secret identifier, https://<vault host>/secrets/<name>.
type SecretID struct {
	Host string // the vault host, lower case, e.g. contoso-sam.vault.azure.net
	Name string // the secret's name
}

// VaultURL is the vault's base URL, what azsecrets.NewClient takes.
func (id SecretID) VaultURL() string { return "https://" + id.Host }

// VaultName is the first label of the host, what az's --vault-name takes.
func (id SecretID) VaultName() string { name, _, _ := strings.Cut(id.Host, "."); return name }

// String is the identifier as users write it.
func (id SecretID) String() string { return id.VaultURL() + "/secrets/" + id.Name }

// ParseSecretID checks a secret identifier strictly, because the refresh token is
// sent to the host it names: https only, a Key Vault host (<vault name>.vault.<cloud
// domain>, so any cloud's vault works, and nothing else), no port but 443, no user
// info, no query, no fragment, and exactly /secrets/<name>.
//
// A version (/secrets/<name>/<version>, what the portal's "Secret Identifier" of one
// version shows) is refused rather than ignored: the helper always reads the latest
// version and writes new ones, so a pinned version would silently mean something else.
// The message gives the identifier to use instead.
func ParseSecretID(raw string) (SecretID, error) {
	shown := quoteShort(raw)
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2048 {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: want https://<vault>.vault.azure.net/secrets/<name>", shown)
	}
	if u.Scheme != "https" || u.Opaque != "" {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: it must start with https://", shown)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: no user, query or fragment is allowed", shown)
	}
	if p := u.Port(); p != "" && p != "443" {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: Key Vault listens on port 443 only", shown)
	}
	host := strings.ToLower(u.Hostname())
	if !isVaultHost(host) {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: %s is not a Key Vault host (<vault name>.vault.azure.net, or another cloud's vault domain)", shown, quoteShort(host))
	}
	if u.RawPath != "" {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: escaped characters are not allowed in the path", shown)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "secrets" {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: want https://%s/secrets/<name>", shown, host)
	}
	name := parts[1]
	if !isSecretName(name) {
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: a secret name has 1 to 127 letters, digits and dashes", shown)
	}
	id := SecretID{Host: host, Name: name}
	switch {
	case len(parts) == 2:
		return id, nil
	case len(parts) == 3 && parts[2] == "":
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: drop the trailing slash: %s", shown, id)
	case len(parts) == 3:
		return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: it names one version, but the helper always reads the latest and writes new versions: use %s", shown, id)
	}
	return SecretID{}, fmt.Errorf("invalid Key Vault secret identifier %s: want https://%s/secrets/<name>", shown, host)
}

// isVaultHost accepts <vault name>.vault.<domain>: a vault name of 3 to 24 letters,
// digits and single dashes, starting with a letter and not ending with a dash (Azure's
// rule), then the label "vault", then at least two DNS labels (azure.net,
// usgovcloudapi.net, azure.cn, and sovereign clouds' domains).
func isVaultHost(host string) bool {
	labels := strings.Split(host, ".")
	if len(host) > 253 || len(labels) < 4 || labels[1] != "vault" {
		return false
	}
	name := labels[0]
	if len(name) < 3 || len(name) > 24 || !isLower(name[0]) || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for _, l := range labels {
		if !isDNSLabel(l) {
			return false
		}
	}
	return !isDigit(labels[len(labels)-1][0]) // no IP address dressed as a name
}

func isDNSLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; !isLower(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func isSecretName(n string) bool {
	if n == "" || len(n) > 127 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !isLower(c) && !isDigit(c) && !(c >= 'A' && c <= 'Z') && c != '-' {
			return false
		}
	}
	return true
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoteShort quotes s for a message, cut to a readable length.
func quoteShort(s string) string {
	const maxLen = 100
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "..."
	}
	return strconv.Quote(s)
}
