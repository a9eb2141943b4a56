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
	"runtime"
	"runtime/debug"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"github.com/pctoken/pctoken-helper/consent"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/protocol"
	"github.com/pctoken/pctoken-helper/settings"
)

// Version, Commit and Date are set by release builds with -ldflags "-X
// github.com/pctoken/pctoken-helper/cli.Version=v1.2.3" (and .Commit, .Date); other
// builds read them from the module's build information.
var Version, Commit, Date string

// Env is the edge of the operating system the commands touch; tests replace parts of it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	// TTY opens the terminal for passphrase prompts (never stdin/stdout).
	TTY func() (io.ReadWriteCloser, error)
	// IsTerminal tells whether a person is at the terminal (stdin is one), so that a
	// destructive command may ask instead of needing --yes.
	IsTerminal func() bool
	Browser    consent.Browser
}

// OS is the real environment.
func OS() Env {
	return Env{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Getenv:     os.Getenv,
		Now:        time.Now,
		TTY:        func() (io.ReadWriteCloser, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) },
		IsTerminal: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		Browser:    consent.Browser{Getenv: os.Getenv, Stderr: os.Stderr},
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

	exitInterrupted = 130 // as shells report a command ended by SIGINT
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
	var root Root
	parser, err := kong.New(&root, append(helpOptions(),
		kong.Name("pctoken-helper"),
		kong.Description("Microsoft Entra ID access tokens for scripts, kubectl and git, from a refresh token stored once at consent."),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(c int) { panic(kongExit{c}) }),
		kong.Vars{"version": versionLine()},
	)...)
	if err != nil {
		fmt.Fprintf(env.Stderr, "error: %v\n", err)
		return exitFailure
	}
	tidyHelp(parser.Model)
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
	if completionRequested(args, env.Getenv) {
		return completeLine(parser, env)
	}
	// Help for a person (a shell asking for completions is answered above) who asks for it in the usual ways: no arguments at all, or
	// "help [command]", as git and kubectl take it.
	switch {
	case len(args) == 0:
		args = []string{"--help"}
	case args[0] == "help":
		args = append(append([]string{}, args[1:]...), "--help")
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "error: %s\nhint: pctoken-helper --help\n", shown(err.Error()))
		return exitUsage
	}
	// PCTOKEN_VERBOSE is read by settings.Verbose rather than by kong, so that the early
	// path reads it by the same rule (an exported but empty variable is unset).
	verbose, err := settings.Verbose(env.Getenv(settings.VerboseVariable))
	if err != nil {
		env.showError(err, "pctoken-helper --help")
		return exitUsage
	}
	root.Verbose = root.Verbose || verbose
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
	if ctx.Err() != nil {
		// SIGINT or SIGTERM: the work in flight was abandoned, nothing half-done saved.
		fmt.Fprintf(env.Stderr, "error: interrupted\n")
		return exitInterrupted
	}
	env.showError(err, app.remedy(err))
	return exitCode(err)
}

// silent is a failure already reported in the protocol's own way.
type silent struct{ code int }

func (s silent) Error() string { return fmt.Sprintf("exit %d", s.code) }

// showError shows err once: an error line and, when there is one, the command that
// fixes it, both scrubbed of secrets (redact). On a terminal (and without NO_COLOR) the
// two words that start the lines stand out.
func (e Env) showError(err error, remedy string) {
	errWord, hintWord := "error:", "hint:"
	if e.colour() {
		errWord, hintWord = "\x1b[1;31merror:\x1b[0m", "\x1b[1;36mhint:\x1b[0m"
	}
	fmt.Fprintf(e.Stderr, "%s %s\n", errWord, shown(err.Error()))
	if remedy != "" {
		fmt.Fprintf(e.Stderr, "%s %s\n", hintWord, shown(remedy))
	}
}

// colour tells whether stderr is a terminal that wants colour (https://no-color.org).
func (e Env) colour() bool {
	_, live := e.liveStderr()
	return live && e.Getenv("NO_COLOR") == ""
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

// versionLine is what version and --version print: the module version, and the
// commit, its date and the Go release the binary was built from.
func versionLine() string {
	commit, date, modified := "unknown", "unknown", false
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if Commit != "" {
		commit = Commit
	}
	if Date != "" {
		date = Date
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified {
		commit += "+dirty"
	}
	return fmt.Sprintf("pctoken-helper %s (commit %s, built %s, %s %s/%s)", version(), commit, date, goVersion, runtime.GOOS, runtime.GOARCH)
}

func usageError(format string, args ...any) error {
	return failure.Errorf(failure.Usage, format, args...)
}

func configError(format string, args ...any) error {
	return failure.Errorf(failure.Configuration, format, args...)
}
