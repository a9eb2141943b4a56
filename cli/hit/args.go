package hit

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/cache"
	"github.com/pctoken/pctoken-helper/settings"
)

// flag is one flag of get as cli declares it to kong (cli.Globals, cli.TokenFlags,
// cli.GetCmd). The tests compare this table with those structs' tags.
type flag struct {
	long    string
	short   byte
	env     string
	kind    kind
	getOnly bool // a flag of get that exec-credential does not have
}

type kind int

const (
	kindString   kind = iota // any value
	kindPath                 // kong's type:"path": made absolute; Run takes absolute ones only
	kindScopes               // []string, comma-separated as kong splits it
	kindDuration             // time.ParseDuration
	kindOutput               // the enum json, token, az, azd
	kindIgnored              // a path whose value a cache hit never reads
	kindDecline              // Run leaves the command line to the full path
	kindVerbose              // declines on the command line, and when its variable says on
)

// Indexes into flags, for input.str.
const (
	flagProfile = iota
	flagClientID
	flagTenant
	flagCloud
	flagAuthorityHost
	flagClientCertificate
	flagStore
	flagStoreDir
	flagKeyvaultSecret
	flagKeyvaultAuth
	flagRotateAfter
	flagCacheDir
	flagConfigDir
	flagVerbose
	flagScope
	flagMinValidity
	flagForceRefresh
	flagTimeout
	flagOutput
	flagRequest
	flagParallel
	flagClaims
	flagHelp
	numFlags
)

var flags = [numFlags]flag{
	flagProfile:           {long: "profile", env: "PCTOKEN_PROFILE"},
	flagClientID:          {long: "client-id", env: "PCTOKEN_CLIENT_ID"},
	flagTenant:            {long: "tenant", env: "PCTOKEN_TENANT"},
	flagCloud:             {long: "cloud", env: "PCTOKEN_CLOUD"},
	flagAuthorityHost:     {long: "authority-host", env: "PCTOKEN_AUTHORITY_HOST"},
	flagClientCertificate: {long: "client-certificate", env: "PCTOKEN_CLIENT_CERTIFICATE", kind: kindIgnored},
	flagStore:             {long: "store", env: "PCTOKEN_STORE"},
	flagStoreDir:          {long: "store-dir", env: "PCTOKEN_STORE_DIR", kind: kindIgnored},
	flagCacheDir:          {long: "cache-dir", env: "PCTOKEN_CACHE_DIR", kind: kindPath},
	flagConfigDir:         {long: "config-dir", env: "PCTOKEN_CONFIG_DIR", kind: kindPath},
	// The Key Vault store's settings matter only when the refresh token is needed; a
	// cache hit never reads them (cli validates them when it opens the store).
	flagKeyvaultSecret: {long: "keyvault-secret", env: "PCTOKEN_KEYVAULT_SECRET"},
	flagKeyvaultAuth:   {long: "keyvault-auth", env: "PCTOKEN_KEYVAULT_AUTH"},
	flagRotateAfter:    {long: "rotate-after", env: "PCTOKEN_ROTATE_AFTER"},
	// Verbose prints what the chain does; only the full path says that. Its variable is
	// read with settings.Verbose, as cli reads it.
	flagVerbose:      {long: "verbose", short: 'v', env: settings.VerboseVariable, kind: kindVerbose},
	flagScope:        {long: "scope", short: 's', kind: kindScopes},
	flagMinValidity:  {long: "min-validity", kind: kindDuration},
	flagForceRefresh: {long: "force-refresh", kind: kindDecline},
	flagTimeout:      {long: "timeout", kind: kindDuration},
	flagOutput:       {long: "output", short: 'o', kind: kindOutput, getOnly: true},
	flagRequest:      {long: "request", kind: kindDecline, getOnly: true},
	flagParallel:     {long: "parallel", kind: kindDecline, getOnly: true},
	flagClaims:       {long: "claims", kind: kindDecline, getOnly: true}, // never from the cache
	flagHelp:         {long: "help", short: 'h', kind: kindDecline},
}

// Defaults of get's flags, as cli's kong tags declare them.
const (
	defaultMinValidity = cache.DefaultMinValidity
	defaultTimeout     = 30 * time.Second
	defaultOutput      = "json"
)

// The commands Run answers.
const (
	cmdGet            = "get"
	cmdExecCredential = "exec-credential"
)

