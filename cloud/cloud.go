// Package cloud names the Microsoft clouds the helper knows (their login hosts and
// resource endpoints) and turns scope aliases such as "graph" into full scopes.
package cloud

import (
	"fmt"
	"net/url"
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

// NormalizeAuthorityHost checks an authority host URL and strips any path, so that the
// same host always yields the same cache key and MSAL environment.
func NormalizeAuthorityHost(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("authority host %q is not a URL like https://login.microsoftonline.com", raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("authority host %q must use https", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("authority host %q must be scheme and host only", raw)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// IsMicrosoftHost reports whether the authority host belongs to a Microsoft cloud. For
// any other host, instance discovery is switched off so nothing reaches the internet.
func IsMicrosoftHost(authorityHost string) bool {
	u, err := url.Parse(authorityHost)
	if err != nil {
		return false
	}
	return microsoftHosts[strings.ToLower(u.Hostname())]
}
