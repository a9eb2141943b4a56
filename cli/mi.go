package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/internal/childenv"
	"github.com/pctoken/pctoken-helper/managedidentity"
	"github.com/pctoken/pctoken-helper/settings"
	"github.com/pctoken/pctoken-helper/token"
)

// MiCmd is the local managed-identity endpoint for Azure SDKs and tools.
type MiCmd struct {
	Exec  MiExecCmd  `cmd:"" help:"Run a command with IDENTITY_ENDPOINT and IDENTITY_HEADER pointing at an endpoint that lives as long as it."`
	Serve MiServeCmd `cmd:"" help:"Serve the endpoint for a long-running shell; print what to export, serve until stopped."`
}

// MiFlags are the endpoint's settings, shared by exec and serve.
type MiFlags struct {
	AllowResource []string          `name:"allow-resource" placeholder:"R" help:"Resource (URI, app id or alias such as arm, graph) tokens may be for; repeatable. Default: any."`
	TenantAlias   map[string]string `name:"tenant-alias" placeholder:"NAME=TENANT" help:"A client_id, object_id or mi_res_id of NAME selects TENANT; repeatable."`
	MinValidity   time.Duration     `name:"min-validity" default:"5m" help:"A cached token that expires sooner is refreshed."`
	Timeout       time.Duration     `default:"30s" help:"Bound on each token request, retries included."`
}

// MiExecCmd runs a command with the endpoint.
type MiExecCmd struct {
	MiFlags
	Command []string `arg:"" passthrough:"" name:"command" placeholder:"-- CMD [ARGS...]" help:"The command and its arguments, after --."`
}

// MiServeCmd serves the endpoint until stopped.
type MiServeCmd struct {
	MiFlags
	Listen   string `default:"127.0.0.1:0" placeholder:"ADDR" help:"Loopback address and port to listen on (127.0.0.1:PORT or [::1]:PORT; port 0 picks a free one)."`
	PrintEnv string `name:"print-env" enum:"sh,pwsh,cmd,json" default:"sh" help:"Syntax of what to export: sh, pwsh, cmd or json."`
}

// Variables an Azure SDK reads to pick its managed-identity source, removed from the
// child's environment so that App Service (ours) is the one it picks.
var miSourceVars = []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"}

// miEndpoint resolves the flags into an endpoint, checking before anything starts what
// a token request would refuse later (unknown profile, bad tenant, never consented).
func (a *App) miEndpoint(f MiFlags) (managedidentity.Endpoint, *settings.Profile, error) {
	if f.MinValidity < 0 || f.Timeout < 0 {
		return managedidentity.Endpoint{}, nil, usageError("--min-validity and --timeout must not be negative")
	}
	s, err := a.settingsFor("")
	if err != nil {
		return managedidentity.Endpoint{}, nil, err
	}
	// The same checks as get's (client id, tenant, consent), for a scope of any resource.
	if _, _, err := a.tokenRequest(s.Name, "", []string{"https://management.azure.com/.default"}, TokenFlags{MinValidity: f.MinValidity, Timeout: f.Timeout}); err != nil {
		return managedidentity.Endpoint{}, s, err
	}
	// A child whose every token request would fail is not started: say so now.
	if !s.Saved && a.Getenv("PCTOKEN_REFRESH_TOKEN") == "" {
		return managedidentity.Endpoint{}, s, &failure.Error{Kind: failure.ConsentNeeded, Message: fmt.Sprintf("profile %s has no refresh token", s.Name)}
	}
	var allow []string
	for _, r := range f.AllowResource {
		for _, part := range strings.Fields(strings.ReplaceAll(r, ",", " ")) {
			scope := s.Login.Scope(part) // an alias such as arm or graph
			if res := settings.ResourceOf(scope); res != "" && scope != part {
				part = res
			}
			n, err := managedidentity.NormalizeResource(part)
			if err != nil {
				return managedidentity.Endpoint{}, s, usageError("--allow-resource: %w", err)
			}
			allow = append(allow, n)
		}
	}
	aliases := map[string]string{}
	for name, tenant := range f.TenantAlias {
		if err := settings.CheckTenant(tenant); err != nil {
			return managedidentity.Endpoint{}, s, usageError("--tenant-alias %s: %w", name, err)
		}
		aliases[name] = tenant
	}
	secret, err := managedidentity.NewSecret()
	if err != nil {
		return managedidentity.Endpoint{}, s, err
	}
	objectID, _, _ := strings.Cut(s.Account.HomeAccountID, ".")
	flags := TokenFlags{MinValidity: f.MinValidity, Timeout: f.Timeout}
	return managedidentity.Endpoint{
		Path:     managedidentity.EndpointPath(s.Name, a.Tenant),
		Secret:   secret,
		ClientID: s.ClientID,
		ObjectID: objectID,
		Aliases:  aliases,
		Allow:    allow,
		Timeout:  f.Timeout,
		Source: managedidentity.SourceFunc(func(ctx context.Context, r managedidentity.Request) (managedidentity.Token, error) {
			req, _, err := a.tokenRequest(s.Name, r.Tenant, []string{r.Scope}, flags)
			if err != nil {
				return managedidentity.Token{}, err
			}
			var t token.Token
			if t, err = a.fetch(ctx, req, f.Timeout); err != nil {
				return managedidentity.Token{}, err
			}
			return managedidentity.Token{AccessToken: t.AccessToken, ExpiresOn: t.ExpiresOn}, nil
		}),
		Remedy: func(err error) string {
			var fe *failure.Error
			if errors.As(err, &fe) && fe.Remedy != "" {
				return fe.Remedy // the failing layer knew better
			}
			return remedyFor(err, s.Name)
		},
	}, s, nil
}

