package release

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/internal/release"
)

// There is no PowerShell on this machine or in CI (Debian does not package it, and the
// npm wrappers download it from the internet), so the module is checked as text: the
// function is the one of docs/powershell.md, byte for byte, and the manifest parses and
// names what PowerShell needs.

const (
	docsPath     = "docs/powershell.md"
	modulePath   = release.ModuleDir + "/PCTokenHelper.psm1"
	manifestPath = release.ModuleDir + "/PCTokenHelper.psd1"
)

// docsFunction is the fenced powershell block of docs/powershell.md that defines
// Get-PartnerAccessToken, the source the module is kept identical to, and the line of
// the page it starts on.
func docsFunction(t *testing.T, src string) ([]byte, int) {
	t.Helper()
	var found, block []string
	in, start, foundStart := false, 0, 0
	for n, line := range strings.SplitAfter(string(readFile(t, filepath.Join(src, docsPath))), "\n") {
		fence := strings.TrimRight(line, "\r\n")
		switch {
		case !in && fence == "```powershell":
			in, block, start = true, nil, n+2
		case in && fence == "```":
			in = false
			if len(block) > 0 && strings.HasPrefix(block[0], "function Get-PartnerAccessToken") {
				if found != nil {
					t.Fatalf("%s defines Get-PartnerAccessToken in two blocks", docsPath)
				}
				found, foundStart = block, start
			}
		case in:
			block = append(block, line)
		}
	}
	if found == nil {
		t.Fatalf("%s has no powershell block starting with 'function Get-PartnerAccessToken'", docsPath)
	}
	return []byte(strings.Join(found, "")), foundStart
}

// TestModuleIsTheDocumentedFunction: the module file is the documented function, so a
// fix to one is a fix to both.
func TestModuleIsTheDocumentedFunction(t *testing.T) {
	src := root(t)
	want, line := docsFunction(t, src)
	got := readFile(t, filepath.Join(src, modulePath))
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the Get-PartnerAccessToken block of %s (the docs are the source: copy the block into the module)\n%s",
			modulePath, docsPath, lineDiff(docsPath, modulePath, line, 1, string(want), string(got)))
	}
}

var functionDef = regexp.MustCompile(`(?mi)^function\s+([A-Za-z][A-Za-z0-9-]*)`)

// TestManifest: the manifest parses, loads the module file, exports exactly the
// functions it defines, and says which PowerShell it needs.
func TestManifest(t *testing.T) {
	src := root(t)
	m, err := parsePSD1(readFile(t, filepath.Join(src, manifestPath)))
	if err != nil {
		t.Fatalf("%s: %v", manifestPath, err)
	}
	str := func(key string) string {
		s, ok := m[key].(string)
		if !ok || strings.TrimSpace(s) == "" {
			t.Errorf("%s: %s is %#v, want a non-empty string", manifestPath, key, m[key])
		}
		return s
	}
	list := func(key string) []string {
		var out []string
		switch v := m[key].(type) {
		case string:
			out = []string{v}
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					t.Errorf("%s: %s holds %#v, want strings", manifestPath, key, e)
				}
				out = append(out, s)
			}
		default:
			t.Errorf("%s: %s is %#v, want a list", manifestPath, key, m[key])
		}
		return out
	}

	if root := str("RootModule"); root != filepath.Base(modulePath) {
		t.Errorf("RootModule is %q, want %q", root, filepath.Base(modulePath))
	}
	if v := str("ModuleVersion"); !regexp.MustCompile(`^\d+(\.\d+){1,3}$`).MatchString(v) {
		t.Errorf("ModuleVersion %q is not a PowerShell version", v)
	}
	if g := str("GUID"); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(g) {
		t.Errorf("GUID %q is not a GUID", g)
	}
	str("Author")
	str("Description")
	if v := str("PowerShellVersion"); v != "5.1" {
		t.Errorf("PowerShellVersion is %q; docs/powershell.md promises Windows PowerShell 5.1", v)
	}
	if eds := list("CompatiblePSEditions"); !slices.Contains(eds, "Desktop") || !slices.Contains(eds, "Core") {
		t.Errorf("CompatiblePSEditions is %q, want Desktop and Core", eds)
	}
	var defined []string
	for _, d := range functionDef.FindAllStringSubmatch(string(readFile(t, filepath.Join(src, modulePath))), -1) {
		defined = append(defined, d[1])
	}
	if exported := list("FunctionsToExport"); !slices.Equal(sorted(exported), sorted(defined)) || len(defined) == 0 {
		t.Errorf("FunctionsToExport is %q; the module defines %q", exported, defined)
	}
	for _, key := range []string{"CmdletsToExport", "VariablesToExport", "AliasesToExport"} {
		if l := list(key); len(l) != 0 {
			t.Errorf("%s is %q, want @() (nothing but the functions)", key, l)
		}
	}

	// A release sets ModuleVersion and changes nothing else.
	stamped := release.StampManifest(readFile(t, filepath.Join(src, manifestPath)), "v2.10.3-rc.1")
	s, err := parsePSD1(stamped)
	if err != nil {
		t.Fatalf("stamped manifest: %v", err)
	}
	if s["ModuleVersion"] != "2.10.3" {
		t.Errorf("stamped ModuleVersion is %v, want 2.10.3", s["ModuleVersion"])
	}
	delete(s, "ModuleVersion")
	delete(m, "ModuleVersion")
	if fmt.Sprint(s) != fmt.Sprint(m) {
		t.Errorf("stamping changed more than ModuleVersion:\n%v\n%v", s, m)
	}
}

