// Package cli turns the command line into the helper's commands and their outcome into
// output and an exit code. It is the only place that maps errors to exit codes and the
// only place that shows an error, once, with the command that fixes it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pctoken/pctoken-helper/consent"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/protocol"
)

// Version is set at build time with -ldflags "-X github.com/pctoken/pctoken-helper/cli.Version=v1.2.3".
var Version = ""

// Env is the edge of the operating system the commands touch; tests replace parts of it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	LookupEnv      func(string) (string, bool)
	Now            func() time.Time
	// TTY opens the terminal for passphrase prompts (never stdin/stdout).
	TTY     func() (io.ReadWriteCloser, error)
	Browser consent.Browser
}

// OS is the real environment.
func OS() Env {
	return Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Getenv:    os.Getenv,
		LookupEnv: os.LookupEnv,
		Now:       time.Now,
		TTY:       func() (io.ReadWriteCloser, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) },
		Browser:   consent.Browser{Getenv: os.Getenv, Stderr: os.Stderr},
	}
}

// Exit codes of the contract.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2
	exitConsent   = 3
	exitTransient = 4
	exitConfig    = 5
)

func exitCode(err error) int {
	switch failure.KindOf(err) {
	case failure.Usage:
		return exitUsage
	case failure.ConsentNeeded:
		return exitConsent
	case failure.Transient:
		return exitTransient
	case failure.Configuration:
		return exitConfig
	}
	return exitFailure
}

// kongExit carries kong's requested exit (after --help or a parse error) out of
// parsing without os.Exit, so that Run stays the single exit point.
type kongExit struct{ code int }

// Run runs the command line args and returns the exit code.
func Run(ctx context.Context, args []string, env Env) (code int) {
	hardenProcess()
	registerEnvSecrets(env.Getenv)
	// An exported but empty PCTOKEN_VERBOSE means "not set", as for every other
	// variable; kong would refuse it as a bool and fail every command.
	if v, ok := os.LookupEnv("PCTOKEN_VERBOSE"); ok && strings.TrimSpace(v) == "" {
		os.Unsetenv("PCTOKEN_VERBOSE")
	}
	var root Root
	parser, err := kong.New(&root,
		kong.Name("pctoken-helper"),
		kong.Description("Microsoft Entra ID access tokens for scripts, kubectl and git, from a refresh token stored once at consent."),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(c int) { panic(kongExit{c}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version()},
	)
	if err != nil {
		fmt.Fprintf(env.Stderr, "error: %v\n", err)
		return exitFailure
	}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = e.code
			if code == 1 {
				code = exitUsage // kong reports usage errors as 1; the contract says 2
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "error: %s\nhint: pctoken-helper --help\n", shown(err.Error()))
		return exitUsage
	}
	app := &App{Env: env, Globals: &root.Globals}
	kctx.BindTo(ctx, (*context.Context)(nil))
	err = kctx.Run(app)
	if err == nil {
		return exitOK
	}
	var s silent
	if errors.As(err, &s) {
		return s.code
	}
	showError(env.Stderr, err, app.remedy(err))
	return exitCode(err)
}

// silent is a failure already reported in the protocol's own way.
type silent struct{ code int }

func (s silent) Error() string { return fmt.Sprintf("exit %d", s.code) }

func showError(w io.Writer, err error, remedy string) {
	fmt.Fprintf(w, "error: %s\n", shown(err.Error()))
	if remedy != "" {
		fmt.Fprintf(w, "hint: %s\n", shown(remedy))
	}
}

// errorObject is err as the contract's JSON error object.
func errorObject(err error, remedy string) protocol.Error {
	e := protocol.Error{Code: failure.KindOf(err).String(), Message: err.Error(), Remedy: remedy}
	var ee *failure.Error
	if errors.As(err, &ee) {
		if ee.AADSTS != "" {
			e.AADSTS = "AADSTS" + ee.AADSTS // as Microsoft writes it, and as people search for it
		}
		e.Message = ee.Message
	}
	e.Message, e.Remedy = shown(e.Message), shown(e.Remedy)
	return e
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func usageError(format string, args ...any) error {
	return failure.Errorf(failure.Usage, format, args...)
}

func configError(format string, args ...any) error {
	return failure.Errorf(failure.Configuration, format, args...)
}
