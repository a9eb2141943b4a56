package cloud

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// normalizeWithURL is NormalizeAuthorityHost as it was written on net/url, kept as the
// reference the hand-written one must agree with.
func normalizeWithURL(raw string) (string, error) {
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

// plainHost reports whether url.Parse reads raw as a URL whose host (port included)
// is of the kind NormalizeAuthorityHost promises to take: a name of letters, digits,
// '-', '.', '_', '~', or a bracketed IPv6 address, with an optional port of digits.
func plainHost(raw string) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || strings.Contains(u.Host, "%") {
		return false
	}
	return validHostPort(u.Host)
}

var authorityCorpus = []string{
	"https://127.0.0.1:8443", "https://Login.MicrosoftOnline.com/", "https://login.microsoftonline.us",
	"HTTPS://LOGIN.CHINACLOUDAPI.CN", " https://h:1 ", "https://[::1]:8443", "https://[::1]", "https://[fe80::1%25en0]:1",
	"https://h:", "https://:8443", "https://h:x", "https://h/tenant", "https://h//", "https://h/?", "https://h#",
	"https://h?x=1", "https://h#f", "https://u:p@h", "https://u@h/", "https://@h", "https:///x", "https:///@x",
	"https://u:p@/x", "https://a?b@c", "https://a://b", "http://127.0.0.1", "ftp://h", "1https://h", "https:/h",
	"127.0.0.1:8443", "h", "", "https://", "https://a b", "https://a\x00", "https://ex%41mple.com", "https://a!b",
	"https://a_b~c.example:443", "https://[::1", "https://[]", "https://[g::1]", "mailto:a@b", "https://h:8443/",
}

// NormalizeAuthorityHost never gives another answer than the net/url version: what it
// accepts, that accepts the same way; every plain host that accepts, it accepts too;
// and where that refuses, it refuses with the same message.
func checkAuthority(t *testing.T, raw string) {
	got, err := NormalizeAuthorityHost(raw)
	want, werr := normalizeWithURL(raw)
	switch {
	case err == nil && (werr != nil || got != want):
		t.Errorf("NormalizeAuthorityHost(%q) = %q; the net/url version: %q, %v", raw, got, want, werr)
	case err != nil && werr == nil && plainHost(raw):
		t.Errorf("NormalizeAuthorityHost(%q) refuses a plain host (%v); the net/url version: %q", raw, err, want)
	case err != nil && werr != nil && plainHost(raw) && err.Error() != werr.Error():
		t.Errorf("NormalizeAuthorityHost(%q) says %q; the net/url version: %q", raw, err, werr)
	}
}

func TestNormalizeAuthorityHostAgreesWithNetURL(t *testing.T) {
	for _, raw := range authorityCorpus {
		checkAuthority(t, raw)
	}
	for raw, want := range map[string]string{
		"https://Login.MicrosoftOnline.com/": "https://login.microsoftonline.com",
		" https://[::1]:8443 ":               "https://[::1]:8443",
	} {
		if got, err := NormalizeAuthorityHost(raw); err != nil || got != want {
			t.Errorf("NormalizeAuthorityHost(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

func FuzzNormalizeAuthorityHost(f *testing.F) {
	for _, raw := range authorityCorpus {
		f.Add(raw)
	}
	f.Fuzz(checkAuthority)
}

// IsMicrosoftHost gives the net/url version's answer for every authority host the
// helper passes it: a cloud's login host or a normalized one.
func TestIsMicrosoftHostAgreesWithNetURL(t *testing.T) {
	isMicrosoft := func(h string) bool {
		u, err := url.Parse(h)
		return err == nil && microsoftHosts[strings.ToLower(u.Hostname())]
	}
	var hosts []string
	for _, c := range clouds {
		hosts = append(hosts, c.LoginHost)
	}
	for h := range microsoftHosts {
		hosts = append(hosts, "https://"+h, "https://"+strings.ToUpper(h)+":443/", "https://"+h+".example")
	}
	hosts = append(hosts, authorityCorpus...)
	for _, raw := range hosts {
		norm, err := NormalizeAuthorityHost(raw)
		if err != nil {
			if IsMicrosoftHost(raw) {
				t.Errorf("IsMicrosoftHost(%q) is true for a host NormalizeAuthorityHost refuses", raw)
			}
			continue
		}
		if got, want := IsMicrosoftHost(norm), isMicrosoft(norm); got != want {
			t.Errorf("IsMicrosoftHost(%q) = %v, the net/url version %v", norm, got, want)
		}
	}
}
