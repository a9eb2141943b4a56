package entra

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/redact"
	"github.com/pctoken/pctoken-helper/settings"
)

// MaxLifetime is the longest lifetime believed in a token answer. Entra's access
// tokens live 60-90 minutes by default; a token lifetime policy allows at most a
// day, and tokens of CAE-capable clients live up to 28 hours. Beyond 30 hours the
// answer is wrong, whatever sent it, and caching it would hand out a token long
// after the resource stopped accepting it.
const MaxLifetime = 30 * time.Hour

// vet refuses a token that is plainly wrong for the request, before it is returned
// or cached, and sets its expiry to the earlier of the answer's and the access
// token's own exp. Signatures are not verified: the helper is not the resource, and
// an opaque (non-JWT) token, which Entra issues for some first-party resources, only
// gets the lifetime checks.
//
// requested is the tenant asked for ("" for the app's home tenant), home the
// account's home tenant id when known, scopes the resource scopes asked for.
func (a App) vet(t *Token, claims jwtClaims, requested, home string, scopes []string, now time.Time) error {
	if life := t.ExpiresOn.Sub(now); life > MaxLifetime {
		return &failure.Error{Kind: failure.Transient, Message: fmt.Sprintf(
			"the identity provider gave the access token a lifetime of %s, more than the %s any Entra token lives: refused, not cached",
			life.Round(time.Minute), MaxLifetime)}
	}
	// An exp beyond year 33658 cannot lower the expiry, and would not fit a time.
	if claims.Exp != nil && *claims.Exp < 1e12 {
		if exp := time.Unix(int64(*claims.Exp), 0); exp.Before(t.ExpiresOn) {
			t.ExpiresOn = exp
		}
	}
	if !t.ExpiresOn.After(now) {
		return &failure.Error{Kind: failure.Transient, Message: fmt.Sprintf(
			"the identity provider sent an access token that has already expired (at %s; check this machine's clock if that looks wrong): refused, not cached",
			t.ExpiresOn.UTC().Format(time.RFC3339))}
	}
	if !claims.readable {
		return nil
	}
	if want := expectedTenant(requested, a.HomeTenant, home); want != "" && claims.TenantID != "" && !strings.EqualFold(claims.TenantID, want) {
		return &failure.Error{Kind: failure.Configuration, Message: fmt.Sprintf(
			"the identity provider issued a token for tenant %s, not for the requested tenant %s: refused, not cached (check --authority-host and any proxy in between)",
			redact.Clean(claims.TenantID), want)}
	}
	if len(scopes) > 0 {
		want := resourceOf(scopes[0])
		if auds := claims.audiences(); len(auds) > 0 && !anyAudienceMatches(auds, want) {
			return &failure.Error{Kind: failure.Configuration, Message: fmt.Sprintf(
				"the identity provider issued a token for %s, not for the requested resource %s: refused, not cached (check --authority-host and any proxy in between)",
				redact.Clean(strings.Join(auds, " ")), want)}
		}
	}
	return nil
}

// expectedTenant is the tenant id a token must name, "" when it cannot be known
// without another lookup. A tenant id asked for is expected as it is; the home
// tenant (asked for by "" or by its own name) is its id when the profile knows it;
// "organizations" and "common" issue in the account's home tenant. A domain names
// a tenant whose id only the identity provider's metadata knows: not checked (name
// customers by id, as `tenants -o ndjson` does, to have the check).
func expectedTenant(requested, appHome, accountHome string) string {
	t := requested
	if t == "" {
		t = appHome
	}
	switch {
	case settings.IsGUID(t):
		return strings.ToLower(t)
	case strings.EqualFold(t, "organizations") || strings.EqualFold(t, "common") || t == "":
		if settings.IsGUID(accountHome) {
			return strings.ToLower(accountHome)
		}
	}
	return ""
}

// resourceOf is the resource a scope names: what precedes its last "/", or
// Microsoft Graph for a bare permission such as User.Read.
func resourceOf(scope string) string {
	i := strings.LastIndex(scope, "/")
	if i <= 0 {
		return "https://graph.microsoft.com"
	}
	if r := strings.TrimRight(scope[:i], "/"); r != "" {
		return r
	}
	return "https://graph.microsoft.com"
}

// wellKnown maps the identifier URIs of Microsoft's own resources to their app ids:
// a v2.0 token names the app id where a v1.0 token names the URI, and some
// resources answer to several URIs.
var wellKnown = map[string]string{}

func init() {
	for id, uris := range map[string][]string{
		"00000003-0000-0000-c000-000000000000": {"https://graph.microsoft.com", "https://canary.graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us", "https://microsoftgraph.chinacloudapi.cn"},
		"00000002-0000-0000-c000-000000000000": {"https://graph.windows.net", "https://graph.chinacloudapi.cn"},
		"797f4846-ba00-4fd7-ba43-dac1f8f63013": {"https://management.azure.com", "https://management.core.windows.net", "https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net", "https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn"},
		"fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd": {"https://api.partnercenter.microsoft.com", "https://api.partnercenter.microsoftonline.us", "https://partner.partnercenterapi.microsoftonline.cn"},
		"00000002-0000-0ff1-ce00-000000000000": {"https://outlook.office365.com", "https://outlook.office.com", "https://outlook.office365.us", "https://partner.outlook.cn"},
		"499b84ac-1321-427f-aa17-267ca6975798": {"https://app.vssps.visualstudio.com"},
		"cfa8b339-82a2-471a-a3c9-0fc0be7a4093": {"https://vault.azure.net", "https://vault.usgovcloudapi.net", "https://vault.azure.cn"},
		"e406a681-f3d4-42a8-90b6-c2b029497af1": {"https://storage.azure.com"},
	} {
		for _, u := range uris {
			wellKnown[u] = id
		}
	}
}

func normResource(r string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(r), "/"))
}

// appIDOf is the app id a resource names, "" when the helper cannot know it.
func appIDOf(r string) string {
	if settings.IsGUID(r) {
		return r
	}
	return wellKnown[r]
}

// audienceMatches reports whether a token's aud can be the resource asked for. It
// refuses only what is plainly another resource: two app ids, or two URIs on other
// hosts; an app id against a URI the helper does not know cannot be told apart.
func audienceMatches(aud, resource string) bool {
	aud, resource = normResource(aud), normResource(resource)
	if aud == resource {
		return true
	}
	if a, r := appIDOf(aud), appIDOf(resource); a != "" && r != "" {
		return a == r
	}
	au, aerr := url.Parse(aud)
	ru, rerr := url.Parse(resource)
	if aerr == nil && rerr == nil && au.Host != "" && ru.Host != "" {
		return au.Scheme == ru.Scheme && au.Host == ru.Host
	}
	return true
}

func anyAudienceMatches(auds []string, resource string) bool {
	for _, a := range auds {
		if audienceMatches(a, resource) {
			return true
		}
	}
	return false
}

// audiences is the aud claim, a string or a list of strings.
func (c jwtClaims) audiences() []string {
	if len(c.Aud) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}
