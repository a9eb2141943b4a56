package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
	"github.com/pctoken/pctoken-helper/token"
)

// TokenFlags are the flags of every command that hands out a token.
type TokenFlags struct {
	Scope        []string      `short:"s" placeholder:"S" help:"Scope or alias (partner-center, arm, graph, aad-graph, exchange, azure-devops, aks); repeatable (default: the profile's first consented scope, else partner-center)."`
	MinValidity  time.Duration `name:"min-validity" default:"5m" help:"A cached token that expires sooner is refreshed."`
	ForceRefresh bool          `name:"force-refresh" help:"Skip the cache and redeem the refresh token."`
	Timeout      time.Duration `default:"30s" help:"Bound on the whole command, retries included (with --request: on each request)."`
}

// GetCmd prints an access token.
type GetCmd struct {
	TokenFlags
	Output   string `short:"o" enum:"json,token,az,azd" default:"json" help:"json, token, az or azd."`
	Request  string `placeholder:"FILE" help:"Newline-delimited JSON requests from FILE ('-' for stdin), one JSON answer line each."`
	Parallel int    `default:"16" help:"With --request: how many requests run at once."`
	Claims   string `placeholder:"JSON" help:"A claims challenge (JSON, or base64 as WWW-Authenticate gives it) the new token must satisfy; never answered from the cache."`
}

// tokenRequest builds the chain's request for a profile, tenant and scopes ("" and
// none: the given or saved defaults). Its errors name the profile.
func (a *App) tokenRequest(profileName, tenant string, scopeArgs []string, f TokenFlags) (token.Request, *settings.Profile, error) {
	s, err := a.settingsFor(profileName)
	if err != nil {
		return token.Request{}, nil, failure.WithProfile(err, a.profileName(profileName))
	}
	key, err := settings.ResolveToken(*s, a.given(), settings.Wanted{Tenant: tenant, Scopes: scopeArgs, MinValidity: f.MinValidity, Timeout: f.Timeout})
	if err != nil {
		if failure.KindOf(err) == failure.ConsentNeeded && !s.Saved {
			err = a.missingProfile(s.Name)
		}
		return token.Request{}, s, err
	}
	return token.Request{
		Profile:      key.Profile,
		ClientID:     key.ClientID,
		Authority:    key.Authority,
		Tenant:       key.Tenant,
		Scopes:       key.Scopes,
		MinValidity:  f.MinValidity,
		ForceRefresh: f.ForceRefresh,
		Session:      func() (*token.Session, error) { return a.session(s) },
	}, s, nil
}

// source is the chain: the cache around the exchange.
func (a *App) source() (token.Source, error) {
	c, err := a.openCache()
	if err != nil {
		return nil, err
	}
	return &token.Cached{Cache: c, Next: token.Exchanger{}, Now: a.Now, Warn: a.warnf}, nil
}

func (a *App) fetch(ctx context.Context, r token.Request, timeout time.Duration) (token.Token, error) {
	t, err := a.fetchToken(ctx, r, timeout)
	if err != nil {
		if s, serr := a.settingsFor(r.Profile); serr == nil {
			a.recordRefusal(s, r.Tenant, err)
			err = consentFor(err, r, s)
		}
	}
	return t, err
}

// consentFor gives a missing consent (AADSTS65001) the consent that fixes it: in the
// home tenant, consent again with the refused scope; in a customer tenant, that
// tenant's administrator consents to the app there.
func consentFor(err error, r token.Request, s *settings.Profile) error {
	var e *failure.Error
	if !errors.As(err, &e) || e.AADSTS != "65001" || e.Remedy != "" {
		return err
	}
	fixed := *e
	switch r.Tenant {
	case "organizations", s.HomeTenant, s.Account.HomeTenantID:
		fixed.Remedy = "pctoken-helper consent --profile " + r.Profile + " --scopes " + strings.Join(r.Scopes, ",")
	default:
		fixed.Remedy = "an administrator of tenant " + r.Tenant + " grants consent to the app there: " +
			s.Authority + "/" + r.Tenant + "/adminconsent?client_id=" + r.ClientID
	}
	return &fixed
}