func TestLineDiff(t *testing.T) {
	long := strings.Repeat("same\n", 20)
	if d := lineDiff("a", "b", 1, 1, long+"x\n"+long, long+"y\n"+long); strings.Count(d, "same") != 6 {
		t.Errorf("lineDiff shows more than 3 lines of context on each side:\n%s", d)
	}
	d := lineDiff("a.md", "b.psm1", 10, 1, "one\ntwo\nthree\n", "one\n2\nthree\nfour\n")
	want := "--- a.md\n+++ b.psm1\n@@ a.md line 10, b.psm1 line 1 @@\n  one\n- two\n+ 2\n  three\n+ four\n"
	if d != want {
		t.Errorf("lineDiff:\n%s\nwant:\n%s", d, want)
	}
}

// lineDiff is a line-by-line diff of a (named an, starting on line aLine of it) and b
// (bn, bLine), from their longest common subsequence; the texts are a few dozen lines.
func lineDiff(an, bn string, aLine, bLine int, a, b string) string {
	x, y := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	if x[len(x)-1] == "" {
		x = x[:len(x)-1]
	}
	if y[len(y)-1] == "" {
		y = y[:len(y)-1]
	}
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		mark, text string
		ai, bi     int // line numbers (1-based) in a and b
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			ops = append(ops, op{"  ", x[i], aLine + i, bLine + j})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, op{"+ ", y[j], aLine + i, bLine + j})
			j++
		default:
			ops = append(ops, op{"- ", x[i], aLine + i, bLine + j})
			i++
		}
	}
	// Show the changed lines with diffContext unchanged lines around them.
	const diffContext = 3
	show := make([]bool, len(ops))
	for k, o := range ops {
		if o.mark != "  " {
			for c := max(0, k-diffContext); c <= min(len(ops)-1, k+diffContext); c++ {
				show[c] = true
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", an, bn)
	for k, o := range ops {
		if !show[k] {
			continue
		}
		if k == 0 || !show[k-1] {
			fmt.Fprintf(&out, "@@ %s line %d, %s line %d @@\n", an, o.ai, bn, o.bi)
		}
		out.WriteString(o.mark + strings.TrimRight(o.text, "\n") + "\n")
	}
	return out.String()
}

// parsePSD1 reads the data subset of PowerShell that module manifests are written in:
// one hashtable @{ Key = value ... } whose values are 'strings' (” for a quote),
// "strings" (no expansion), numbers, $true/$false, arrays @(...) and nested hashtables;
// # and <# #> comments. Values come back as string, bool, []any and map[string]any.
func parsePSD1(b []byte) (map[string]any, error) {
	p := &psd1{s: string(b)}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, p.errorf("text after the manifest's hashtable")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the manifest is not a hashtable @{...}")
	}
	return m, nil
}

type psd1 struct {
	s string
	i int
}

func (p *psd1) errorf(format string, args ...any) error {
	line := 1 + strings.Count(p.s[:p.i], "\n")
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

// space skips blanks, newlines, ';' separators and comments.
func (p *psd1) space() {
	for p.i < len(p.s) {
		switch {
		case strings.HasPrefix(p.s[p.i:], "<#"):
			end := strings.Index(p.s[p.i+2:], "#>")
			if end < 0 {
				p.i = len(p.s)
				return
			}
			p.i += 2 + end + 2
		case p.s[p.i] == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case strings.ContainsRune(" \t\r\n;", rune(p.s[p.i])):
			p.i++
		default:
			return
		}
	}
}

var (
	psd1Bare   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
	psd1Number = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?`)
)

func (p *psd1) value(depth int) (any, error) {
	if depth > 32 {
		return nil, p.errorf("nested too deeply")
	}
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "@{"):
		p.i += 2
		m := map[string]any{}
		for {
			p.space()
			if p.i >= len(p.s) {
				return nil, p.errorf("hashtable not closed")
			}
			if p.s[p.i] == '}' {
				p.i++
				return m, nil
			}
			key, err := p.key()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != '=' {
				return nil, p.errorf("'=' expected after %s", key)
			}
			p.i++
			p.space()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			if _, dup := m[key]; dup {
				return nil, p.errorf("%s given twice", key)
			}
			m[key] = v
		}
	case strings.HasPrefix(rest, "@("):
		p.i += 2
		l := []any{}
		for {
			p.space()
			if p.i >= len(p.s) {
				return nil, p.errorf("array not closed")
			}
			if p.s[p.i] == ')' {
				p.i++
				return l, nil
			}
			if p.s[p.i] == ',' && len(l) > 0 {
				p.i++
				p.space()
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
	case strings.HasPrefix(rest, "'"), strings.HasPrefix(rest, `"`):
		return p.quoted()
	case strings.HasPrefix(strings.ToLower(rest), "$true"):
		p.i += 5
		return true, nil
	case strings.HasPrefix(strings.ToLower(rest), "$false"):
		p.i += 6
		return false, nil
	case psd1Number.MatchString(rest):
		n := psd1Number.FindString(rest)
		p.i += len(n)
		return n, nil
	}
	return nil, p.errorf("a value is expected")
}

func (p *psd1) key() (string, error) {
	if p.s[p.i] == '\'' || p.s[p.i] == '"' {
		return p.quoted()
	}
	k := psd1Bare.FindString(p.s[p.i:])
	if k == "" {
		return "", p.errorf("a key is expected")
	}
	p.i += len(k)
	return k, nil
}

// quoted reads '...' or "..." (a doubled quote is one quote; "..." is taken as written:
// a manifest has nothing to expand).
func (p *psd1) quoted() (string, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		if c != q {
			b.WriteByte(c)
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == q {
			b.WriteByte(q)
			p.i++
			continue
		}
		return b.String(), nil
	}
	return "", p.errorf("string not closed")
}

func TestParsePSD1(t *testing.T) {
	m, err := parsePSD1([]byte("<# c #>\n@{ A = 'it''s'; B = @('x', \"y\") # c\n C = @{ D = $true }; E = 5.1\n F = @() }"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m); got != "map[A:it's B:[x y] C:map[D:true] E:5.1 F:[]]" {
		t.Errorf("parsed %s", got)
	}
	for _, bad := range []string{"", "@{", "@{ A }", "@{ A = 'x }", "@{ A = 1; A = 2 }", "@('a')", "@{} x", strings.Repeat("@(", 40)} {
		if _, err := parsePSD1([]byte(bad)); err == nil {
			t.Errorf("parsePSD1(%q) accepted it", bad)
		}
	}
}

// FuzzParsePSD1: the manifest reader never panics or loops, whatever the file holds.
func FuzzParsePSD1(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", manifestPath)); err == nil {
		f.Add(b)
	}
	f.Add([]byte("@{ A = @('x', 'y'); B = @{ C = $false } }"))
	f.Add([]byte("@{ 'A' = \"b\"\"c\" <# x #> }"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parsePSD1(b)
		if err == nil && m == nil {
			t.Fatal("no error and no hashtable")
		}
	})
}