// input is a command line with the environment applied, as kong leaves it in cli.Root:
// each string flag from the command line, else from its variable.
type input struct {
	cmd         string
	strs        [numFlags]string
	scopes      []string
	minValidity time.Duration
	timeout     time.Duration
	output      string
}

// given is the input as the settings the resolver takes.
func (in *input) given() settings.Given {
	return settings.Given{
		Profile:           in.strs[flagProfile],
		ClientID:          in.strs[flagClientID],
		Tenant:            in.strs[flagTenant],
		Cloud:             in.strs[flagCloud],
		AuthorityHost:     in.strs[flagAuthorityHost],
		ClientCertificate: in.strs[flagClientCertificate],
		Store:             in.strs[flagStore],
		StoreDir:          in.strs[flagStoreDir],
		CacheDir:          in.strs[flagCacheDir],
		ConfigDir:         in.strs[flagConfigDir],
	}
}

// parse reads a get or exec-credential command line the way kong does, for the forms
// kong reads unambiguously: the command first, then "--name value", "--name=value",
// "-x value", each flag at most once (--scope as often as wanted), and no value that
// starts with "-". ok is false for anything else, and for whatever kong would refuse
// or the full path must handle.
func parse(args []string, lookupEnv func(string) (string, bool)) (in input, ok bool) {
	if len(args) == 0 || args[0] != cmdGet && args[0] != cmdExecCredential {
		return input{}, false
	}
	in.cmd = args[0]
	var seen [numFlags]bool
	for i := 1; i < len(args); i++ {
		a := args[i]
		var (
			idx    = -1
			value  string
			inline bool
		)
		switch {
		case strings.HasPrefix(a, "--"):
			name := a[2:]
			if n, v, found := strings.Cut(name, "="); found {
				name, value, inline = n, v, true
			}
			idx = byLong(name)
		case len(a) == 2 && a[0] == '-':
			idx = byShort(a[1])
		}
		if idx < 0 || flags[idx].kind == kindDecline || flags[idx].kind == kindVerbose || flags[idx].getOnly && in.cmd != cmdGet {
			return input{}, false
		}
		if !inline {
			if i+1 >= len(args) {
				return input{}, false
			}
			i++
			value = args[i]
		}
		if strings.HasPrefix(value, "-") {
			return input{}, false
		}
		if flags[idx].kind == kindScopes {
			// kong splits on commas with backslash escapes; without a backslash that is
			// what settings.Scopes does again, so the value is kept whole.
			// An empty value adds no scope, as kong splits it into none.
			if strings.Contains(value, `\`) {
				return input{}, false
			}
			if value != "" {
				in.scopes = append(in.scopes, value)
			}
			continue
		}
		if seen[idx] {
			return input{}, false
		}
		seen[idx] = true
		in.strs[idx] = value
	}
	for i, f := range flags {
		if f.env == "" || seen[i] {
			continue
		}
		v, set := lookupEnv(f.env)
		if !set {
			continue
		}
		if f.kind == kindDecline {
			return input{}, false
		}
		if f.kind == kindVerbose {
			if on, err := settings.Verbose(v); on || err != nil {
				return input{}, false
			}
			continue
		}
		seen[i] = true
		in.strs[i] = v
	}
	in.minValidity, in.timeout, in.output = defaultMinValidity, defaultTimeout, defaultOutput
	for i, f := range flags {
		if !seen[i] {
			continue
		}
		v := in.strs[i]
		switch f.kind {
		case kindPath:
			// kong makes a path absolute against the working folder (an empty one is
			// the working folder itself); Run takes only what needs no such help.
			if !filepath.IsAbs(v) {
				return input{}, false
			}
		case kindDuration:
			d, err := time.ParseDuration(v)
			if err != nil {
				return input{}, false
			}
			if i == flagMinValidity {
				in.minValidity = d
			} else {
				in.timeout = d
			}
		case kindOutput:
			switch v {
			case "json", "token", "az", "azd":
				in.output = v
			default:
				return input{}, false
			}
		}
	}
	return in, true
}

func byLong(name string) int {
	for i, f := range flags {
		if f.long == name {
			return i
		}
	}
	return -1
}

func byShort(c byte) int {
	for i, f := range flags {
		if f.short != 0 && f.short == c {
			return i
		}
	}
	return -1
}