func (a *App) fetchToken(ctx context.Context, r token.Request, timeout time.Duration) (token.Token, error) {
	src, err := a.source()
	if err != nil {
		return token.Token{}, err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	t, err := src.Token(ctx, r)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && failure.KindOf(err) == failure.Unexpected {
		err = failure.Errorf(failure.Transient, "no token within --timeout %s: %w", timeout, err)
	}
	return t, failure.WithProfile(err, r.Profile)
}

func wireToken(t token.Token, profileName string) protocol.Token {
	return protocol.Token{
		AccessToken: t.AccessToken,
		ExpiresOn:   t.ExpiresOn,
		TenantID:    t.TenantID,
		Scopes:      t.Scopes,
		Profile:     profileName,
		Cached:      t.Cached,
	}
}

func (g *GetCmd) Run(ctx context.Context, a *App) error {
	if g.Request != "" {
		return g.batch(ctx, a)
	}
	r, _, err := a.tokenRequest("", "", g.Scope, g.TokenFlags)
	if err == nil && g.Claims != "" {
		if r.Claims, err = protocol.ParseClaims(g.Claims); err != nil {
			err = usageError("--claims: %w", err)
		}
	}
	if err == nil {
		var t token.Token
		if t, err = a.fetch(ctx, r, g.Timeout); err == nil {
			return protocol.WriteOutput(a.Stdout, g.Output, wireToken(t, r.Profile))
		}
	}
	if g.Output == "json" {
		_ = protocol.WriteError(a.Stdout, errorObject(err, a.remedy(err)))
	}
	return err
}

// batch answers --request lines, several at a time. Requests are read as they are
// answered, so memory holds at most Parallel requests, not the whole input. The exit
// code is 0 when every request got a token, else that of the first failure.
func (g *GetCmd) batch(ctx context.Context, a *App) error {
	in := a.Stdin
	if g.Request != "-" {
		f, err := os.Open(g.Request)
		if err != nil {
			return usageError("failed to read requests: %w", err)
		}
		defer f.Close()
		in = f
	}
	if g.Parallel < 1 {
		return usageError("--parallel must be at least 1")
	}
	if g.Claims != "" {
		return usageError("--claims answers one challenge of one resource: it does not go with --request")
	}
	var (
		out       sync.Mutex
		firstErr  error
		failed    int
		total     int
		wg        sync.WaitGroup
		slots     = make(chan struct{}, g.Parallel)
		answerErr = func(id json.RawMessage, err error) {
			out.Lock()
			defer out.Unlock()
			if firstErr == nil {
				firstErr = err
			}
			failed++
			_ = protocol.WriteErrorResponse(a.Stdout, id, errorObject(err, a.remedy(err)))
		}
	)
	reader := protocol.NewRequestReader(in)
	for {
		req, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		total++
		if err != nil {
			var re *protocol.RequestError
			if errors.As(err, &re) {
				answerErr(re.ID, usageError("request line %d: %w", re.Line, re.Err))
				continue
			}
			answerErr(nil, usageError("failed to read requests: %w", err))
			break
		}
		flags := g.TokenFlags
		if req.MinValidity != nil {
			flags.MinValidity = *req.MinValidity
		}
		flags.ForceRefresh = flags.ForceRefresh || req.ForceRefresh
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			r, _, err := a.tokenRequest(req.Profile, req.Tenant, req.Scopes, flags)
			var t token.Token
			if err == nil {
				t, err = a.fetch(ctx, r, flags.Timeout)
			}
			if err != nil {
				answerErr(req.ID, err)
				return
			}
			out.Lock()
			defer out.Unlock()
			_ = protocol.WriteResponse(a.Stdout, req.ID, wireToken(t, r.Profile))
		}()
	}
	wg.Wait()
	if firstErr != nil {
		// The answers on stdout say what failed, request by request; stderr says that
		// something did, as every failing command does.
		a.showError(fmt.Errorf("%d of %d requests failed; the first: %w", failed, total, firstErr), a.remedy(firstErr))
		return silent{exitCode(firstErr)}
	}
	return nil
}
