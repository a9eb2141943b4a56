package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
	"github.com/pctoken/pctoken-helper/token"
)

// TokenFlags are the flags of every command that hands out a token.
type TokenFlags struct {
	Scope        []string      `short:"s" placeholder:"S" help:"Scope or alias (partner-center, arm, graph, aad-graph, exchange, azure-devops, aks); repeatable."`
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
}

// tokenRequest builds the chain's request for a profile, tenant and scopes.
func (a *App) tokenRequest(profileName, tenant string, scopeArgs []string, f TokenFlags) (token.Request, *profileSettings, error) {
	s, err := a.settingsFor(profileName)
	if err != nil {
		return token.Request{}, nil, err
	}
	if s.ClientID == "" {
		return token.Request{}, s, &failure.Error{Kind: failure.ConsentNeeded, Message: "profile " + s.Name + " was never consented (no client id)"}
	}
	if err := checkClientID(s.ClientID); err != nil {
		return token.Request{}, s, err
	}
	if f.MinValidity < 0 || f.Timeout < 0 {
		return token.Request{}, s, usageError("--min-validity and --timeout must not be negative")
	}
	tenant = a.targetTenant(s, tenant)
	if tenant == "" {
		tenant = "organizations"
	}
	if err := checkTenant(tenant); err != nil {
		return token.Request{}, s, err
	}
	r := token.Request{
		Profile:      s.Name,
		ClientID:     s.ClientID,
		Authority:    s.authorityHost,
		Tenant:       tenant,
		Scopes:       scopes(s, scopeArgs),
		MinValidity:  f.MinValidity,
		ForceRefresh: f.ForceRefresh,
		Session:      func() (*token.Session, error) { return a.session(s) },
	}
	if err := checkScopes(r.Scopes); err != nil {
		return token.Request{}, s, err
	}
	if err := oneResource(r.Scopes); err != nil {
		return token.Request{}, s, err
	}
	return r, s, nil
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
	if err != nil && ctx.Err() != nil && failure.KindOf(err) == failure.Unexpected {
		err = &failure.Error{Kind: failure.Transient, Message: "no token within --timeout " + timeout.String(), Err: err}
	}
	return t, err
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
	if err == nil {
		var t token.Token
		if t, err = a.fetch(ctx, r, g.Timeout); err == nil {
			return g.write(a, wireToken(t, r.Profile))
		}
	}
	if g.Output == "json" {
		_ = protocol.WriteError(a.Stdout, errorObject(err, a.remedy(err)))
	}
	return err
}

func (g *GetCmd) write(a *App, t protocol.Token) error {
	switch g.Output {
	case "token":
		return protocol.WriteToken(a.Stdout, t)
	case "az":
		return protocol.WriteAz(a.Stdout, t, time.Local)
	case "azd":
		return protocol.WriteAzd(a.Stdout, t)
	}
	return protocol.WriteJSON(a.Stdout, t)
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
	var (
		out       sync.Mutex
		firstErr  error
		wg        sync.WaitGroup
		slots     = make(chan struct{}, g.Parallel)
		answerErr = func(id json.RawMessage, err error, profileName string) {
			out.Lock()
			defer out.Unlock()
			if firstErr == nil {
				firstErr = err
			}
			_ = protocol.WriteErrorResponse(a.Stdout, id, errorObject(err, remedyFor(err, profileName)))
		}
	)
	reader := protocol.NewRequestReader(in)
	for {
		req, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var re *protocol.RequestError
			if errors.As(err, &re) {
				answerErr(re.ID, usageError("request line %d: %w", re.Line, re.Err), a.profileName(""))
				continue
			}
			answerErr(nil, usageError("failed to read requests: %w", err), a.profileName(""))
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
				answerErr(req.ID, err, a.profileName(req.Profile))
				return
			}
			out.Lock()
			defer out.Unlock()
			_ = protocol.WriteResponse(a.Stdout, req.ID, wireToken(t, r.Profile))
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return silent{exitCode(firstErr)}
	}
	return nil
}

// checkTenant refuses a tenant that is neither a tenant id nor a domain name. The
// tenant becomes a segment of the token endpoint's path, so a '/', '?', '%' or ".."
// would send the refresh token to another path, and an overlong one only gets an
// unclear 400 from the identity provider.
func checkTenant(t string) error {
	if !settings.IsTenant(t) {
		return usageError("invalid tenant %s: want a tenant id (GUID) or a domain such as contoso.onmicrosoft.com", quoteShort(t))
	}
	return nil
}

// checkClientID refuses anything but a GUID: Entra's application (client) ids are
// GUIDs, and anything else only gets an unclear answer from the identity provider.
func checkClientID(id string) error {
	if !settings.IsGUID(id) {
		return usageError("invalid client id %s: an application (client) id is a GUID such as 00000000-0000-0000-0000-000000000000", quoteShort(id))
	}
	return nil
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const maxLen = 80
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "..."
	}
	return strconv.Quote(s)
}
