package consent

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// defaultStartupWait is how long Open watches a just-started opener for an early
// failure. xdg-open without a desktop session gives up within milliseconds; a browser
// started directly keeps running, and Open must not wait for it.
const defaultStartupWait = time.Second

// Browser opens a URL for the user: with $BROWSER when it is set, else with the
// platform opener. The zero value uses the real environment, os.Stderr and
// runtime.GOOS.
//
// $BROWSER follows the convention of xdg-utils and Python's webbrowser: a list of
// commands separated by ':' (';' on Windows), tried in order; each command is split
// on white space into a program and its arguments (no shell, no quoting; a value
// that names an existing file is taken whole, for paths with spaces); "%s" in an
// argument is replaced by the URL, and without "%s" the URL is the last argument.
// The URL always travels as one argv element, never through a shell.
type Browser struct {
	// Getenv reads BROWSER; nil means os.Getenv.
	Getenv func(string) string
	// Stderr receives the opener's output, its stdout included, so nothing the
	// opener prints reaches our stdout; nil means os.Stderr.
	Stderr io.Writer
	// GOOS picks the platform opener; "" means runtime.GOOS.
	GOOS string
	// StartupWait is how long Open waits for an opener that fails at once (so the
	// failure can be reported); zero means one second. An opener still running by
	// then counts as started and is reaped in the background.
	StartupWait time.Duration
}

// Open shows rawURL, an http or https URL, to the user. It reports an opener that
// cannot be started or that fails within StartupWait; it does not wait for a browser
// to exit. Terminal browsers (lynx, w3m) are not supported: Open gives them no
// terminal; use --no-browser instead.
func (b Browser) Open(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Anything else could reach the opener as an option or a local file.
		return fmt.Errorf("open browser: not an http(s) URL: %q", rawURL)
	}
	cmds, err := b.commands(rawURL)
	if err != nil {
		return fmt.Errorf("open browser: %w", err)
	}
	var errs []error
	for _, c := range cmds {
		err := b.start(c)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.origin, err))
	}
	return fmt.Errorf("open browser: %w", errors.Join(errs...))
}

// command is one way to open the URL: argv plus where it came from, for errors.
type command struct {
	argv   []string
	origin string
}

func (b Browser) commands(rawURL string) ([]command, error) {
	goos := b.GOOS
	if goos == "" {
		goos = runtime.GOOS
	}
	getenv := b.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if env := getenv("BROWSER"); strings.TrimSpace(env) != "" {
		sep := ":"
		if goos == "windows" {
			sep = ";"
		}
		var cmds []command
		for entry := range strings.SplitSeq(env, sep) {
			if argv := browserArgv(strings.TrimSpace(entry), rawURL); argv != nil {
				cmds = append(cmds, command{argv, fmt.Sprintf("BROWSER command %q", entry)})
			}
		}
		if len(cmds) > 0 {
			return cmds, nil
		}
	}
	var argv []string
	switch goos {
	case "darwin", "ios":
		argv = []string{"open", rawURL}
	case "windows":
		argv = []string{"rundll32", "url.dll,FileProtocolHandler", rawURL}
	case "linux", "android", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris", "illumos":
		argv = []string{"xdg-open", rawURL}
	default:
		return nil, fmt.Errorf("no browser opener known for %s; set BROWSER or use --no-browser", goos)
	}
	return []command{{argv, argv[0]}}, nil
}

// browserArgv turns one $BROWSER entry into argv, or nil for an empty entry.
func browserArgv(entry, rawURL string) []string {
	if entry == "" {
		return nil
	}
	fields := strings.Fields(entry)
	if len(fields) > 1 && strings.ContainsAny(entry, `/\`) {
		if _, err := exec.LookPath(entry); err == nil {
			fields = []string{entry}
		}
	}
	argv := fields[:1]
	placed := false
	for _, a := range fields[1:] {
		if strings.Contains(a, "%s") {
			a = strings.ReplaceAll(a, "%s", rawURL)
			placed = true
		}
		argv = append(argv, a)
	}
	if !placed {
		argv = append(argv, rawURL)
	}
	return argv
}

// secretVars are the helper's secrets that a browser it starts must not inherit: a
// browser runs pages and extensions, and keeps its environment for its lifetime.
var secretVars = []string{"PCTOKEN_CLIENT_SECRET", "PCTOKEN_REFRESH_TOKEN", "PCTOKEN_FILE_PASSPHRASE"}

// childEnv is env without secretVars (compared without case, as Windows names are).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(secretVars, func(s string) bool { return strings.EqualFold(s, name) }) {
			out = append(out, kv)
		}
	}
	return out
}

// start runs argv without a shell and waits at most StartupWait for it to fail.
func (b Browser) start(c command) error {
	out := b.Stderr
	if out == nil {
		out = os.Stderr
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = childEnv(os.Environ())
	cmd.Stdout = out
	cmd.Stderr = out
	// An opener that exits while the browser it started still holds our output
	// pipe must not keep the reaper forever.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1) // buffered: the reaper never blocks once we stop listening
	go func() { done <- cmd.Wait() }()

	wait := b.StartupWait
	if wait <= 0 {
		wait = defaultStartupWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil && cmd.ProcessState != nil && cmd.ProcessState.Success() {
			return nil // exited 0; only the output pipe lingered (exec.ErrWaitDelay)
		}
		return err
	case <-timer.C:
		return nil
	}
}
