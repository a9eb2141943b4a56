package cli

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/pctoken/pctoken-helper/protocol"
)

// ExecCredentialCmd is the kubectl / client-go exec credential plugin.
type ExecCredentialCmd struct {
	TokenFlags
}

func (e *ExecCredentialCmd) Run(ctx context.Context, a *App) error {
	info, err := protocol.ParseExecInfo(a.Getenv("KUBERNETES_EXEC_INFO"))
	if err != nil {
		return usageError("%w", err)
	}
	// kubectl marks a run where nobody can answer a prompt; then none is shown.
	a.NonInteractive = !info.Interactive
	// Settings from the cluster's exec extension apply where no flag or variable set them.
	g, scopeArgs, err := a.given().WithCluster(e.Scope, info.Cluster.Profile, info.Cluster.Tenant, info.Cluster.Scopes)
	if err != nil {
		return err
	}
	r, _, err := a.tokenRequest(g.Profile, g.Tenant, scopeArgs, e.TokenFlags)
	if err != nil {
		return err
	}
	t, err := a.fetch(ctx, r, e.Timeout)
	if err != nil {
		return err
	}
	return protocol.WriteExecCredential(a.Stdout, info.APIVersion, t.AccessToken, t.ExpiresOn)
}

// GitCredentialCmd is the git credential helper.
type GitCredentialCmd struct {
	TokenFlags
	Host     []string `placeholder:"GLOB" default:"dev.azure.com,*.visualstudio.com" help:"Hosts that may receive a token (glob, repeatable)."`
	Username string   `default:"pctoken" help:"User name handed to git."`
	Verb     string   `arg:"" help:"get, store or erase (other verbs are ignored, as git expects)."`
}

func (g *GitCredentialCmd) Run(ctx context.Context, a *App) error {
	if g.Verb != "get" && g.Verb != "erase" {
		return nil // store and verbs of later gits: nothing to do
	}
	req, err := protocol.ReadGitRequest(a.Stdin)
	if err != nil {
		return usageError("git credential request: %w", err)
	}
	if !g.allowed(req) {
		// git shows the helper's stderr, and would otherwise only say that it could not
		// read a user name.
		fmt.Fprintf(a.Stderr, "pctoken-helper: no token for %s://%s: only https hosts matching --host (%s) get one\n",
			shown(req.Protocol), shown(req.Host), strings.Join(g.Host, ", "))
		return nil
	}
	if g.Verb == "erase" {
		if req.Password == "" {
			return nil
		}
		c, err := a.openCache()
		if err != nil {
			return err
		}
		dropped, err := c.DeleteToken(req.Password)
		if dropped {
			a.logf("git-credential: dropped the rejected token from the cache")
		}
		return err
	}
	a.NonInteractive = true // git may run without a terminal; never prompt
	r, _, err := a.tokenRequest("", "", g.Scope, g.TokenFlags)
	if err != nil {
		return err
	}
	t, err := a.fetch(ctx, r, g.Timeout)
	if err != nil {
		return err
	}
	return protocol.WriteGitAnswer(a.Stdout, protocol.GitAnswer{
		Username:  g.Username,
		Password:  t.AccessToken,
		ExpiryUTC: t.ExpiresOn,
		Bearer:    req.Offers("authtype"),
	})
}

// allowed reports whether the request is for an https host matching one of the
// globs: a token must never reach another server, nor travel in clear text.
func (g *GitCredentialCmd) allowed(req protocol.GitRequest) bool {
	if req.Protocol != "https" || !gitHostOK(req.Host) {
		return false
	}
	host := strings.ToLower(req.Host)
	for _, pattern := range g.Host {
		if ok, err := path.Match(strings.ToLower(pattern), host); err == nil && ok {
			return true
		}
	}
	return false
}
