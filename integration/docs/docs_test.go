// Package docs checks the user documentation against the repository, the binary and the
// contract: every relative link leads somewhere, every page is in the index, and every
// command, flag and variable users can meet is documented.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pctoken/pctoken-helper/integration/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// root is the module's folder (tests run in their package's folder).
func root(t *testing.T) string { return harness.ModuleRoot(t) }

// page is a Markdown file with its prose (fenced code blocks removed) split into lines.
type page struct {
	path  string // relative to the root, slash-separated
	text  string // the whole file
	prose []proseLine
}

type proseLine struct {
	n    int
	text string
}

// pages reads README.md and docs/*.md.
func pages(t *testing.T) []page {
	t.Helper()
	dir := root(t)
	files, err := filepath.Glob(filepath.Join(dir, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(dir, "README.md")}, files...)
	var out []page
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		out = append(out, page{path: filepath.ToSlash(rel), text: string(b), prose: proseOf(string(b))})
	}
	if len(out) < 2 {
		t.Fatalf("no pages in docs/")
	}
	return out
}

var fence = regexp.MustCompile("^\\s*(```|~~~)")

// proseOf drops fenced code blocks, where '#' starts shell comments, not headings, and
// brackets are code, not links.
func proseOf(text string) []proseLine {
	var out []proseLine
	in := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case in == "":
				in = m[1]
			case in == m[1]:
				in = ""
			}
			continue
		}
		if in == "" {
			out = append(out, proseLine{n, line})
		}
	}
	return out
}

var (
	inlineCode = regexp.MustCompile("`[^`]*`")
	// [text](target) and [text](target "title"); images too.
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	heading = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
)

type link struct {
	line   int
	target string
}

func (p page) links() []link {
	var out []link
	for _, l := range p.prose {
		text := inlineCode.ReplaceAllString(l.text, "")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			out = append(out, link{l.n, m[1]})
		}
		if m := refLink.FindStringSubmatch(text); m != nil {
			out = append(out, link{l.n, m[1]})
		}
	}
	return out
}

