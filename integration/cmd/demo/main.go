// Command demo runs pctoken-helper's whole flow offline against the Entra ID
// simulator, narrating each step: consent, an exchange, a cache hit, a token in a
// customer tenant, a silent refresh with refresh-token rotation, and status. It uses
// the real binary and the encrypted file store in a temporary folder, which it removes.
//
//	go run ./integration/cmd/demo
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	bin string
	env []string
	sim *entrasim.Sim
}

func run() error {
	dir, err := os.MkdirTemp("", "pctoken-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("Build pctoken-helper (CGO_ENABLED=0, one static binary)")
	bin := filepath.Join(dir, "pctoken-helper")
	build := exec.Command("go", "build", "-o", bin, "github.com/pctoken/pctoken-helper/cmd/pctoken-helper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	sim, err := entrasim.Start(entrasim.Options{Dir: filepath.Join(dir, "sim")})
	if err != nil {
		return err
	}
	defer sim.Close()
	sim.ApproveDeviceCodes(true)
	say("Entra ID simulator listening on %s (its CA is trusted through SSL_CERT_FILE).", sim.URL())
	say("Partner tenant %s, customer tenant %s, user %s.", entrasim.HomeTenantID, entrasim.CustomerTenantID, entrasim.UserUPN)

	d := &demo{bin: bin, sim: sim, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"SSL_CERT_FILE=" + sim.CAFile(),
		"PCTOKEN_AUTHORITY_HOST=" + sim.URL(),
		"PCTOKEN_CONFIG_DIR=" + filepath.Join(dir, "config"),
		"PCTOKEN_CACHE_DIR=" + filepath.Join(dir, "cache"),
		"PCTOKEN_STORE=file",
		"PCTOKEN_STORE_DIR=" + filepath.Join(dir, "store"),
		"PCTOKEN_FILE_PASSPHRASE=demo-passphrase",
	}}

	step("1. Consent, once: device-code flow for a public client (the simulator signs the user in)")
	if _, err := d.helper("consent", "--profile", "contoso", "--client-id", entrasim.PublicClientID, "--flow", "device-code"); err != nil {
		return err
	}
	say("The refresh token is now in the encrypted file store; it was never printed.")

	step("2. Exchange: an access token for Partner Center in the partner's tenant")
	sim.ResetStats()
	out, err := d.helper("get", "--profile", "contoso", "--scope", "partner-center")
	if err != nil {
		return err
	}
	first, err := d.describe(out)
	if err != nil {
		return err
	}
	say("Requests to the identity provider: %s", d.requests())

	step("3. Cache hit: the same request again")
	sim.ResetStats()
	out, err = d.helper("get", "--profile", "contoso", "--scope", "partner-center")
	if err != nil {
		return err
	}
	if _, err := d.describe(out); err != nil {
		return err
	}
	say("Requests to the identity provider: %s", d.requests())

	step("4. A customer tenant (GDAP): Microsoft Graph in " + entrasim.CustomerTenantDomain)
	out, err = d.helper("get", "--profile", "contoso", "--scope", "graph", "--tenant", entrasim.CustomerTenantID)
	if err != nil {
		return err
	}
	if _, err := d.describe(out); err != nil {
		return err
	}

	step("5. Silent refresh: the cached token expires within --min-validity, so the refresh token is redeemed and rotated")
	sim.ResetStats()
	out, err = d.helper("get", "--profile", "contoso", "--scope", "partner-center", "--min-validity", "61m")
	if err != nil {
		return err
	}
	second, err := d.describe(out)
	if err != nil {
		return err
	}
	st := sim.Stats()
	say("Requests: %s; refresh tokens redeemed %d, issued %d (the rotated one is saved).", d.requests(), st.RefreshTokensRedeemed, st.RefreshTokensIssued)
	if second.AccessToken == first.AccessToken {
		return fmt.Errorf("the refresh returned the old token")
	}

	step("6. kubectl's view: exec-credential")
	if _, err := d.helper("exec-credential", "--profile", "contoso", "--scope", "aks"); err != nil {
		return err
	}

	step("7. git's view: git-credential answers for Azure DevOps only")
	if _, err := d.helperStdin("protocol=https\nhost=dev.azure.com\n\n", "git-credential", "--profile", "contoso", "--scope", "azure-devops", "get"); err != nil {
		return err
	}
	if _, err := d.helperStdin("protocol=https\nhost=example.com\n\n", "git-credential", "--profile", "contoso", "--scope", "azure-devops", "get"); err != nil {
		return err
	}
	say("(nothing for example.com: a token never reaches a host that is not allowed)")

	step("8. A batch over tenants: get --request, one JSON line per request, answered concurrently")
	batch := fmt.Sprintf("{\"id\":1,\"profile\":\"contoso\",\"tenant\":%q,\"scopes\":[\"graph\"]}\n{\"id\":2,\"profile\":\"contoso\",\"tenant\":%q,\"scopes\":[\"arm\"]}\n", entrasim.CustomerTenantID, entrasim.CustomerTenantID)
	if _, err := d.helperStdin(batch, "get", "--request", "-"); err != nil {
		return err
	}

	step("9. status: what is stored (never a secret)")
	if _, err := d.helper("status"); err != nil {
		return err
	}

	if err := d.fleet(dir); err != nil {
		return err
	}

	step("Done. Removing the temporary folder.")
	return nil
}

func step(s string) { fmt.Printf("\n\033[1m== %s\033[0m\n", s) }
func say(format string, args ...any) {
	fmt.Printf("   "+format+"\n", args...)
}

// helper runs the binary, echoing the command line, its stderr, and its stdout
// (tokens shortened).
func (d *demo) helper(args ...string) (string, error) {
	return d.helperStdin("", args...)
}

// helperStdin is helper with stdin.
func (d *demo) helperStdin(stdin string, args ...string) (string, error) {
	if stdin != "" {
		fmt.Printf("$ printf %q | pctoken-helper %s\n", stdin, strings.Join(args, " "))
	} else {
		fmt.Printf("$ pctoken-helper %s\n", strings.Join(args, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Env = d.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimRight(errb.String(), "\n"), "\n") {
		if line != "" {
			fmt.Printf("   stderr| %s\n", line)
		}
	}
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if line != "" {
			fmt.Printf("   stdout| %s\n", shorten(line))
		}
	}
	if err != nil {
		return "", fmt.Errorf("pctoken-helper %s: %w", args[0], err)
	}
	return out.String(), nil
}

type tokenJSON struct {
	AccessToken string   `json:"access_token"`
	ExpiresAt   string   `json:"expires_at"`
	TenantID    string   `json:"tenant_id"`
	Scopes      []string `json:"scopes"`
	Cached      bool     `json:"cached"`
}

// describe reads get's JSON and says what the token is, from its claims.
func (d *demo) describe(out string) (tokenJSON, error) {
	var t tokenJSON
	if err := json.Unmarshal([]byte(out), &t); err != nil {
		return t, fmt.Errorf("get printed no JSON: %w", err)
	}
	var claims struct {
		Aud string   `json:"aud"`
		Tid string   `json:"tid"`
		UPN string   `json:"upn"`
		AMR []string `json:"amr"`
	}
	if parts := strings.Split(t.AccessToken, "."); len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			json.Unmarshal(b, &claims)
		}
	}
	say("token for %s in tenant %s, user %s (amr %s), expires %s, cached=%v",
		claims.Aud, claims.Tid, claims.UPN, strings.Join(claims.AMR, ","), t.ExpiresAt, t.Cached)
	return t, nil
}

func (d *demo) requests() string {
	st := d.sim.Stats()
	var parts []string
	for _, ep := range []string{"openid-configuration", "token"} {
		parts = append(parts, fmt.Sprintf("%s %d", ep, st.Requests[ep]))
	}
	return strings.Join(parts, ", ")
}

// shorten keeps printed tokens readable; the demo's tokens are the simulator's.
func shorten(line string) string {
	const keep = 24
	var b strings.Builder
	for _, field := range strings.Split(line, `"`) {
		if len(field) > 80 && !strings.Contains(field, " ") {
			field = field[:keep] + "…(" + fmt.Sprint(len(field)) + " chars)"
		}
		b.WriteString(field)
		b.WriteString(`"`)
	}
	return strings.TrimSuffix(b.String(), `"`)
}
