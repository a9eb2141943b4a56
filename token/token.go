// Package token is the chain behind get, read the way oauth2 reads: a Source hands out
// access tokens; Cached wraps the Source that exchanges the stored refresh token, and
// answers from the on-disk cache while a token is valid long enough. Nothing in the
// chain ever prompts: when a person is needed, the error says so.
package token

import (
	"context"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/entra"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/securestore"
)

// Request asks for an access token to Scopes in Tenant, for a profile's app.
type Request struct {
	Profile   string
	ClientID  string
	Authority string // authority host
	Tenant    string // the target tenant; the profile's home tenant when it is that one
	Scopes    []string

	MinValidity  time.Duration
	ForceRefresh bool
	// Claims is a claims challenge the token must satisfy (get --claims): never
	// answered from the cache, whose tokens were not issued for it.
	Claims string

	// Session opens what redeeming the profile's refresh token needs. It runs only on a
	// cache miss, so a hit never touches the secure store. It is not part of the key.
	Session func() (*Session, error)
}

// redeem tells whether r must be answered by a redemption, not from the cache.
func (r Request) redeem() bool { return r.ForceRefresh || r.Claims != "" }

// Key is the request's access-token cache key.
func (r Request) Key() cache.Key {
	return cache.Key{Profile: r.Profile, ClientID: r.ClientID, Authority: r.Authority, Tenant: r.Tenant, Scopes: r.Scopes}
}

// Token is an access token with what the outputs report about it.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
	TenantID    string
	Scopes      []string
	Account     string
	Cached      bool
}

// Source hands out access tokens.
type Source interface {
	Token(ctx context.Context, r Request) (Token, error)
}

// Exchanger is the Source that redeems the profile's refresh token at the identity
// provider and keeps the rotated one.
type Exchanger struct{}

// Token redeems r.Session's refresh token for r's scopes in r's tenant.
func (Exchanger) Token(ctx context.Context, r Request) (Token, error) {
	s, err := r.Session()
	if err != nil {
		return Token{}, err
	}
	rt, err := s.RefreshToken.GetContext(ctx)
	if err != nil {
		return Token{}, err
	}
	var opts []entra.RedeemOption
	if r.Claims != "" {
		opts = append(opts, entra.WithClaims(r.Claims))
	}
	t, err := s.App.Redeem(ctx, rt, s.Account, r.Tenant, r.Scopes, opts...)
	if failure.KindOf(err) == failure.ConsentNeeded {
		// Before asking for a person: a store shared by a fleet may hold a token newer
		// than the one refused (a consent again on another machine).
		if fresh, ok := s.RefreshToken.Reload(ctx, rt); ok {
			t, err = s.App.Redeem(ctx, fresh, s.Account, r.Tenant, r.Scopes, opts...)
		}
	}
	if err != nil {
		return Token{}, err
	}
	if t.RefreshToken != "" {
		if err := s.RefreshToken.RotateContext(ctx, t.RefreshToken); err != nil && securestore.WriteRequired(ctx) {
			// renew: the save was the point. A store's own failure keeps its kind (a
			// vault that is down is transient); anything else is the store's setup.
			if failure.KindOf(err) == failure.Unexpected {
				err = failure.Errorf(failure.Configuration, "failed to save the rotated refresh token: %w", err)
			}
			return Token{}, err
		} else if err != nil {
			// The redeemed token stays valid (Entra does not revoke a refresh token
			// when it rotates), so the access token is still worth returning.
			s.warn("could not save the rotated refresh token (the previous one stays in use): %v", err)
		}
	}
	return Token{
		AccessToken: t.AccessToken,
		ExpiresOn:   t.ExpiresOn,
		TenantID:    t.TenantID,
		Scopes:      t.Scopes,
		Account:     t.Account.Username,
	}, nil
}

// Session is what redeeming a profile's refresh token needs.
type Session struct {
	App          entra.App
	Account      entra.Account
	RefreshToken *RefreshToken
	Warn         func(format string, args ...any)
}

func (s *Session) warn(format string, args ...any) {
	if s.Warn != nil {
		s.Warn(format, args...)
	}
}
