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
// environment, so it holds no rule of its own: which profile, app, authority, tenant
// and scopes a command means is settings.ResolveProfile and settings.ResolveToken, the
// functions cli calls, and the answer is written by protocol's writers, as cli writes
// it. What stays here is the scanner of the command line. The tests hold it to kong:
// for a corpus of command lines and environments they compare Run's output, byte for
// byte, with cli.Run's, and they check its table of flags against the kong tags of
// cli's structs, so that a flag added there without being added here fails a test
// instead of changing an answer.
package hit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
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
	g, scopes := in.given(), in.scopes
	var out bytes.Buffer
	switch in.cmd {
	case cmdGet:
		t, ok := lookup(in, g, scopes, now)
		if !ok || protocol.WriteOutput(&out, in.output, t) != nil {
			return 0, false // a token the output refuses: let the full path say so
		}
	case cmdExecCredential:
		info, err := protocol.ParseExecInfo(os.Getenv("KUBERNETES_EXEC_INFO"))
		if err != nil {
			return 0, false
		}
		if g, scopes, err = g.WithCluster(scopes, info.Cluster.Profile, info.Cluster.Tenant, info.Cluster.Scopes); err != nil {
			return 0, false
		}
		t, ok := lookup(in, g, scopes, now)
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

// lookup resolves the request with the rules cli uses (settings) and answers it from
// the cache; ok is false wherever cli would do anything else than return a cached
// token: an error, a miss, a token not fresh enough.
func lookup(in input, g settings.Given, scopes []string, now time.Time) (protocol.Token, bool) {
	p, err := settings.ResolveProfile(g, "", settings.LoadFrom(g))
	if err != nil {
		return protocol.Token{}, false
	}
	key, err := settings.ResolveToken(p, g, settings.Wanted{Scopes: scopes, MinValidity: in.minValidity, Timeout: in.timeout})
	if err != nil {
		return protocol.Token{}, false
	}
	dir, err := g.CacheFolder()
	if err != nil {
		return protocol.Token{}, false
	}
	cc, err := cache.Open(dir)
	if err != nil {
		return protocol.Token{}, false
	}
	e, ok := cc.Load(key)
	if !ok || !cache.Fresh(e, now, in.minValidity) {
		return protocol.Token{}, false
	}
	return protocol.Token{
		AccessToken: e.AccessToken,
		ExpiresOn:   e.ExpiresOn,
		TenantID:    e.TenantID,
		Scopes:      e.Scopes,
		Profile:     key.Profile,
		Cached:      true,
	}, true
}
