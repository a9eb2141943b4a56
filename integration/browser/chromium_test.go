package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

// skipOrFail skips where a program is missing, except in CI (CI=true), which
// installs it (.ci/run), where it fails.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

const missingHint = "(apt-get install chromium fonts-liberation libnss3-tools)"

// chromiumPath is Debian's chromium, or a skip (a failure under CI=true).
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			if _, err := exec.LookPath("certutil"); err != nil {
				skipOrFail(t, "certutil is not installed, so Chromium cannot be told to trust the simulator's CA "+missingHint)
			}
			return p
		}
	}
	skipOrFail(t, "chromium is not installed, so consent cannot be tested in a real browser "+missingHint)
	return ""
}

// Modes of the $BROWSER script.
const (
	// modeOpen: Chromium opens the URL it is given, as a person's browser does.
	modeOpen = "open"
	// modeHold: Chromium starts on about:blank and the URL waits in a file, so the
	// test can open other tabs first, or close the browser, before it signs in.
	modeHold = "hold"
)

// chromium is one headless Chromium, started by the helper through $BROWSER.
type chromium struct {
	t       *testing.T
	dir     string
	profile string // --user-data-dir

	once    sync.Once
	bctx    context.Context // the browser connection
	cancels []context.CancelFunc
}

// newChromium prepares a fresh profile and home (with an NSS database trusting the
// simulator's CA, and nothing else added), writes the $BROWSER script and sets it on e.
// responseMode, when not "", replaces the response_mode of the authorize URL, as an
// app that asks for another mode would.
func newChromium(t *testing.T, e *harness.Env, mode, responseMode string) *chromium {
	t.Helper()
	bin := chromiumPath(t)
	dir := t.TempDir()
	c := &chromium{t: t, dir: dir, profile: filepath.Join(dir, "profile")}
	home := filepath.Join(dir, "home")
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + nss, "--empty-password"},
		// "C,,": a CA trusted to issue server certificates; chain, name and dates are
		// still checked, as for any site.
		{"-A", "-d", "sql:" + nss, "-n", "entrasim test CA", "-t", "C,,", "-i", e.Sim.CAFile()},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	rewrite := ""
	if responseMode != "" {
		rewrite = fmt.Sprintf(`url=$(printf '%%s' "$url" | sed 's/response_mode=[a-z_]*/response_mode=%s/')`, responseMode)
	}
	start := `"$url"`
	if mode == modeHold {
		start = "about:blank"
	}
	script := fmt.Sprintf(`#!/bin/sh
# $BROWSER for the browser tests: pctoken-helper runs it with the authorize URL.
url=$1
%s
env > %[2]s/browser.env
printf '%%s\n' "$url" > %[2]s/url.tmp && mv %[2]s/url.tmp %[2]s/url
echo $$ > %[2]s/pid
# A fresh profile and home; every background service off, as it would wait for the
# internet on this closed network; output to a log, not to the helper's stderr.
HOME=%[3]s exec %[4]s --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-default-apps --disable-extensions --no-default-browser-check --disable-breakpad \
  --window-size=720,480 --remote-debugging-port=0 --user-data-dir=%[5]s \
  %[6]s >%[2]s/chromium.log 2>&1 </dev/null
`, rewrite, shellQuote(dir), shellQuote(home), shellQuote(bin), shellQuote(c.profile), start)
	path := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	e.Vars["BROWSER"] = path
	t.Cleanup(c.close)
	return c
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitFile waits for a file the script or Chromium writes, until it has at least
// lines line breaks, and returns its content.
func (c *chromium) waitFile(name string, lines int, within time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(filepath.Join(c.dir, name))
		if err == nil && bytes.Count(b, []byte("\n")) >= lines {
			return string(b)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not written within %s; chromium log:\n%s", name, within, c.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the authorize URL the helper gave the browser (after any rewrite).
func (c *chromium) URL() string {
	c.t.Helper()
	return strings.TrimSpace(c.waitFile("url", 1, 30*time.Second))
}

// Env is the environment the helper gave the browser.
func (c *chromium) Env() string {
	c.t.Helper()
	c.waitFile("url", 1, 30*time.Second)
	b, err := os.ReadFile(filepath.Join(c.dir, "browser.env"))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// connect attaches to the running browser through the port it announced in its
// profile's DevToolsActivePort.
func (c *chromium) connect() context.Context {
	c.t.Helper()
	c.once.Do(func() {
		port := filepath.Join("profile", "DevToolsActivePort")
		lines := strings.Fields(c.waitFile(port, 1, 30*time.Second))
		if len(lines) != 2 {
			c.t.Fatalf("DevToolsActivePort: %q", lines)
		}
		ws := "ws://127.0.0.1:" + lines[0] + lines[1]
		actx, cancelA := chromedp.NewRemoteAllocator(context.Background(), ws, chromedp.NoModifyURL)
		bctx, cancelB := chromedp.NewContext(actx)
		c.bctx = bctx
		c.cancels = append(c.cancels, cancelB, cancelA)
	})
	return c.bctx
}

// firstTab is the tab Chromium opened at start.
func (c *chromium) firstTab() context.Context {
	c.t.Helper()
	bctx := c.connect()
	deadline := time.Now().Add(20 * time.Second)
	for {
		targets, err := chromedp.Targets(bctx)
		if err != nil {
			c.t.Fatalf("list tabs: %v", err)
		}
		for _, ti := range targets {
			if ti.Type == "page" {
				tab, cancel := chromedp.NewContext(bctx, chromedp.WithTargetID(ti.TargetID))
				c.cancels = append([]context.CancelFunc{cancel}, c.cancels...)
				// The first Run attaches for the context's whole life: no timeout on it.
				if err := chromedp.Run(tab); err != nil {
					c.t.Fatalf("attach to the tab: %v", err)
				}
				return tab
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatal("chromium opened no tab")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newTab opens another tab, as a person does.
func (c *chromium) newTab() context.Context {
	c.t.Helper()
	tab, cancel := chromedp.NewContext(c.connect())
	c.cancels = append([]context.CancelFunc{cancel}, c.cancels...)
	if err := chromedp.Run(tab); err != nil {
		c.t.Fatalf("open a tab: %v", err)
	}
	return tab
}

// run runs actions on tab, bounded so a stuck page fails the test instead of
// hanging it.
func (c *chromium) run(tab context.Context, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// shown is what a tab shows a person.
type shown struct {
	URL, Title, Lang, H1, Text, HTML string
	History                          []string // the tab's back/forward list, oldest first
	// Colours is, per text element, its computed colour and the background behind
	// it, as CSS rgb() strings: a style blocked by the page's own policy would show.
	Colours [][3]string
}

func (c *chromium) look(tab context.Context) shown {
	c.t.Helper()
	var s shown
	var idx int64
	var entries []*page.NavigationEntry
	err := c.run(tab,
		chromedp.Location(&s.URL),
		chromedp.Title(&s.Title),
		chromedp.Evaluate(`document.documentElement.lang`, &s.Lang),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("h1")).map(h => h.textContent).join("|")`, &s.H1),
		chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &s.Text),
		chromedp.Evaluate(`document.documentElement.outerHTML`, &s.HTML),
		chromedp.NavigationEntries(&idx, &entries),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("h1,h2,p,pre")).map(el => {
			let bg = el, c = "rgba(0, 0, 0, 0)";
			while (bg && (c = getComputedStyle(bg).backgroundColor) === "rgba(0, 0, 0, 0)") bg = bg.parentElement;
			return [el.tagName + (el.className ? "." + el.className : ""), getComputedStyle(el).color, bg ? c : "rgb(255, 255, 255)"];
		})`, &s.Colours),
	)
	if err != nil {
		c.t.Fatalf("read the tab: %v", err)
	}
	for _, e := range entries {
		s.History = append(s.History, e.URL)
	}
	return s
}

// waitTitle waits until the tab's title is one of titles (the result page waits for
// the code's redemption).
func (c *chromium) waitTitle(tab context.Context, titles ...string) shown {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var title string
		if err := c.run(tab, chromedp.Title(&title)); err == nil {
			for _, want := range titles {
				if title == want {
					return c.look(tab)
				}
			}
		}
		if time.Now().After(deadline) {
			s := c.look(tab)
			c.t.Fatalf("the tab shows %q at %s, want one of %q", s.Title, s.URL, titles)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves what tab shows as a PNG under dir and returns its path.
func (c *chromium) screenshot(tab context.Context, dir, name string) string {
	c.t.Helper()
	var png []byte
	if err := c.run(tab, chromedp.FullScreenshot(&png, 100)); err != nil {
		c.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// closeBrowser closes Chromium as a person closing its window does: its tabs close
// (Target.closeTarget, through chromedp) and the browser process ends (SIGTERM, which
// Chromium handles like closing the last window; chromedp refuses Browser.close on a
// browser it did not start).
func (c *chromium) closeBrowser() {
	c.t.Helper()
	if !c.stop(20 * time.Second) {
		c.t.Errorf("chromium (pid %d) or one of its processes still runs 20s after SIGTERM", c.pid())
	}
}

// stop ends the connection, then the browser (SIGTERM) and every process it started
// (its renderers, its network service, which writes the profile), waiting for all of
// them; it reports whether they ended within grace.
func (c *chromium) stop(grace time.Duration) bool {
	for _, cancel := range c.cancels {
		cancel()
	}
	c.cancels = nil
	pid := c.pid()
	if !alive(pid) {
		return true
	}
	procs := append(descendants(pid), pid)
	syscall.Kill(pid, syscall.SIGTERM)
	return waitAllGone(procs, grace)
}

// descendants are the processes below pid, found through /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscan(string(b[i+1:]), &state, &ppid); err == nil {
			parent[p] = ppid
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for child, pp := range parent {
			if pp == p {
				out = append(out, child)
				walk(child)
			}
		}
	}
	walk(pid)
	return out
}

func waitAllGone(pids []int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true
}

// log is Chromium's output, without its complaints about the missing D-Bus.
func (c *chromium) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "chromium.log"))
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "dbus") && strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// pid is the browser process the script started.
func (c *chromium) pid() int {
	b, err := os.ReadFile(filepath.Join(c.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid runs; a zombie (nobody reaps an orphaned browser in
// some containers) counts as gone.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// close ends the browser and its processes: SIGTERM, then SIGKILL to whichever of
// them (all started for this test, by pid) is left.
func (c *chromium) close() {
	pid := c.pid()
	procs := append(descendants(pid), pid)
	if c.stop(10 * time.Second) {
		return
	}
	for _, p := range procs {
		if alive(p) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	waitAllGone(procs, 5*time.Second)
}

// profileFiles lists every file in the browser's profile (history, cache, cookies).
func (c *chromium) profileFiles() []string {
	var out []string
	filepath.Walk(c.profile, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	return out
}
