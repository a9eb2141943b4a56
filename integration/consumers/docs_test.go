package consumers

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

// myPages are the docs pages whose examples these tests keep honest.
var myPages = []string{"kubernetes.md", "git.md", "powershell.md", "ci.md", "protocols.md", "batch.md"}

// jsonShape lists the key paths of a JSON document in order, each with the kind of
// its value: "status.token string".
func jsonShape(t *testing.T, doc string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var out []string
	var walk func(prefix string) string
	walk = func(prefix string) string {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, doc)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '[' {
				for dec.More() {
					walk(prefix + "[].")
				}
				dec.Token()
				return "array"
			}
			for dec.More() {
				k, _ := dec.Token()
				path := prefix + k.(string)
				i := len(out)
				out = append(out, "")
				out[i] = path + " " + walk(path+".")
			}
			dec.Token()
			return "object"
		case string:
			return "string"
		case json.Number:
			return "number"
		case bool:
			return "bool"
		}
		return "null"
	}
	walk("")
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one JSON document: %s", doc)
	}
	return out
}

// gitKeys lists the keys of git credential lines in order.
func gitKeys(text string) []string {
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		k, _, _ := strings.Cut(line, "=")
		keys = append(keys, k)
	}
	return keys
}

// TestDocumentedShapes compares every wire-format example of docs/protocols.md with
// what the binary writes.
func TestDocumentedShapes(t *testing.T) {
	e := newEnv(t)
	e.Consent("--profile", "contoso")
	shape := func(name string) string { return recipe(t, "protocols.md", "shape "+name) }
	same := func(name string, doc, real []string) {
		t.Helper()
		if !reflect.DeepEqual(doc, real) {
			t.Errorf("docs/protocols.md %s example:\n  %s\nthe binary writes:\n  %s", name, strings.Join(doc, "\n  "), strings.Join(real, "\n  "))
		}
	}
	get := []string{"get", "--profile", "contoso", "--scope", "graph", "--tenant", entrasim.CustomerTenantDomain}

	same("json", jsonShape(t, shape("json")), jsonShape(t, e.MustRun(get...).Stdout))
	for _, out := range []string{"az", "azd"} {
		real := e.MustRun(append(get, "--output", out)...).Stdout
		same(out, jsonShape(t, shape(out)), jsonShape(t, real))
		// Indented as az and azd print it, one field per line.
		if lines := strings.Split(strings.TrimSpace(real), "\n"); len(lines) != strings.Count(shape(out), "\n")-0 {
			t.Errorf("%s: %d lines, the docs show %d:\n%s", out, len(lines), strings.Count(shape(out), "\n"), shape(out))
		}
	}

	// exec-credential: the documented input, answered in the documented shape.
	e.Vars["KUBERNETES_EXEC_INFO"] = shape("exec-info")
	res := e.MustRun("exec-credential")
	delete(e.Vars, "KUBERNETES_EXEC_INFO")
	same("exec-credential", jsonShape(t, shape("exec-credential")), jsonShape(t, res.Stdout))
	var cred struct{ Status struct{ Token string } }
	json.Unmarshal([]byte(res.Stdout), &cred)
	if c, err := e.Sim.ValidateAccessToken(cred.Status.Token); err != nil || c.TenantID != entrasim.CustomerTenantID || c.Audience != aksServerApp {
		t.Errorf("the documented KUBERNETES_EXEC_INFO's settings were not used: %v %s %s", err, c.TenantID, c.Audience)
	}

	// git: the documented request, answered with the documented keys.
	res = e.RunStdin(shape("git-request")+"\n", "git-credential", "--profile", "contoso", "--scope", "azure-devops", "get")
	same("git answer", gitKeys(shape("git-answer")), gitKeys(res.Stdout))

	// The error example is the real error, word for word.
	e.Sim.ExpireRefreshTokens()
	res = e.Run(append(get, "--force-refresh")...)
	if res.Code != 3 {
		t.Errorf("expired refresh token: exit %d", res.Code)
	}
	var doc, real any
	json.Unmarshal([]byte(shape("error")), &doc)
	if err := json.Unmarshal([]byte(res.Stdout), &real); err != nil || !reflect.DeepEqual(doc, real) {
		t.Errorf("docs/protocols.md error example:\n%s\nthe binary writes:\n%s", shape("error"), res.Stdout)
	}
}