// anchors are the heading ids GitHub gives the page's headings.
func (p page) anchors() map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, l := range p.prose {
		m := heading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		id := slug(m[2])
		if n := seen[id]; n > 0 {
			ids[fmt.Sprintf("%s-%d", id, n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

var mdLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// slug is GitHub's heading id: the heading's text, lower case, with spaces turned into
// '-' and every character but letters, digits, '-' and '_' dropped.
func slug(h string) string {
	h = mdLink.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func external(target string) bool {
	return strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:")
}

func TestRelativeLinksResolve(t *testing.T) {
	dir := root(t)
	all := pages(t)
	byPath := map[string]page{}
	for _, p := range all {
		byPath[p.path] = p
	}
	checked := 0
	for _, p := range all {
		for _, l := range p.links() {
			if external(l.target) {
				continue
			}
			checked++
			file, anchor, _ := strings.Cut(l.target, "#")
			where := fmt.Sprintf("%s:%d: link %q", p.path, l.line, l.target)
			target := p.path
			if file != "" {
				target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(p.path), file)))
				if target == ".." || strings.HasPrefix(target, "../") || filepath.IsAbs(file) {
					t.Errorf("%s leaves the repository", where)
					continue
				}
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(target))); err != nil {
					t.Errorf("%s: %s does not exist", where, target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			tp, ok := byPath[target]
			if !ok {
				if strings.HasSuffix(target, ".md") {
					b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(target)))
					if err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
					tp = page{path: target, text: string(b), prose: proseOf(string(b))}
				} else {
					continue // an anchor into a non-Markdown file: a line, not a heading
				}
			}
			if !tp.anchors()[anchor] {
				t.Errorf("%s: %s has no heading with the id %q", where, target, anchor)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d relative links found: the link scanner is broken", checked)
	}
}

func TestSlugMatchesGitHub(t *testing.T) {
	for h, want := range map[string]string{
		"1. Build":                         "1-build",
		"Diagnostics: `-v`":                "diagnostics--v",
		"CI mode: `PCTOKEN_REFRESH_TOKEN`": "ci-mode-pctoken_refresh_token",
		"`kwallet`: set `PCTOKEN_STORE=kwallet` for every run":                 "kwallet-set-pctoken_storekwallet-for-every-run",
		"Import a refresh token from [Key Vault](https://azure.microsoft.com)": "import-a-refresh-token-from-key-vault",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// TestIndexListsEveryPage: docs/README.md links to every page in docs/.
func TestIndexListsEveryPage(t *testing.T) {
	var index page
	var names []string
	for _, p := range pages(t) {
		switch {
		case p.path == "docs/README.md":
			index = p
		case strings.HasPrefix(p.path, "docs/"):
			names = append(names, strings.TrimPrefix(p.path, "docs/"))
		}
	}
	if index.path == "" {
		t.Fatal("docs/README.md, the index, is missing")
	}
	linked := map[string]bool{}
	for _, l := range index.links() {
		file, _, _ := strings.Cut(l.target, "#")
		linked[file] = true
	}
	for _, n := range names {
		if !linked[n] {
			t.Errorf("docs/README.md does not link to %s", n)
		}
	}
}

// docsText is every page of docs/ in one string.
func docsText(t *testing.T) string {
	var b strings.Builder
	for _, p := range pages(t) {
		if strings.HasPrefix(p.path, "docs/") {
			b.WriteString(p.text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// mentions reports whether text names flag ("--scope") as a whole word: "--scope" must
// not count as a mention of "--scopes".
func mentions(text, word string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9_-])`)
	return re.MatchString(text)
}

// contract is the shared contract, kept beside the repository (shared/ next to the
// clone, in the work tree and in CI).
func contract(t *testing.T) string {
	t.Helper()
	path := filepath.Join(root(t), "..", "shared", "contract.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("the contract is not beside the repository (%v)", err)
	}
	return string(b)
}

var (
	flagWord    = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])(--[a-z][a-z0-9-]*|-[a-z])\b`)
	envWord     = regexp.MustCompile(`\bPCTOKEN_[A-Z_]+\b`)
	commandHead = regexp.MustCompile("(?m)^### `([a-z-]+)")
)

// TestContractIsDocumented: every flag and variable of the contract's settings table,
// every command, and every flag the contract names anywhere appear in docs/.
func TestContractIsDocumented(t *testing.T) {
	c := contract(t)
	docs := docsText(t)
	settings, ok := section(c, "## Settings")
	if !ok {
		t.Fatal("the contract has no Settings section")
	}
	var rows int
	for _, line := range strings.Split(settings, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "flag" {
			continue
		}
		rows++
		for _, m := range flagWord.FindAllStringSubmatch(cells[1], -1) {
			if !mentions(docs, m[1]) {
				t.Errorf("settings flag %s is not documented in docs/", m[1])
			}
		}
		for _, env := range envWord.FindAllString(cells[2], -1) {
			if !mentions(docs, env) {
				t.Errorf("settings variable %s is not documented in docs/", env)
			}
		}
	}
	if rows < 10 {
		t.Fatalf("read %d rows of the contract's settings table: the parser is broken", rows)
	}
	for _, env := range []string{"SSL_CERT_FILE", "SSL_CERT_DIR", "KUBERNETES_EXEC_INFO", "BROWSER"} {
		if strings.Contains(c, env) && !mentions(docs, env) {
			t.Errorf("%s, named by the contract, is not documented in docs/", env)
		}
	}

	commands := commandHead.FindAllStringSubmatch(c, -1)
	if len(commands) < 8 {
		t.Fatalf("found %d commands in the contract: the parser is broken", len(commands))
	}
	cmds := commandsPage(t)
	for _, name := range append([]string{"version"}, submatches(commands)...) {
		if !cmds.anchors()[name] {
			t.Errorf("command %s has no section in docs/commands.md", name)
		}
	}
	for _, m := range flagWord.FindAllStringSubmatch(c, -1) {
		if !mentions(docs, m[1]) {
			t.Errorf("flag %s, named by the contract, is not documented in docs/", m[1])
		}
	}
}

func submatches(ms [][]string) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m[1])
	}
	return out
}

func commandsPage(t *testing.T) page {
	t.Helper()
	for _, p := range pages(t) {
		if p.path == "docs/commands.md" {
			return p
		}
	}
	t.Fatal("docs/commands.md is missing")
	return page{}
}

// section returns the text under the heading up to the next heading of its level.
func section(text, head string) (string, bool) {
	i := strings.Index(text, "\n"+head)
	if i < 0 {
		return "", false
	}
	rest := text[i+1+len(head):]
	level := head[:strings.IndexByte(head, ' ')+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}

// TestBinaryIsDocumented: every command and flag the built binary accepts, and every
// PCTOKEN_ variable the product reads, appear in docs/; every command has its section
// in docs/commands.md.
func TestBinaryIsDocumented(t *testing.T) {
	bin := harness.Binary(t)
	docs := docsText(t)
	cmds := commandsPage(t)

	rootHelp := help(t, bin)
	commands := helpCommands(rootHelp)
	if len(commands) < 8 {
		t.Fatalf("found %d commands in --help: %q", len(commands), rootHelp)
	}
	flags := map[string]bool{}
	for _, f := range helpFlags(rootHelp) {
		flags[f] = true
	}
	for _, c := range commands {
		if !cmds.anchors()[c] {
			t.Errorf("command %s has no section in docs/commands.md", c)
		}
		for _, f := range helpFlags(help(t, bin, c)) {
			flags[f] = true
		}
	}
	var names []string
	for f := range flags {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if !mentions(docs, f) {
			t.Errorf("flag %s of the binary is not documented in docs/", f)
		}
	}

	for _, env := range productVariables(t) {
		if !mentions(docs, env) {
			t.Errorf("variable %s, read by the product, is not documented in docs/", env)
		}
	}
}

func help(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--help")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("pctoken-helper %s --help: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	if out.Len() == 0 {
		t.Fatalf("pctoken-helper %s --help printed nothing on stdout", strings.Join(args, " "))
	}
	return out.String()
}

var (
	helpCommand = regexp.MustCompile(`^  ([a-z][a-z-]*)\s{2,}\S`)
	helpFlag    = regexp.MustCompile(`^\s+(?:(-[a-zA-Z]), )?(--[a-z][a-z0-9-]*)`)
)

// helpCommands reads the command lists of kong's help: every section but the flags
// and arguments ("Setting up:", "Getting tokens:", ...).
func helpCommands(h string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(h, "\n") {
		switch {
		case line != "" && !strings.HasPrefix(line, " "):
			in = strings.HasSuffix(line, ":") && !strings.HasSuffix(line, "lags:") && line != "Arguments:" && line != "Examples:"
		case in:
			if m := helpCommand.FindStringSubmatch(line); m != nil {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// helpFlags reads the flags (long names and short ones) of kong's help.
func helpFlags(h string) []string {
	var out []string
	for _, line := range strings.Split(h, "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				out = append(out, m[1])
			}
			out = append(out, m[2])
		}
	}
	return out
}

// productVariables are the PCTOKEN_ variables named in the product's Go files (tests
// and the integration tree excluded).
func productVariables(t *testing.T) []string {
	t.Helper()
	dir := root(t)
	found := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			if rel == "integration" || strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range envWord.FindAllString(string(b), -1) {
			found[v] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for v := range found {
		out = append(out, v)
	}
	sort.Strings(out)
	if !slices.Contains(out, "PCTOKEN_REFRESH_TOKEN") {
		t.Fatalf("found only %v in the product: the scan is broken", out)
	}
	return out
}

// TestNoHomeDirectories: pages show placeholders, never someone's home directory.
func TestNoHomeDirectories(t *testing.T) {
	home := regexp.MustCompile(`(^|[\s"'(=])(/home/[a-z]|/root/|/Users/[A-Za-z]|[A-Za-z]:\\Users\\)`)
	for _, p := range pages(t) {
		for i, line := range strings.Split(p.text, "\n") {
			if home.MatchString(line) {
				t.Errorf("%s:%d names a home directory: %q", p.path, i+1, line)
			}
		}
	}
}
