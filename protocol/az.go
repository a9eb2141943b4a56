package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The Azure CLI commands `pctoken-helper az` answers, as tools that authenticate
// through az call them: hashicorp/go-azure-sdk's Azure CLI authorizer (Terraform's
// azurerm provider) runs `version`, `account show`, `account list` (when it is given a
// subscription) and `account get-access-token`; azidentity's AzureCLICredential runs
// `account get-access-token` alone.
const (
	AzGetAccessToken = "account get-access-token"
	AzAccountShow    = "account show"
	AzAccountList    = "account list"
	AzVersion        = "version"
)

// AzCommands lists what is answered, for messages and help.
var AzCommands = []string{AzGetAccessToken, AzAccountShow, AzAccountList, AzVersion}

// AzCLIVersion is the Azure CLI version `az version` claims. The shapes answered are
// those of azure-cli 2.54 and later (get-access-token's expires_on); go-azure-sdk
// accepts 2.0.81 up to, not including, 3.0.0.
const AzCLIVersion = "2.75.0"

// azTelemetryVersion is the azure-cli-telemetry package that ships with AzCLIVersion.
const azTelemetryVersion = "1.1.0"

// AzCall is an az command line as the helper reads it.
type AzCall struct {
	Command string // one of AzCommands
	Help    bool   // -h or --help: show what is answered

	Resource     string   // get-access-token --resource
	Scopes       []string // get-access-token --scope (one or more values)
	Tenant       string   // get-access-token --tenant/-t
	Subscription string   // --subscription/-s (get-access-token, account show)

	Output string // json (default), jsonc, tsv or none
	Query  string // --query: a JMESPath field path such as accessToken or user.name
}

// azFlag describes one flag of az: its names, whether it takes a value (and how
// many), and where the value goes.
type azFlag struct {
	names []string
	// commands the flag belongs to; nil: every command (az's global arguments).
	commands []string
	// values: 0 a switch, 1 one value, -1 one or more (argparse's nargs='+').
	values int
	set    func(c *AzCall, v []string)
}

var azFlags = []azFlag{
	{names: []string{"--output", "-o"}, values: 1, set: func(c *AzCall, v []string) { c.Output = v[0] }},
	{names: []string{"--query"}, values: 1, set: func(c *AzCall, v []string) { c.Query = v[0] }},
	{names: []string{"--debug", "--verbose", "--only-show-errors"}, set: func(*AzCall, []string) {}},
	{names: []string{"--resource"}, commands: []string{AzGetAccessToken}, values: 1, set: func(c *AzCall, v []string) { c.Resource = v[0] }},
	{names: []string{"--scope"}, commands: []string{AzGetAccessToken}, values: -1, set: func(c *AzCall, v []string) { c.Scopes = v }},
	{names: []string{"--tenant", "-t"}, commands: []string{AzGetAccessToken}, values: 1, set: func(c *AzCall, v []string) { c.Tenant = v[0] }},
	{names: []string{"--subscription", "-s"}, commands: []string{AzGetAccessToken, AzAccountShow}, values: 1, set: func(c *AzCall, v []string) { c.Subscription = v[0] }},
	{names: []string{"--name", "-n"}, commands: []string{AzAccountShow}, values: 1, set: func(c *AzCall, v []string) { c.Subscription = v[0] }},
	{names: []string{"--all", "--refresh"}, commands: []string{AzAccountList}, set: func(*AzCall, []string) {}},
}