// startEndpoint listens on addr and serves e until the returned server is closed.
func (a *App) startEndpoint(addr string, e managedidentity.Endpoint) (*managedidentity.Server, error) {
	ln, err := managedidentity.Listen(addr)
	if err != nil {
		return nil, usageError("%w", err)
	}
	srv, err := managedidentity.NewServer(ln, a.logf, e)
	if err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		if err := srv.Serve(); err != nil {
			a.warnf("managed-identity endpoint: %v", err)
		}
	}()
	a.logf("managed-identity endpoint at %s", srv.URL(e.Path))
	return srv, nil
}

func (m *MiExecCmd) Run(ctx context.Context, a *App) error {
	args := m.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return usageError("mi exec needs a command to run: pctoken-helper mi exec -- CMD [ARGS...]")
	}
	e, _, err := a.miEndpoint(m.MiFlags)
	if err != nil {
		return err
	}
	srv, err := a.startEndpoint("127.0.0.1:0", e)
	if err != nil {
		return err
	}
	defer srv.Close()

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = childEnv(os.Environ(), srv.URL(e.Path), e.Secret)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.Stdin, a.Stdout, a.Stderr
	// Signals are caught before the child starts, so none is lost in between.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		ee := startError(args[0], err)
		a.showError(ee, "check that the command is installed and on PATH")
		return silent{ee.code}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			a.logf("mi exec: forwarding %v to %s (pid %d)", sig, args[0], cmd.Process.Pid)
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			return childExit(err)
		}
	}
}

// startError: like a shell, 127 when the command is not found, 126 when it cannot run.
func startError(name string, err error) *exitError {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	return &exitError{code: code, err: failure.Errorf(failure.Usage, "failed to run %s: %w", settings.QuoteShort(name), err)}
}

// Signals forwarded to mi exec's child. SIGINT from a terminal reaches the child
// directly too (same process group); forwarding covers a kill aimed at the helper.
var forwardedSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// childExit is the child's exit status as the helper's: its code, or 128+signal when
// a signal ended it, as shells report it.
func childExit(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return failure.Errorf(failure.Unexpected, "failed to wait for the command: %w", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return silent{128 + int(ws.Signal())}
	}
	return silent{ee.ExitCode()}
}

// exitError is shown like any error but exits with its own code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// childEnv is environ without the variables that would make an SDK pick another
// managed-identity source or that hold the helper's secrets (childenv), plus the
// endpoint.
func childEnv(environ []string, endpoint, secret string) []string {
	out := childenv.Environ(environ, miSourceVars...)
	if runtime.GOOS == "windows" {
		// Variables are case-insensitive there: drop every spelling.
		kept := out[:0]
		for _, kv := range out {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.ContainsFunc(miSourceVars, func(v string) bool { return strings.EqualFold(v, k) }) {
				kept = append(kept, kv)
			}
		}
		out = kept
	}
	return append(noProxyLoopback(out), "IDENTITY_ENDPOINT="+endpoint, "IDENTITY_HEADER="+secret)
}

