package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/pctoken/pctoken-helper/cloud"
	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/kubeconfig"
	"github.com/pctoken/pctoken-helper/profile"
)

// SetupCmd writes the configuration the docs otherwise ask people to paste.
type SetupCmd struct {
	Git        SetupGitCmd        `cmd:"" help:"Configure git (git config --global) to get Azure DevOps credentials from the helper."`
	Kubeconfig SetupKubeconfigCmd `cmd:"" help:"Point a kubeconfig user at the exec-credential plugin, as kubelogin convert-kubeconfig does."`
}

// defaultGitHosts are the hosts git-credential answers for unless told otherwise.
var defaultGitHosts = []string{"dev.azure.com", "*.visualstudio.com"}

// SetupGitCmd writes git's credential helper configuration.
type SetupGitCmd struct {
	Host   []string `placeholder:"H" help:"Host to configure (glob, repeatable; default: dev.azure.com and *.visualstudio.com)."`
	Scope  string   `placeholder:"S" predictor:"scope" help:"Scope of the tokens handed to git (default: azure-devops, i.e. 499b84ac-1321-427f-aa17-267ca6975798/.default)."`
	DryRun bool     `name:"dry-run" help:"Print the git config commands instead of running them."`
}

// gitConfigCommands are the git config invocations (arguments after "git") that
// configure host h: the first clears helpers configured before (Git Credential
// Manager, store) for that URL, so that running them again leaves one entry.
func gitConfigCommands(h, helperLine string) [][]string {
	key := "credential.https://" + h
	return [][]string{
		{"config", "--global", "--replace-all", key + ".helper", ""},
		{"config", "--global", "--add", key + ".helper", helperLine},
		{"config", "--global", key + ".useHttpPath", "true"},
	}
}

func (c *SetupGitCmd) Run(ctx context.Context, a *App) error {
	hosts := c.Host
	if len(hosts) == 0 {
		hosts = defaultGitHosts
	}
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/\\ \t\n\"'") {
			return usageError("invalid --host %q: give a host name such as dev.azure.com (globs like *.visualstudio.com allowed)", h)
		}
		if _, err := path.Match(h, ""); err != nil {
			return usageError("invalid --host %q: %w", h, err)
		}
	}
	if err := a.profileForSetup(); err != nil {
		return err
	}
	scope := c.Scope
	if scope == "" {
		scope = cloud.AzureDevOpsResource + "/.default"
	}
	bin := helperCommand()
	var cmds [][]string
	for _, h := range hosts {
		// git runs the line after "!" through the shell.
		line := "!" + shellJoin([]string{bin, "git-credential", "--profile", a.profileName(""), "--scope", scope})
		if !matchesAny(defaultGitHosts, h) {
			line += " --host " + shellQuote(h) // git-credential answers only for hosts it allows
		}
		cmds = append(cmds, gitConfigCommands(h, line)...)
	}
	if c.DryRun {
		for _, args := range cmds {
			fmt.Fprintln(a.Stdout, shellJoin(append([]string{"git"}, args...)))
		}
		return nil
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return configError("failed to find git on PATH: %w", err)
	}
	for _, args := range cmds {
		cmd := exec.CommandContext(ctx, git, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out // git's own words go to stderr, never stdout
		if err := cmd.Run(); err != nil {
			return configError("failed to run git %s: %w: %s", shellJoin(args), err, strings.TrimSpace(shown(out.String())))
		}
	}
	fmt.Fprintf(a.Stderr, "Configured git (global config) to get tokens for %s from profile %s.\n", strings.Join(hosts, ", "), a.profileName(""))
	return nil
}

func matchesAny(globs []string, host string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, host); ok {
			return true
		}
	}
	return false
}

// SetupKubeconfigCmd converts a kubeconfig user to the exec plugin.
type SetupKubeconfigCmd struct {
	Kubeconfig string   `placeholder:"FILE" type:"path" help:"The kubeconfig to edit (default: the first file of $KUBECONFIG, else ~/.kube/config)."`
	Context    string   `placeholder:"C" help:"Convert the user of this context (default: the current context)."`
	User       string   `placeholder:"U" help:"Convert this user."`
	Scope      []string `placeholder:"S" predictor:"scope" help:"Scope for the cluster (default: aks, i.e. 6dae42f8-4368-4678-94ff-3960e28e3630/.default)."`
	DryRun     bool     `name:"dry-run" help:"Print the resulting kubeconfig to stdout and change nothing."`
}