// AzFlagNames lists the flags answered per command, for help.
func AzFlagNames(command string) []string {
	var out []string
	for _, f := range azFlags {
		if f.commands == nil || contains(f.commands, command) {
			out = append(out, strings.Join(f.names, "/"))
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ErrAzUnanswered is wrapped by the errors for az commands, flags and outputs that
// the helper does not answer (as opposed to ones az itself would refuse).
var ErrAzUnanswered = errors.New("not answered by pctoken-helper")

// ParseAzArgs reads an az command line (the words after "az"). The command words come
// first, as az takes them; flags take their values as the next word or after "="
// (`-o=json`, as go-azure-sdk writes it), short ones also glued (`-ojson`). Errors name
// what was refused; their text quotes at most a few dozen characters of the input.
func ParseAzArgs(args []string) (AzCall, error) {
	var c AzCall
	if contains(args, "--help") || contains(args, "-h") {
		c.Help = true
		c.Command = strings.Join(leadingWords(args), " ")
		return c, nil
	}
	// The command's words may be split by az's global flags (`az -o json version`):
	// read every flag with its values first, then check them against the command.
	type given struct {
		name   string
		f      azFlag
		values []string
	}
	var words []string
	var flags []given
	for i := 0; i < len(args); {
		arg := args[i]
		i++
		if !isAzFlag(arg) {
			words = append(words, arg)
			continue
		}
		name, value, hasValue := strings.Cut(arg, "=")
		f, ok := lookupAzFlag(name)
		if !ok && !strings.HasPrefix(arg, "--") && len(arg) > 2 {
			// A short flag with its value glued on: -ojson, -tcontoso.com.
			name, value, hasValue = arg[:2], arg[2:], true
			f, ok = lookupAzFlag(name)
		}
		if !ok {
			if cmd := strings.Join(words, " "); !contains(AzCommands, cmd) {
				return c, azUnanswered(cmd)
			}
			return c, fmt.Errorf("unrecognized arguments: %.40q", name)
		}
		var values []string
		switch {
		case f.values == 0 && hasValue:
			return c, fmt.Errorf("argument %s: ignored explicit argument %.40q", name, value)
		case f.values == 0:
		case hasValue:
			values = []string{value}
		default:
			for i < len(args) && !isAzFlag(args[i]) {
				values = append(values, args[i])
				i++
				if f.values == 1 {
					break
				}
			}
			if len(values) == 0 {
				return c, fmt.Errorf("argument %s: expected one argument", name)
			}
		}
		flags = append(flags, given{name, f, values})
	}
	c.Command = strings.Join(words, " ")
	if !contains(AzCommands, c.Command) {
		return c, azUnanswered(c.Command)
	}
	for _, g := range flags {
		if g.f.commands != nil && !contains(g.f.commands, c.Command) {
			return c, fmt.Errorf("unrecognized arguments: %.40q (az %s does not take it)", g.name, c.Command)
		}
		g.f.set(&c, g.values)
	}
	switch c.Output {
	case "":
		c.Output = "json"
	case "json", "jsonc", "tsv", "none":
	case "table", "yaml", "yamlc":
		return c, fmt.Errorf("--output %s: %w; answered: json, jsonc, tsv (with --query for one value), none", c.Output, ErrAzUnanswered)
	default:
		return c, fmt.Errorf("argument --output/-o: invalid choice: %.20q (choose from 'json', 'jsonc', 'none', 'table', 'tsv', 'yaml', 'yamlc')", c.Output)
	}
	if c.Command == AzGetAccessToken {
		if c.Resource != "" && len(c.Scopes) > 0 {
			return c, errors.New("usage error: --resource and --scope can't be used together")
		}
		if c.Subscription != "" && c.Tenant != "" {
			return c, errors.New("usage error: --subscription and --tenant can't be used together")
		}
	}
	if _, err := parseAzQuery(c.Query); err != nil {
		return c, err
	}
	return c, nil
}

func azUnanswered(command string) error {
	return fmt.Errorf("az %.60q: %w; answered: az %s", command, ErrAzUnanswered, strings.Join(AzCommands, ", az "))
}

// leadingWords are the words before the first flag: the command az was asked about.
func leadingWords(args []string) []string {
	for i, a := range args {
		if isAzFlag(a) {
			return args[:i]
		}
	}
	return args
}

func lookupAzFlag(name string) (azFlag, bool) {
	for _, f := range azFlags {
		if contains(f.names, name) {
			return f, true
		}
	}
	return azFlag{}, false
}

// isAzFlag tells whether an argument starts a flag rather than being a value: argparse
// takes "-5" or "-" as values only when they cannot be options.
func isAzFlag(arg string) bool {
	return strings.HasPrefix(arg, "-") && arg != "-"
}

// AzAccount is one entry of `az account show` / `az account list`.
type AzAccount struct {
	EnvironmentName string // AzureCloud, AzureUSGovernment, AzureChinaCloud
	SubscriptionID  string // "" for a tenant-level account
	TenantID        string
	IsDefault       bool
	User            string // the signed-in account's user name
}

// azAccountJSON is the shape of `az account show -o json`, keys sorted as az sorts
// them.
type azAccountJSON struct {
	EnvironmentName  string     `json:"environmentName"`
	HomeTenantID     string     `json:"homeTenantId"`
	ID               string     `json:"id"`
	IsDefault        bool       `json:"isDefault"`
	ManagedByTenants []struct{} `json:"managedByTenants"`
	Name             string     `json:"name"`
	State            string     `json:"state"`
	TenantID         string     `json:"tenantId"`
	User             azUserJSON `json:"user"`
}

type azUserJSON struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// azTenantLevelName is what az names an account with no subscription (az login
// --allow-no-subscriptions); its id is then the tenant id.
const azTenantLevelName = "N/A(tenant level account)"

func newAzAccountJSON(a AzAccount) azAccountJSON {
	id, name := a.SubscriptionID, a.SubscriptionID
	if id == "" {
		id, name = a.TenantID, azTenantLevelName
	}
	return azAccountJSON{
		EnvironmentName:  a.EnvironmentName,
		HomeTenantID:     a.TenantID,
		ID:               id,
		IsDefault:        a.IsDefault,
		ManagedByTenants: []struct{}{},
		Name:             name,
		State:            "Enabled",
		TenantID:         a.TenantID,
		User:             azUserJSON{Name: a.User, Type: "user"},
	}
}

// AzAccountJSON is `az account show -o json` for a.
func AzAccountJSON(a AzAccount) ([]byte, error) {
	return indented(newAzAccountJSON(a))
}

// AzAccountListJSON is `az account list -o json` for accounts.
func AzAccountListJSON(accounts []AzAccount) ([]byte, error) {
	list := make([]azAccountJSON, 0, len(accounts))
	for _, a := range accounts {
		list = append(list, newAzAccountJSON(a))
	}
	return indented(list)
}

// AzVersionJSON is `az version -o json`; the helper's own version is listed as an
// extension, where tools that read azure-cli's version never look.
func AzVersionJSON(helperVersion string) ([]byte, error) {
	return indented(struct {
		AzureCLI          string            `json:"azure-cli"`
		AzureCLICore      string            `json:"azure-cli-core"`
		AzureCLITelemetry string            `json:"azure-cli-telemetry"`
		Extensions        map[string]string `json:"extensions"`
	}{AzCLIVersion, AzCLIVersion, azTelemetryVersion, map[string]string{"pctoken-helper": helperVersion}})
}

func indented(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeIndented(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteAzResult writes doc, an answer in az's JSON shape, as az writes it with
// --output and --query: json and jsonc as they are (the query's result indented
// alike), tsv for a single value (a string bare, as `-o tsv --query accessToken`
// gives it), none not at all. A query that finds nothing writes nothing, as az does.
func WriteAzResult(w io.Writer, doc []byte, output, query string) error {
	if output == "none" {
		return nil
	}
	if query == "" && output != "tsv" {
		_, err := w.Write(doc)
		return err
	}
	path, err := parseAzQuery(query)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	for _, seg := range path {
		v = seg.apply(v)
	}
	if v == nil {
		return nil
	}
	if output != "tsv" {
		return writeIndented(w, v)
	}
	var line string
	switch x := v.(type) {
	case string:
		line = x
	case json.Number:
		line = x.String()
	case bool:
		line = strconv.FormatBool(x)
	default:
		return fmt.Errorf("-o tsv is answered for one value: add --query with a field, such as accessToken: %w", ErrAzUnanswered)
	}
	_, err = io.WriteString(w, line+"\n")
	return err
}

// azSegment is one step of a query path: a field name or a list index.
type azSegment struct {
	field string
	index int
	isIdx bool
}

func (s azSegment) apply(v any) any {
	if s.isIdx {
		l, ok := v.([]any)
		i := s.index
		if i < 0 && ok {
			i += len(l)
		}
		if !ok || i < 0 || i >= len(l) {
			return nil
		}
		return l[i]
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	return m[s.field]
}

// parseAzQuery reads the part of JMESPath that scripts use with az's token and
// account answers: fields (bare or "quoted") joined by dots, and list indexes
// ("[0].id"). Anything else is refused with a usage error rather than misread.
func parseAzQuery(q string) ([]azSegment, error) {
	var out []azSegment
	unanswered := func() ([]azSegment, error) {
		return nil, fmt.Errorf("--query %.60q: %w; answered: a field path such as accessToken, user.name or [0].id", q, ErrAzUnanswered)
	}
	for i := 0; i < len(q); {
		if len(out) > 0 && q[i] == '.' {
			i++
			if i == len(q) {
				return unanswered()
			}
		}
		switch c := q[i]; {
		case c == '[':
			end := strings.IndexByte(q[i:], ']')
			if end < 0 {
				return unanswered()
			}
			n, err := strconv.Atoi(q[i+1 : i+end])
			if err != nil || n > 1<<20 || n < -(1<<20) {
				return unanswered()
			}
			out = append(out, azSegment{index: n, isIdx: true})
			i += end + 1
		case c == '"':
			end := strings.IndexByte(q[i+1:], '"')
			if end < 0 {
				return unanswered()
			}
			field := q[i+1 : i+1+end]
			if field == "" || strings.ContainsAny(field, `\`) {
				return unanswered()
			}
			out = append(out, azSegment{field: field})
			i += end + 2
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			out = append(out, azSegment{field: q[i:j]})
			i = j
		default:
			return unanswered()
		}
		if i < len(q) && q[i] != '.' && q[i] != '[' {
			return unanswered()
		}
	}
	return out, nil
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}
