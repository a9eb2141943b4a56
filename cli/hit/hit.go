// Package hit answers the commonest commands of all, a get or a kubectl exec-credential
// that the access-token cache can answer, before the rest of the program has started.
//
// Every process of a Go program initialises every package it links before main runs.
// For pctoken-helper that is MSAL, kong, net/http, crypto/tls, keyring and their
// dependencies: about 1 ms of package initialisation, and kong then builds its model of
// the whole command line by reflection on every run, another 1 to 2 ms. A cache hit
// itself is one small profile file and one small cache file. Measured as whole
// processes (docs/performance.md), the hit took 3.5 times as long as a static Go
// hello-world; issue 7 asks for at most 2.
//
// So the program's main package imports hit/early, whose init runs Run while little
// more than the os package has been initialised (see early for why it runs that
// early). Run answers only a plain get or exec-credential: the command first, then
// flags it knows, each once, with values it can take exactly as kong would; a profile
// and a cache entry that give a fresh token for one scope; nothing verbose. For
// anything else it answers nothing and the program starts as usual, so the full
// command line (kong) and the full chain handle it: every error, every refresh, every
// message comes from there. Run never writes a byte unless it has the whole answer.
//
// What Run computes must be exactly what cli computes for the same command line and
// environment. The tests of this package hold it to that: for a corpus of command
// lines and environments they compare its output, byte for byte, with cli.Run's, and
// they check its table of flags against the kong tags of cli's structs, so that a flag
// added there without being added here fails a test instead of changing an answer. A
// check added to cli's token commands (like checkTenant) needs its twin here, or a
// case in the tests showing it cannot matter on a cache hit.
package hit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/profile"
	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
)

// Run answers args (without the program name) from the cache if it is a get the cache
// can answer; handled is false, and nothing was written, otherwise. The environment is
// the process's, read as kong reads it.
func Run(args []string, stdout, stderr io.Writer, now time.Time) (code int, handled bool) {
	in, ok := parse(args, os.LookupEnv)
	if !ok {
		return 0, false
	}
	var out bytes.Buffer
	switch in.cmd {
	case cmdGet:
		t, ok := lookup(in, "", "", in.scopes, now)
		if !ok || write(&out, in.output, t) != nil {
			return 0, false // a token the output refuses: let the full path say so
		}
	case cmdExecCredential:
		// As cli's ExecCredentialCmd: the cluster's exec extension fills in what no
		// flag or variable set.
		info, err := protocol.ParseExecInfo(os.Getenv("KUBERNETES_EXEC_INFO"))
		if err != nil {
			return 0, false
		}
		scopes := in.scopes
		if len(scopes) == 0 {
			scopes = info.Cluster.Scopes
		}
		t, ok := lookup(in, info.Cluster.Profile, info.Cluster.Tenant, scopes, now)
		if !ok || protocol.WriteExecCredential(&out, info.APIVersion, t.AccessToken, t.ExpiresOn) != nil {
			return 0, false
		}
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		// As cli reports a failed write of the answer.
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1, true
	}
	return 0, true
}

// lookup is cli's tokenRequest and the cache's Load and Fresh, for the one shape of
// request Run handles; ok is false wherever cli would do anything else. profileName
// and tenant apply where no flag or variable set them (cli's explicit arguments);
// scopes are those given.
func lookup(in input, profileName, tenantName string, given []string, now time.Time) (protocol.Token, bool) {
	name := in.str(flagProfile)
	if name == "" {
		name = profileName
	}
	if name == "" {
		name = profile.Default
	}
	if profile.ValidName(name) != nil {
		return protocol.Token{}, false
	}
	configDir, err := settings.Dir(in.str(flagConfigDir), os.UserConfigDir)
	if err != nil {
		return protocol.Token{}, false
	}
	p, err := profile.Dir(filepath.Join(configDir, "profiles")).Load(name)
	if err != nil && !errors.Is(err, profile.ErrNotFound) {
		return protocol.Token{}, false
	}
	// flag > environment > saved profile > default, as cli's settingsFor.
	override(&p.ClientID, in.str(flagClientID))
	override(&p.Cloud, in.str(flagCloud))
	override(&p.AuthorityHost, in.str(flagAuthorityHost))
	c, err := cloud.Lookup(p.Cloud)
	if err != nil {
		return protocol.Token{}, false
	}
	authority := c.LoginHost
	if p.AuthorityHost != "" {
		if authority, err = cloud.NormalizeAuthorityHost(p.AuthorityHost); err != nil {
			return protocol.Token{}, false
		}
	}
	if !settings.IsGUID(p.ClientID) || in.minValidity < 0 || in.timeout < 0 {
		return protocol.Token{}, false
	}
	tenant := in.str(flagTenant)
	if tenant == "" {
		tenant = tenantName
	}
	if tenant == "" {
		tenant = p.HomeTenant
	}
	if tenant == "" {
		tenant = "organizations"
	}
	if !settings.IsTenant(tenant) {
		return protocol.Token{}, false
	}
	scopes := settings.Scopes(c, p.Scopes, given)
	if len(scopes) != 1 || !settings.IsScope(scopes[0]) {
		return protocol.Token{}, false // several scopes, or a bad one: cli checks them first
	}
	cacheDir, err := settings.Dir(in.str(flagCacheDir), os.UserCacheDir)
	if err != nil {
		return protocol.Token{}, false
	}
	cc, err := cache.Open(cacheDir)
	if err != nil {
		return protocol.Token{}, false
	}
	e, ok := cc.Load(cache.Key{Profile: name, ClientID: p.ClientID, Authority: authority, Tenant: tenant, Scopes: scopes})
	if !ok || !cache.Fresh(e, now, in.minValidity) {
		return protocol.Token{}, false
	}
	return protocol.Token{
		AccessToken: e.AccessToken,
		ExpiresOn:   e.ExpiresOn,
		TenantID:    e.TenantID,
		Scopes:      e.Scopes,
		Profile:     name,
		Cached:      true,
	}, true
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// write renders t as get --output does.
func write(w io.Writer, output string, t protocol.Token) error {
	switch output {
	case "token":
		return protocol.WriteToken(w, t)
	case "az":
		return protocol.WriteAz(w, t, time.Local)
	case "azd":
		return protocol.WriteAzd(w, t)
	}
	return protocol.WriteJSON(w, t)
}