func (c *SetupKubeconfigCmd) Run(a *App) error {
	if c.Context != "" && c.User != "" {
		return usageError("give --context or --user, not both")
	}
	if err := a.profileForSetup(); err != nil {
		return err
	}
	home, _ := os.UserHomeDir()
	file, err := kubeconfig.Path(c.Kubeconfig, a.Getenv("KUBECONFIG"), home)
	if err != nil {
		return usageError("%w", err)
	}
	doc, err := kubeconfig.Read(file)
	if err != nil {
		e := failure.Errorf(failure.Configuration, "failed to read the kubeconfig: %w", err)
		if kubeconfig.IsNotExist(err) {
			e.Remedy = "get the cluster's kubeconfig first, e.g. az aks get-credentials --resource-group RG --name CLUSTER"
		}
		return e
	}
	scopes := c.Scope
	if len(scopes) == 0 {
		scopes = []string{"aks"}
	}
	args := []string{"exec-credential", "--profile", a.profileName("")}
	if a.Tenant != "" {
		args = append(args, "--tenant", a.Tenant)
	}
	prof, err := a.settingsFor("")
	if err != nil {
		return err
	}
	for _, s := range scopes {
		// Written out in full: the kubeconfig then says which resource it trusts.
		args = append(args, "--scope", prof.Login.Scope(s))
	}
	out, user, err := kubeconfig.Convert(doc, kubeconfig.Selector{Context: c.Context, User: c.User}, kubeconfig.Exec{Command: helperCommand(), Args: args})
	if err != nil {
		return usageError("%s: %w", file, err)
	}
	if c.DryRun {
		_, err := a.Stdout.Write(out)
		return err
	}
	if bytes.Equal(out, doc) {
		fmt.Fprintf(a.Stderr, "User %s in %s already runs pctoken-helper exec-credential; nothing changed.\n", user, file)
		return nil
	}
	if err := kubeconfig.WriteAtomic(file, out); err != nil {
		return configError("failed to write the kubeconfig: %w", err)
	}
	fmt.Fprintf(a.Stderr, "User %s in %s now gets its tokens from pctoken-helper exec-credential (profile %s).\n", user, file, a.profileName(""))
	return nil
}

// profileForSetup refuses to write configuration for a mistyped profile: one that
// is not saved while others are is a usage error naming the nearest. With none saved
// yet, configuring first and consenting afterwards is fine: it only says so.
func (a *App) profileForSetup() error {
	name := a.profileName("")
	dir, err := a.given().Profiles()
	if err != nil {
		return err
	}
	if err := profile.ValidName(name); err != nil {
		return usageError("%w", err)
	}
	_, err = dir.Load(name)
	if err == nil || a.Getenv("PCTOKEN_REFRESH_TOKEN") != "" {
		return nil
	}
	saved, _ := dir.List()
	if errors.Is(err, profile.ErrNotFound) && len(saved) == 0 {
		a.warnf("profile %s is not saved yet: run pctoken-helper consent --profile %s --client-id ID before using this configuration", name, name)
		return nil
	}
	return unknownProfile(name, saved, err)
}

// helperCommand is how configuration written for git and kubectl names this
// program: "pctoken-helper" when that name on PATH is this very binary, as the docs
// assume, else the binary's absolute path.
func helperCommand() string {
	const name = "pctoken-helper"
	self, err := os.Executable()
	if err != nil {
		return name
	}
	if onPath, err := exec.LookPath(name); err == nil && sameFile(onPath, self) {
		return name
	}
	if abs, err := filepath.Abs(self); err == nil {
		return abs
	}
	return self
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// shellJoin quotes args for a POSIX shell, so that a dry run prints commands that
// can be pasted as they are.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, s := range args {
		out[i] = shellQuote(s)
	}
	return strings.Join(out, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
