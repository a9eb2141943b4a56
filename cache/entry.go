package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultMinValidity is how long a cached token must still be valid to be handed
// out when the caller names no margin: long enough for the kubectl or git command
// that asked to finish with it, and the margin MSAL itself keeps before it
// refreshes, so a token this cache serves would also be served by MSAL.
const DefaultMinValidity = 5 * time.Minute

// Entry is one cached access token.
type Entry struct {
	AccessToken string
	// ExpiresOn is persisted as whole unix seconds, rounded down: a token never
	// comes back from disk valid for longer than it was, so a margin checked
	// with Fresh holds after the round trip.
	ExpiresOn time.Time
	TenantID  string   // tenant the token was issued in (its tid)
	Scopes    []string // granted scopes
	// Key is the canonical key the entry was stored under. It is kept in the file
	// so that status can list entries, and so that a file whose key differs from
	// the one asked for (a hash collision, a file put there by hand) is a miss.
	Key     Key
	Account string // UPN, for status
}

// Fresh reports whether e is valid for at least minValidity at now: exactly
// minValidity left is fresh, a nanosecond less is not. A negative minValidity
// counts as zero, so an expired token is never fresh.
func Fresh(e Entry, now time.Time, minValidity time.Duration) bool {
	if e.AccessToken == "" || e.ExpiresOn.IsZero() {
		return false
	}
	return !e.ExpiresOn.Before(now.Add(max(minValidity, 0)))
}

// formatVersion is the on-disk format; a file with another version is a miss and
// is replaced on the next store.
const formatVersion = 1

// diskEntry is the file format, kept apart from Entry so that renaming a Go field
// never changes what is on disk.
type diskEntry struct {
	Version     int      `json:"v"`
	Key         diskKey  `json:"key"`
	AccessToken string   `json:"access_token"`
	ExpiresOn   int64    `json:"expires_on"` // unix seconds; the expiry itself, never a lifetime
	TenantID    string   `json:"tenant_id,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	Account     string   `json:"account,omitempty"`
}

type diskKey struct {
	Profile   string   `json:"profile"`
	ClientID  string   `json:"client_id"`
	Authority string   `json:"authority"`
	Tenant    string   `json:"tenant"`
	Scopes    []string `json:"scopes"`
}

// encodeEntry renders e as stored under k, which must be canonical.
func encodeEntry(k Key, e Entry) ([]byte, error) {
	if e.AccessToken == "" {
		return nil, errors.New("entry has no access token")
	}
	if e.ExpiresOn.Unix() <= 0 {
		return nil, errors.New("entry has no expiry")
	}
	d := diskEntry{
		Version: formatVersion,
		Key: diskKey{
			Profile:   k.Profile,
			ClientID:  k.ClientID,
			Authority: k.Authority,
			Tenant:    k.Tenant,
			Scopes:    k.Scopes,
		},
		AccessToken: e.AccessToken,
		ExpiresOn:   e.ExpiresOn.Unix(),
		TenantID:    e.TenantID,
		Scopes:      e.Scopes,
		Account:     e.Account,
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeEntry parses a cache file. Anything but a complete entry of this format
// version, with a canonical key, is an error, which callers treat as a miss.
func decodeEntry(data []byte) (Entry, error) {
	var d diskEntry
	if err := json.Unmarshal(data, &d); err != nil {
		return Entry{}, err
	}
	if d.Version != formatVersion {
		return Entry{}, fmt.Errorf("format version %d, want %d", d.Version, formatVersion)
	}
	if d.AccessToken == "" {
		return Entry{}, errors.New("no access token")
	}
	if d.ExpiresOn <= 0 {
		return Entry{}, errors.New("no expiry")
	}
	k := Key{
		Profile:   d.Key.Profile,
		ClientID:  d.Key.ClientID,
		Authority: d.Key.Authority,
		Tenant:    d.Key.Tenant,
		Scopes:    d.Key.Scopes,
	}
	if !k.equal(k.Canonical()) {
		return Entry{}, errors.New("key is not in canonical form")
	}
	return Entry{
		AccessToken: d.AccessToken,
		ExpiresOn:   time.Unix(d.ExpiresOn, 0).UTC(),
		TenantID:    d.TenantID,
		Scopes:      d.Scopes,
		Key:         k,
		Account:     d.Account,
	}, nil
}
