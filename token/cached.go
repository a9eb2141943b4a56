package token

import (
	"context"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/internal/safefs"
	"github.com/pctoken/pctoken-helper/settings"
)

// Cached answers from the access-token cache while a token is valid for at least the
// request's MinValidity, and otherwise asks Next under the key's cross-process lock, so
// that many processes needing the same expired token cause one request upstream.
type Cached struct {
	Cache *cache.Cache
	Next  Source
	Now   func() time.Time
	Warn  func(format string, args ...any)
}

// Token returns a fresh enough cached token, or a new one from Next.
func (c *Cached) Token(ctx context.Context, r Request) (Token, error) {
	key := r.Key()
	if !r.redeem() {
		if e, ok := c.Cache.Load(key); ok && cache.Fresh(e, c.Now(), r.MinValidity) {
			return fromEntry(e), nil
		}
	}
	unlock, stored, err := c.lock(ctx, key, r)
	switch {
	case err != nil && safefs.RemedyOf(err) != "":
		// A lock folder another user can write: no one to wait for, a folder to fix.
		return Token{}, failure.Errorf(failure.Configuration, "failed to lock the cache entry: %w", err)
	case err != nil && ctx.Err() != nil:
		return Token{}, failure.Errorf(failure.Transient, "gave up waiting for another pctoken-helper refreshing the same token: %w", err)
	case err != nil:
		// The lock cannot be taken at all (a read-only cache folder, a lock path that is
		// not a plain file). Refreshing without it is safe, only not herd-proof: at worst
		// two processes redeem at once, and every rotated refresh token stays valid.
		c.warn("refreshing without the cache lock: %v", err)
		unlock = func() {}
	}
	if stored != nil {
		return fromEntry(*stored), nil
	}
	defer unlock()

	// Another process may have refreshed while this one waited for the lock.
	prev, havePrev := c.Cache.Load(key)
	if havePrev && !r.redeem() && cache.Fresh(prev, c.Now(), r.MinValidity) {
		return fromEntry(prev), nil
	}
	t, err := c.Next.Token(ctx, r)
	if err != nil {
		// A still-valid token rides out an outage, but not when the caller demanded a
		// redemption (--force-refresh, renew): that caller must learn it did not happen.
		if failure.KindOf(err) == failure.Transient && havePrev && !r.redeem() && prev.ExpiresOn.After(c.Now()) {
			c.warn("refresh failed (%v); returning the cached token, valid until %s", err, prev.ExpiresOn.UTC().Format(time.RFC3339))
			return fromEntry(prev), nil
		}
		return Token{}, err
	}
	entry := cache.Entry{
		AccessToken: t.AccessToken,
		ExpiresOn:   t.ExpiresOn,
		TenantID:    t.TenantID,
		Scopes:      t.Scopes,
		Account:     t.Account,
	}
	if err := c.Cache.Store(key, entry); err != nil {
		c.warn("could not cache the access token: %v", err)
	}
	if byID, ok := tenantIDKey(key, t.TenantID); ok {
		if err := c.Cache.Store(byID, entry); err != nil {
			c.warn("could not cache the access token under its tenant id: %v", err)
		}
	}
	return t, nil
}

// lock takes the key's cross-process lock. While another process holds it (refreshing
// the same token), lock sleeps until that process lets go, then looks at the cache:
// when the token stored there is fresh enough for r, lock returns it instead (and no
// unlock). So the waiters of a herd (64 kubectl processes on one expired token) wake
// together and leave with the new token, rather than polling the lock while the one
// refresh they wait for runs, and then taking the lock one after another only to read
// the entry. A forced refresh wants its own redemption: it waits for the lock itself.
func (c *Cached) lock(ctx context.Context, key cache.Key, r Request) (unlock func(), stored *cache.Entry, err error) {
	for {
		unlock, held, err := c.Cache.Acquire(ctx, key)
		if err != nil || held {
			return unlock, nil, err
		}
		if r.redeem() {
			continue
		}
		if e, ok := c.Cache.Load(key); ok && cache.Fresh(e, c.Now(), r.MinValidity) {
			return nil, &e, nil
		}
	}
}

// tenantIDKey is key for the tenant id the token was issued in (its tid), when the
// request named the tenant otherwise (a domain, organizations): the token is stored
// under both, so a later request by id is a hit rather than a second redemption for the
// same token. Both entries hold the same token for the same profile, so git-credential
// erase (by token) and logout (by profile) drop both.
func tenantIDKey(key cache.Key, tenantID string) (cache.Key, bool) {
	if !settings.IsGUID(tenantID) || strings.EqualFold(key.Tenant, tenantID) {
		return cache.Key{}, false
	}
	key.Tenant = tenantID
	return key, true
}

func (c *Cached) warn(format string, args ...any) {
	if c.Warn != nil {
		c.Warn(format, args...)
	}
}

func fromEntry(e cache.Entry) Token {
	return Token{
		AccessToken: e.AccessToken,
		ExpiresOn:   e.ExpiresOn,
		TenantID:    e.TenantID,
		Scopes:      e.Scopes,
		Account:     e.Account,
		Cached:      true,
	}
}