// noProxyLoopback adds 127.0.0.1 to NO_PROXY and no_proxy: clients that honour
// HTTP_PROXY for loopback addresses (Python's requests, Azure's JavaScript pipeline)
// would otherwise send their token requests to the proxy, which cannot reach the
// endpoint (and whose headers the endpoint refuses).
func noProxyLoopback(env []string) []string {
	names := []string{"NO_PROXY", "no_proxy"}
	if runtime.GOOS == "windows" {
		names = names[:1] // one variable, whatever its case
	}
	for _, name := range names {
		found := false
		for i, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if envKey(k) != envKey(name) {
				continue
			}
			found = true
			if !slices.Contains(strings.Split(strings.ReplaceAll(v, " ", ""), ","), "127.0.0.1") {
				if v != "" {
					v += ","
				}
				env[i] = k + "=" + v + "127.0.0.1"
			}
		}
		if !found {
			env = append(env, name+"=127.0.0.1")
		}
	}
	return env
}

// envKey: variable names are case-insensitive on Windows.
func envKey(k string) string {
	if runtime.GOOS == "windows" {
		return strings.ToUpper(k)
	}
	return k
}

func (m *MiServeCmd) Run(ctx context.Context, a *App) error {
	e, _, err := a.miEndpoint(m.MiFlags)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := a.startEndpoint(m.Listen, e)
	if err != nil {
		return err
	}
	defer srv.Close()
	vars := []envVar{
		{"IDENTITY_ENDPOINT", srv.URL(e.Path)},
		{"IDENTITY_HEADER", e.Secret},
		{"PCTOKEN_MI_PID", strconv.Itoa(os.Getpid())},
	}
	if _, err := io.WriteString(a.Stdout, renderEnv(m.PrintEnv, vars, miSourceVars[2:])); err != nil {
		return failure.Errorf(failure.Unexpected, "failed to print the environment: %w", err)
	}
	// Nothing more goes to stdout: closing it lets eval "$(pctoken-helper mi serve &)"
	// return while the endpoint keeps serving.
	if f, ok := a.Stdout.(*os.File); ok && f == os.Stdout {
		_ = f.Close()
	}
	fmt.Fprintf(a.Stderr, "pctoken-helper: managed-identity endpoint at %s (pid %d); stop it with kill %d\n", srv.URL(e.Path), os.Getpid(), os.Getpid())
	<-ctx.Done()
	a.logf("mi serve: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

type envVar struct{ name, value string }

// renderEnv writes vars for the shell named by syntax, unsets the variables of the
// other managed-identity sources, and adds 127.0.0.1 to NO_PROXY (see noProxyLoopback).
// json holds vars only.
func renderEnv(syntax string, vars []envVar, unset []string) string {
	var b strings.Builder
	switch syntax {
	case "json":
		m := map[string]string{}
		for _, v := range vars {
			m[v.name] = v.value
		}
		out, _ := json.MarshalIndent(m, "", "  ")
		b.Write(out)
		b.WriteByte('\n')
	case "pwsh":
		for _, v := range vars {
			fmt.Fprintf(&b, "$env:%s = '%s'\n", v.name, strings.ReplaceAll(v.value, "'", "''"))
		}
		for _, k := range sortedCopy(unset) {
			fmt.Fprintf(&b, "Remove-Item Env:%s -ErrorAction SilentlyContinue\n", k)
		}
		b.WriteString("$env:NO_PROXY = ((@($env:NO_PROXY, '127.0.0.1') | Where-Object { $_ }) -join ',')\n")
	case "cmd":
		for _, v := range vars {
			// The endpoint and secret hold only URL characters and hex digits; quoting the
			// whole assignment keeps & and ^ literal anyway.
			fmt.Fprintf(&b, "set \"%s=%s\"\n", v.name, v.value)
		}
		for _, k := range sortedCopy(unset) {
			fmt.Fprintf(&b, "set %s=\n", k)
		}
		b.WriteString("if defined NO_PROXY (set \"NO_PROXY=%NO_PROXY%,127.0.0.1\") else (set \"NO_PROXY=127.0.0.1\")\n")
	default:
		for _, v := range vars {
			fmt.Fprintf(&b, "export %s='%s'\n", v.name, strings.ReplaceAll(v.value, "'", `'\''`))
		}
		fmt.Fprintf(&b, "unset %s\n", strings.Join(sortedCopy(unset), " "))
		b.WriteString(`export NO_PROXY="${NO_PROXY:+$NO_PROXY,}127.0.0.1" no_proxy="${no_proxy:+$no_proxy,}127.0.0.1"` + "\n")
	}
	return b.String()
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}
