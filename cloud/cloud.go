// Package cloud names the Microsoft clouds the helper knows (their login hosts and
// resource endpoints) and turns scope aliases such as "graph" into full scopes.
package cloud

import (
	"fmt"
	"sort"
	"strings"
)

// Cloud is one sovereign cloud of Entra ID.
type Cloud struct {
	Name      string
	LoginHost string // authority host, e.g. https://login.microsoftonline.com

	// resources maps a scope alias to its full scope in this cloud.
	resources map[string]string
}

// Well-known first-party application ids, the same in every cloud.
const (
	AzureDevOpsResource = "499b84ac-1321-427f-aa17-267ca6975798"
	AKSServerResource   = "6dae42f8-4368-4678-94ff-3960e28e3630"
)

var clouds = map[string]Cloud{
	"public": {
		Name:      "public",
		LoginHost: "https://login.microsoftonline.com",
		resources: map[string]string{
			"partner-center": "https://api.partnercenter.microsoft.com/user_impersonation",
			"arm":            "https://management.azure.com/user_impersonation",
			"graph":          "https://graph.microsoft.com/.default",
			"aad-graph":      "https://graph.windows.net/.default",
			"exchange":       "https://outlook.office365.com/.default",
		},
	},
	"usgov": {
		Name:      "usgov",
		LoginHost: "https://login.microsoftonline.us",
		resources: map[string]string{
			"partner-center": "https://api.partnercenter.microsoftonline.us/user_impersonation",
			"arm":            "https://management.usgovcloudapi.net/user_impersonation",
			"graph":          "https://graph.microsoft.us/.default",
			"aad-graph":      "https://graph.windows.net/.default",
			"exchange":       "https://outlook.office365.us/.default",
		},
	},
	"china": {
		Name:      "china",
		LoginHost: "https://login.chinacloudapi.cn",
		resources: map[string]string{
			"partner-center": "https://partner.partnercenterapi.microsoftonline.cn/user_impersonation",
			"arm":            "https://management.chinacloudapi.cn/user_impersonation",
			"graph":          "https://microsoftgraph.chinacloudapi.cn/.default",
			"aad-graph":      "https://graph.chinacloudapi.cn/.default",
			"exchange":       "https://partner.outlook.cn/.default",
		},
	},
}

// Every cloud shares the first-party resources identified by application id.
var commonResources = map[string]string{
	"azure-devops": AzureDevOpsResource + "/.default",
	"aks":          AKSServerResource + "/.default",
}

// microsoftHosts are the login hosts for which MSAL's instance discovery is meaningful;
// any other host is a private identity provider that must be reached fully offline.
var microsoftHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoftonline.us":         true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.windows.net":                true,
	"login.microsoft.com":              true,
	"sts.windows.net":                  true,
}

