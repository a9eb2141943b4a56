package main

import (
	"os"
	"path/filepath"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/kvsim"
	"github.com/pctoken/pctoken-helper/integration/tlsproxy"
)

// fleet is the demo's last step: the refresh token in (simulated) Azure Key Vault,
// consented once on an admin's machine and used by a fleet machine that has only
// environment variables (docs/keyvault.md).
func (d *demo) fleet(dir string) error {
	step("10. A fleet: consent once into Azure Key Vault; another machine, with no profile, gets tokens from it")
	vault, err := kvsim.Start(kvsim.Options{Entra: d.sim, Dir: filepath.Join(dir, "vault")})
	if err != nil {
		return err
	}
	defer vault.Close()
	vault.Grant(entrasim.ConfidentialClientID, kvsim.Write) // the machines' service principal
	proxy, err := tlsproxy.Start(tlsproxy.Route{Pattern: "*.vault.azure.net:443", Target: vault.Addr()})
	if err != nil {
		return err
	}
	defer proxy.Close()
	var bundle []byte
	for _, f := range []string{d.sim.CAFile(), vault.CAFile()} {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		bundle = append(bundle, b...)
	}
	caFile := filepath.Join(dir, "ca-bundle.pem")
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		return err
	}
	secret := kvsim.SecretURL("contoso-sam", "partner-refresh-token")
	say("Key Vault simulator reached as https://contoso-sam.vault.azure.net through a CONNECT proxy (HTTPS_PROXY).")
	machine := func(name string) *demo {
		return &demo{bin: d.bin, sim: d.sim, env: []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + filepath.Join(dir, name),
			"SSL_CERT_FILE=" + caFile,
			"HTTPS_PROXY=" + proxy.URL(),
			"NO_PROXY=127.0.0.1",
			"PCTOKEN_AUTHORITY_HOST=" + d.sim.URL(),
			"PCTOKEN_CONFIG_DIR=" + filepath.Join(dir, name, "config"),
			"PCTOKEN_CACHE_DIR=" + filepath.Join(dir, name, "cache"),
			"PCTOKEN_KEYVAULT_AUTH=environment",
			"AZURE_TENANT_ID=" + entrasim.HomeTenantID,
			"AZURE_CLIENT_ID=" + entrasim.ConfidentialClientID,
			"AZURE_CLIENT_SECRET=" + entrasim.ClientSecret,
			"AZURE_AUTHORITY_HOST=" + d.sim.URL(),
		}}
	}
	admin := machine("admin")
	if _, err := admin.helper("consent", "--client-id", entrasim.PublicClientID, "--flow", "device-code",
		"--store", "azure-keyvault", "--keyvault-secret", secret); err != nil {
		return err
	}
	runner := machine("runner")
	runner.env = append(runner.env, "PCTOKEN_CLIENT_ID="+entrasim.PublicClientID, "PCTOKEN_TENANT="+entrasim.HomeTenantID,
		"PCTOKEN_STORE=azure-keyvault", "PCTOKEN_KEYVAULT_SECRET="+secret)
	if _, err := runner.helper("get", "--scope", "graph", "-o", "token"); err != nil {
		return err
	}
	st := vault.Stats()
	say("The vault saw %d read(s) and %d write(s); the runner's disk never held the refresh token.", st["get"], st["set"])
	if _, err := admin.helper("renew"); err != nil {
		return err
	}
	_, err = admin.helper("status")
	return err
}
