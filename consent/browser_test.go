package consent_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/consent"
)

// authURL has the characters a shell would mangle: & ? ; spaces (escaped) and quotes.
const authURL = "https://login.example/tenant/oauth2/v2.0/authorize?client_id=abc&redirect_uri=http%3A%2F%2Flocalhost%3A8400&scope=a+b&state=x;y&prompt='select_account'"

// recorder writes a script into dir that records its argv, NUL-separated, in
// dir/argv, after running prelude; it returns the script's path.
func recorder(t *testing.T, dir, name, prelude string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("the fake openers are shell scripts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	script := "#!/bin/sh\n" + prelude + "\nprintf '%s\\0' \"$@\" > '" + filepath.Join(dir, "argv") + "'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func argvOf(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatalf("opener did not run: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func env(browser string) func(string) string {
	return func(k string) string {
		if k == "BROWSER" {
			return browser
		}
		return ""
	}
}

// syncBuffer is written by the opener's output copier while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenWithBrowserVariable(t *testing.T) {
	dir := t.TempDir()
	script := recorder(t, dir, "browser", "echo on-stdout; echo on-stderr >&2")
	var out syncBuffer
	b := consent.Browser{Getenv: env(script), Stderr: &out, GOOS: "linux"}
	if err := b.Open(authURL); err != nil {
		t.Fatal(err)
	}
	if got := argvOf(t, dir); !slices.Equal(got, []string{authURL}) {
		t.Fatalf("argv %q, want the URL as one argument", got)
	}
	// Both of the opener's streams go to our stderr, never to stdout.
	if got := out.String(); !strings.Contains(got, "on-stdout") || !strings.Contains(got, "on-stderr") {
		t.Errorf("opener output %q", got)
	}
}

// The browser gets the helper's environment without its secrets.
func TestOpenKeepsSecretsFromTheBrowser(t *testing.T) {
	for k, v := range map[string]string{"PCTOKEN_CLIENT_SECRET": "s3cret-value", "PCTOKEN_REFRESH_TOKEN": "rt-value",
		"PCTOKEN_FILE_PASSPHRASE": "pass-value", "PCTOKEN_PROFILE": "kept-value"} {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	script := recorder(t, dir, "browser", "env > '"+filepath.Join(dir, "env")+"'")
	if err := (consent.Browser{Getenv: env(script), Stderr: &syncBuffer{}, GOOS: "linux"}).Open(authURL); err != nil {
		t.Fatal(err)
	}
	argvOf(t, dir) // the script has finished writing
	b, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"PCTOKEN_CLIENT_SECRET", "s3cret-value", "rt-value", "pass-value"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the browser's environment has %s", secret)
		}
	}
	if !strings.Contains(string(b), "PCTOKEN_PROFILE=kept-value") {
		t.Error("the browser's environment lost a setting that is not secret")
	}
}

func TestOpenBrowserVariableWithArguments(t *testing.T) {
	dir := t.TempDir()
	script := recorder(t, dir, "browser", "")
	cases := map[string][]string{
		script + " --new-window":         {"--new-window", authURL},
		script + " --app=%s --incognito": {"--app=" + authURL, "--incognito"},
		"  " + script + "  %s  ":         {authURL},
		"/nonexistent/browser:" + script: {authURL}, // a list falls back to the next entry
		":" + script + ":":               {authURL},
	}
	for browser, want := range cases {
		os.Remove(filepath.Join(dir, "argv"))
		b := consent.Browser{Getenv: env(browser), Stderr: &syncBuffer{}, GOOS: "linux"}
		if err := b.Open(authURL); err != nil {
			t.Errorf("BROWSER=%q: %v", browser, err)
			continue
		}
		if got := argvOf(t, dir); !slices.Equal(got, want) {
			t.Errorf("BROWSER=%q: argv %q, want %q", browser, got, want)
		}
	}
}

func TestOpenBrowserPathWithSpaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My Browser")
	script := recorder(t, dir, "browser app", "")
	b := consent.Browser{Getenv: env(script), Stderr: &syncBuffer{}, GOOS: "linux"}
	if err := b.Open(authURL); err != nil {
		t.Fatal(err)
	}
	if got := argvOf(t, dir); !slices.Equal(got, []string{authURL}) {
		t.Fatalf("argv %q", got)
	}
}

func TestOpenReportsFailingBrowser(t *testing.T) {
	dir := t.TempDir()
	failing := recorder(t, dir, "failing", "echo no display >&2; exit 3")
	notExecutable := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"/nonexistent/browser":            "no such file",
		"no-such-browser-program":         "executable file not found",
		failing:                           "exit status 3",
		"/nonexistent/browser:" + failing: "exit status 3",
		notExecutable + " --flag":         "permission denied",
	}
	for browser, want := range cases {
		var out syncBuffer
		b := consent.Browser{Getenv: env(browser), Stderr: &out, GOOS: "linux"}
		err := b.Open(authURL)
		t.Logf("BROWSER=%q: %v", browser, err)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "BROWSER") {
			t.Errorf("BROWSER=%q: error %v, want one naming BROWSER and %q", browser, err, want)
		}
	}
}

func TestOpenDoesNotWaitForARunningBrowser(t *testing.T) {
	dir := t.TempDir()
	script := recorder(t, dir, "slow", "sleep 0.5")
	b := consent.Browser{Getenv: env(script), Stderr: &syncBuffer{}, GOOS: "linux", StartupWait: 50 * time.Millisecond}
	start := time.Now()
	if err := b.Open(authURL); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 400*time.Millisecond {
		t.Errorf("Open waited %v for a browser that keeps running", elapsed)
	}
	// The browser goes on and finishes on its own (and is reaped, not left defunct).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "argv")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("browser did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenPlatformOpener(t *testing.T) {
	cases := []struct {
		goos, program string
		args          []string
	}{
		{"linux", "xdg-open", []string{authURL}},
		{"freebsd", "xdg-open", []string{authURL}},
		{"darwin", "open", []string{authURL}},
		{"windows", "rundll32", []string{"url.dll,FileProtocolHandler", authURL}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		recorder(t, dir, c.program, "")
		t.Setenv("PATH", dir)
		b := consent.Browser{Getenv: env(""), Stderr: &syncBuffer{}, GOOS: c.goos}
		if err := b.Open(authURL); err != nil {
			t.Errorf("%s: %v", c.goos, err)
			continue
		}
		if got := argvOf(t, dir); !slices.Equal(got, c.args) {
			t.Errorf("%s: %s argv %q, want %q", c.goos, c.program, got, c.args)
		}
	}
}

func TestOpenPlatformOpenerMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := consent.Browser{Getenv: env(""), Stderr: &syncBuffer{}, GOOS: "linux"}
	if err := b.Open(authURL); err == nil || !strings.Contains(err.Error(), "xdg-open") {
		t.Errorf("error %v, want one naming xdg-open", err)
	}
	b.GOOS = "plan9"
	if err := b.Open(authURL); err == nil || !strings.Contains(err.Error(), "BROWSER") {
		t.Errorf("error %v, want one suggesting BROWSER", err)
	}
}

func TestOpenRefusesNonHTTPURL(t *testing.T) {
	dir := t.TempDir()
	script := recorder(t, dir, "browser", "")
	b := consent.Browser{Getenv: env(script), Stderr: &syncBuffer{}, GOOS: "linux"}
	for _, u := range []string{"--version", "file:///etc/passwd", "javascript:alert(1)", "https://", ""} {
		if err := b.Open(u); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "argv")); err == nil {
		t.Error("the browser was started for a refused URL")
	}
}