// Lookup returns the cloud called name ("" means public).
func Lookup(name string) (Cloud, error) {
	if name == "" {
		name = "public"
	}
	c, ok := clouds[strings.ToLower(name)]
	if !ok {
		return Cloud{}, fmt.Errorf("unknown cloud %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return c, nil
}

// Names lists the known clouds.
func Names() []string {
	names := make([]string, 0, len(clouds))
	for n := range clouds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Aliases lists the scope aliases, sorted.
func Aliases() []string {
	var names []string
	for n := range clouds["public"].resources {
		names = append(names, n)
	}
	for n := range commonResources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Scope resolves a scope alias in c; anything that is not an alias is returned as is.
func (c Cloud) Scope(s string) string {
	if full, ok := c.resources[strings.ToLower(s)]; ok {
		return full
	}
	if full, ok := commonResources[strings.ToLower(s)]; ok {
		return full
	}
	return s
}

// DefaultScope is what consent asks for and get uses when no scope is given: Partner
// Center's user_impersonation, the scope the Secure Application Model exists for.
func (c Cloud) DefaultScope() string { return c.Scope("partner-center") }

// NormalizeAuthorityHost checks an authority host URL, which must be scheme and host
// only (a trailing "/" is dropped), so that the same host always yields the same cache
// key and MSAL environment.
//
// It reads the URL itself rather than with net/url: a get answered from the cache runs
// before the heavy packages are initialised (cli/hit), and importing net/url here
// would make every such get wait for them. It accepts what url.Parse accepts for
// "https://" + host + optional port + optional "/" (host: letters, digits, '-', '.',
// '_', '~', or an IPv6 address in brackets) and gives the same result; the rarer hosts
// url.Parse also takes (percent-escapes, sub-delimiters, an IPv6 zone, no name before
// the port) are refused. cloud's tests compare the two.
func NormalizeAuthorityHost(raw string) (string, error) {
	scheme, rest, ok := "", "", false
	if s := strings.TrimSpace(raw); strings.HasPrefix(s, "//") {
		rest = s[2:] // no scheme: refused below for not being https
	} else if scheme, rest, ok = strings.Cut(s, "://"); !ok || !validScheme(scheme) {
		return "", fmt.Errorf("authority host %q is not a URL like https://login.microsoftonline.com", raw)
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	host, user := authority, false
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		host, user = authority[i+1:], true
	}
	if !validHostPort(host) {
		return "", fmt.Errorf("authority host %q is not a URL like https://login.microsoftonline.com", raw)
	}
	if !strings.EqualFold(scheme, "https") {
		return "", fmt.Errorf("authority host %q must use https", raw)
	}
	// An empty query or fragment is no query or fragment, as for url.Parse.
	path := tail
	if i := strings.IndexByte(path, '#'); i >= 0 {
		user = user || path[i+1:] != ""
		path = path[:i]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		user = user || path[i+1:] != ""
		path = path[:i]
	}
	if user || (path != "" && path != "/") {
		return "", fmt.Errorf("authority host %q must be scheme and host only", raw)
	}
	return "https://" + strings.ToLower(host), nil
}

// validScheme is RFC 3986's scheme: a letter, then letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// validHostPort accepts a host name of letters, digits, '-', '.', '_' and '~', or an
// IPv6 address in brackets, optionally followed by ':' and a port of digits.
func validHostPort(hp string) bool {
	host, port := hp, ""
	if hp == "" {
		return false
	}
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return false
		}
		host, port = hp[:end+1], hp[end+1:]
		if !validIPv6(host[1:end]) {
			return false
		}
	} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i:]
		if host == "" || !allBytes(host, isHostByte) {
			return false
		}
	} else if !allBytes(host, isHostByte) {
		return false
	}
	if port != "" && (port[0] != ':' || !allBytes(port[1:], isDigit)) {
		return false
	}
	return true
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

// validIPv6 accepts an IPv6 address written as hexadecimal groups: eight of them, or
// fewer with one "::" (no zone, no dotted IPv4 tail).
func validIPv6(s string) bool {
	left, right, elided := strings.Cut(s, "::")
	groups := 0
	for _, part := range []string{left, right} {
		if part == "" {
			continue
		}
		for _, g := range strings.Split(part, ":") {
			if len(g) < 1 || len(g) > 4 || !allBytes(g, isHexDigit) {
				return false
			}
			groups++
		}
	}
	if elided {
		return groups <= 7
	}
	return groups == 8
}

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// IsMicrosoftHost reports whether the authority host belongs to a Microsoft cloud. For
// any other host, instance discovery is switched off so nothing reaches the internet.
// It takes an authority host as NormalizeAuthorityHost returns it (or a cloud's
// LoginHost); anything else is not a Microsoft host.
func IsMicrosoftHost(authorityHost string) bool {
	norm, err := NormalizeAuthorityHost(authorityHost)
	if err != nil {
		return false
	}
	host := strings.TrimPrefix(norm, "https://")
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return microsoftHosts[host]
}

// AliasOf is the alias of a full scope in c ("graph" for
// https://graph.microsoft.com/.default), "" when it is no alias's scope.
func (c Cloud) AliasOf(scope string) string {
	for _, a := range Aliases() {
		if full := c.Scope(a); full != a && strings.EqualFold(full, scope) {
			return a
		}
	}
	return ""
}
