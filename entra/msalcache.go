package entra

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"

	"github.com/pctoken/pctoken-helper/redact"
)

// rtCache is the MSAL cache accessor of one redemption. Replace hands MSAL a cache
// holding only the refresh token to redeem; Export keeps what MSAL wrote back, from
// which rotated picks the new refresh token. It lives for one MSAL call, in memory:
// saving the rotated token is the caller's job, under its own locks.
type rtCache struct {
	seed []byte

	mu       sync.Mutex
	exported []byte
}

func (c *rtCache) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.seed
	if c.exported != nil {
		b = c.exported
	}
	if b == nil {
		return nil
	}
	return u.Unmarshal(b)
}

func (c *rtCache) Export(ctx context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.exported = b
	c.mu.Unlock()
	return nil
}

// msalRefreshToken is the part of an entry of MSAL's cache schema (shared by every
// MSAL) that the helper reads and writes.
type msalRefreshToken struct {
	HomeAccountID  string `json:"home_account_id"`
	Environment    string `json:"environment"`
	CredentialType string `json:"credential_type"`
	ClientID       string `json:"client_id"`
	FamilyID       string `json:"family_id,omitempty"`
	Secret         string `json:"secret"`
}

type msalAppMetadata struct {
	ClientID    string `json:"client_id"`
	Environment string `json:"environment"`
}

type msalContract struct {
	RefreshToken map[string]msalRefreshToken `json:"RefreshToken,omitempty"`
	AppMetadata  map[string]msalAppMetadata  `json:"AppMetadata,omitempty"`
}

// seedCache builds an MSAL cache with one refresh token. The keys must be MSAL Go's
// own (lower case, "-" separated): under another key the rotated token would land in a
// second entry and MSAL might later pick the stale one.
func seedCache(homeAccountID, env, clientID, refreshToken string) []byte {
	rtKey := strings.ToLower(strings.Join([]string{homeAccountID, env, "refreshtoken", clientID}, "-"))
	metaKey := strings.ToLower(strings.Join([]string{"appmetadata", env, clientID}, "-"))
	b, _ := json.Marshal(msalContract{
		RefreshToken: map[string]msalRefreshToken{rtKey: {
			HomeAccountID:  homeAccountID,
			Environment:    env,
			CredentialType: "RefreshToken",
			ClientID:       clientID,
			Secret:         refreshToken,
		}},
		AppMetadata: map[string]msalAppMetadata{metaKey: {ClientID: clientID, Environment: env}},
	})
	return b
}

// rotated returns the refresh token MSAL received, or "" if it received none. A token
// equal to the one redeemed is not a rotation.
func (c *rtCache) rotated(redeemed string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exported == nil {
		return ""
	}
	var ct msalContract
	if err := json.Unmarshal(c.exported, &ct); err != nil {
		return ""
	}
	for _, rt := range ct.RefreshToken {
		if rt.Secret != "" && rt.Secret != redeemed {
			redact.Register(rt.Secret)
			return rt.Secret
		}
	}
	return ""
}