// TestDocsCommandLines checks every pctoken-helper command line in the docs against
// the binary's own --help: the command exists and takes every flag shown. PowerShell
// continuation lines (`) and shell ones (\) are joined first.
func TestDocsCommandLines(t *testing.T) {
	e := newEnv(t)
	help := map[string]string{}
	helpOf := func(cmd string) string {
		if h, ok := help[cmd]; ok {
			return h
		}
		res := e.Run(append(strings.Fields(cmd), "--help")...)
		if res.Code != 0 {
			help[cmd] = ""
			return ""
		}
		help[cmd] = res.Stdout
		return res.Stdout
	}
	var (
		fenceBlock = regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
		shellExpr  = regexp.MustCompile(`\$\{[^}]*\}`)
		flagRe     = regexp.MustCompile(`^(--[a-z][a-z0-9-]*|-[a-z])(=.*)?$`)
	)
	checked := 0
	for _, page := range myPages {
		for _, block := range fenceBlock.FindAllStringSubmatch(readDoc(t, page), -1) {
			text := strings.NewReplacer("`\n", " ", "\\\n", " ").Replace(block[1])
			for _, line := range strings.Split(text, "\n") {
				line = shellExpr.ReplaceAllString(line, "")
				for _, part := range strings.Split(line, "pctoken-helper ")[1:] {
					fields := strings.Fields(part)
					if len(fields) == 0 || !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(fields[0]) {
						continue
					}
					cmd := fields[0]
					h := helpOf(cmd)
					// A command with subcommands (setup git, profile show): their help has the flags.
					if len(fields) > 1 && strings.Contains(h, "\n  "+cmd+" "+fields[1]+" ") {
						cmd += " " + fields[1]
						fields = append([]string{cmd}, fields[2:]...)
						h = helpOf(cmd)
					}
					if h == "" {
						// Prose ("pctoken-helper failed ...") unless flags follow.
						if len(fields) > 1 && strings.HasPrefix(fields[1], "-") {
							t.Errorf("docs/%s: unknown command %q in %q", page, cmd, strings.TrimSpace(line))
						}
						continue
					}
					for _, f := range fields[1:] {
						f = strings.Trim(f, `'"`)
						if strings.ContainsAny(f, "|;)&>") {
							break
						}
						m := flagRe.FindStringSubmatch(f)
						if m == nil {
							continue
						}
						if !regexp.MustCompile(`(^|[ ,])` + regexp.QuoteMeta(m[1]) + `[ ,=\n]`).MatchString(h) {
							t.Errorf("docs/%s: %s has no flag %s (in %q)", page, cmd, m[1], strings.TrimSpace(line))
						}
						checked++
					}
				}
			}
		}
	}
	// The PowerShell function builds its arguments in an array.
	ps := readDoc(t, "powershell.md")
	for _, m := range regexp.MustCompile(`\$helperArgs[^\n]*`).FindAllString(ps, -1) {
		for _, f := range regexp.MustCompile(`'(--[a-z-]+)'`).FindAllStringSubmatch(m, -1) {
			if !strings.Contains(helpOf("get"), f[1]) {
				t.Errorf("docs/powershell.md: get has no flag %s", f[1])
			}
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("only %d flags checked: is the extraction broken?", checked)
	}
	t.Logf("%d flags checked", checked)
}

// TestDocsNames checks the variable names and JSON fields the docs rely on.
func TestDocsNames(t *testing.T) {
	// Variables: the helper's flags' variables, and those without a flag.
	e := newEnv(t)
	known := map[string]bool{"PCTOKEN_CLIENT_SECRET": true, "PCTOKEN_FILE_PASSPHRASE": true, "PCTOKEN_REFRESH_TOKEN": true}
	for _, cmd := range []string{"get", "consent"} {
		for _, v := range regexp.MustCompile(`\$(PCTOKEN_[A-Z_]+)`).FindAllStringSubmatch(e.MustRun(cmd, "--help").Stdout, -1) {
			known[v[1]] = true
		}
	}
	for _, page := range myPages {
		for _, v := range regexp.MustCompile(`PCTOKEN_[A-Z_]+`).FindAllString(readDoc(t, page), -1) {
			if !known[v] {
				t.Errorf("docs/%s names %s, which the helper does not read", page, v)
			}
		}
	}

	// JSON fields the PowerShell samples read.
	e.Consent()
	var answer map[string]any
	json.Unmarshal([]byte(e.MustRun("get").Stdout), &answer)
	var errAnswer struct{ Error map[string]any }
	json.Unmarshal([]byte(`{"error":{"code":"","aadsts":"","message":"","remedy":""}}`), &errAnswer)
	ps := readDoc(t, "powershell.md")
	for _, m := range regexp.MustCompile(`\$(?:answer|a)\.([a-z_]+)(?:\.([a-z_]+))?`).FindAllStringSubmatch(ps, -1) {
		switch {
		case m[1] == "error" && m[2] != "":
			if _, ok := errAnswer.Error[m[2]]; !ok {
				t.Errorf("docs/powershell.md reads error.%s", m[2])
			}
		case m[1] == "error", m[1] == "id":
		default:
			if _, ok := answer[m[1]]; !ok {
				t.Errorf("docs/powershell.md reads %s, which get's json output lacks", m[1])
			}
		}
	}
	var status struct {
		Profiles []map[string]any `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(e.MustRun("status", "--output", "json").Stdout), &status); err != nil || len(status.Profiles) == 0 {
		t.Fatalf("status --output json: %v", err)
	}
	for _, f := range []string{"name", "account"} {
		if _, ok := status.Profiles[0][f]; !ok || !strings.Contains(ps, f) {
			t.Errorf("status profile field %s", f)
		}
	}
}

// TestDocsPagesExist: the pages link to each other and to pages other engineers
// write; a link to a page that does not exist is a broken doc.
func TestDocsPagesExist(t *testing.T) {
	linkRe := regexp.MustCompile(`\]\(([a-z-]+\.md)(#[a-z0-9-]+)?\)`)
	docs := filepath.Join(repoRoot(t), "docs")
	for _, page := range myPages {
		for _, m := range linkRe.FindAllStringSubmatch(readDoc(t, page), -1) {
			if _, err := os.Stat(filepath.Join(docs, m[1])); err != nil {
				t.Logf("docs/%s links to %s, which does not exist (yet)", page, m[1])
				continue
			}
			if m[2] != "" && slices.Contains(myPages, m[1]) && !slices.Contains(anchors(readDoc(t, m[1])), m[2][1:]) {
				t.Errorf("docs/%s links to %s%s: no such heading", page, m[1], m[2])
			}
		}
	}
}

// anchors are the GitHub anchors of a page's headings.
func anchors(doc string) []string {
	var out []string
	for _, line := range strings.Split(doc, "\n") {
		h, ok := strings.CutPrefix(line, "#")
		if !ok {
			continue
		}
		h = strings.ToLower(strings.TrimSpace(strings.TrimLeft(h, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}
