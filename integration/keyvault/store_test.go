package keyvault

import (
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/keyvault"
)

// Consent once into the vault; another machine with no profile of its own gets
// tokens from it; the costs are those docs/keyvault.md states.
func TestConsentOnceServeAnotherMachine(t *testing.T) {
	w := newWorld(t)
	admin := w.machine(writerID, writerSecret)
	res := admin.Consent()
	wantStderr(t, res, "consent", "store:       azure-keyvault")
	v := w.latestValid(t)
	if v.Tags[keyvault.TagReason] != "set" || v.Tags[keyvault.TagClientID] != entrasim.PublicClientID || v.Tags[keyvault.TagWriter] == "" || strings.ContainsAny(v.Value, "{\" \n") {
		t.Fatalf("the version consent wrote: tags %v, value not a bare token: %t", v.Tags, strings.ContainsAny(v.Value, "{\" \n"))
	}

	// A fleet machine: only environment variables, a reader of the vault.
	m := w.machine(readerID, readerSecret)
	vb, eb := w.vault.Stats(), w.entra.Stats()
	tok := harness.DecodeToken(t, m.MustRun("get", "-s", "graph").Stdout)
	if tok.Cached || tok.AccessToken == "" {
		t.Fatalf("first get: %+v", tok)
	}
	va, ea := w.vault.Stats(), w.entra.Stats()
	// One read, after the vault's challenge; no write (the version is fresh). At Entra:
	// the vault's token (client credentials) and the redemption.
	if d := delta(va, vb); d["challenge"] != 1 || d["get"] != 1 || len(d) != 2 {
		t.Fatalf("vault requests of a refresh: %v", d)
	}
	if g := delta(ea.Grants, eb.Grants); g["client_credentials"] != 1 || g["refresh_token"] != 1 || len(g) != 2 {
		t.Fatalf("Entra grants of the first refresh: %v", g)
	}
	t.Logf("first refresh of a machine: vault %v, Entra %v", delta(va, vb), delta(ea.Requests, eb.Requests))

	// A hit: nothing at all, neither at the vault nor at Entra.
	vb, eb = va, ea
	if tok := harness.DecodeToken(t, m.MustRun("get", "-s", "graph").Stdout); !tok.Cached {
		t.Fatal("second get was not a hit")
	}
	if d := delta(w.vault.Stats(), vb); len(d) != 0 {
		t.Fatalf("a hit reached the vault: %v", d)
	}
	if d := delta(w.entra.Stats().Requests, eb.Requests); len(d) != 0 {
		t.Fatalf("a hit reached Entra: %v", d)
	}

	// A refresh in a new process: the vault's access token comes from the cache, so
	// Entra sees one request, the redemption.
	vb, eb = w.vault.Stats(), w.entra.Stats()
	m.MustRun("get", "-s", "graph", "--force-refresh")
	if d := delta(w.vault.Stats(), vb); d["challenge"] != 1 || d["get"] != 1 || len(d) != 2 {
		t.Fatalf("vault requests of a second refresh: %v", d)
	}
	if d := delta(w.entra.Stats().Requests, eb.Requests); d["token"] != 1 || len(d) != 1 {
		t.Fatalf("Entra requests of a second refresh: %v", d)
	}
	t.Logf("a later refresh in a new process: vault %v, Entra token requests 1", delta(w.vault.Stats(), vb))
	if n := len(w.vault.Versions(vaultName, secretName)); n != 1 {
		t.Fatalf("%d versions after refreshes of a fresh token", n)
	}

	// status names the vault, the version and the days left, never the value.
	st := m.MustRun("status")
	if !strings.Contains(st.Stdout, "No profiles") {
		// a fleet machine has no saved profile: status says so
		t.Logf("status: %s", st.Stdout)
	}
	st = admin.MustRun("status")
	if !strings.Contains(st.Stdout, secretURL()) || !strings.Contains(st.Stdout, v.ID) || !strings.Contains(st.Stdout, "90 days left") || strings.Contains(st.Stdout, v.Value) {
		t.Fatalf("status:\n%s", st.Stdout)
	}
	if strings.Contains(st.Stdout+st.Stderr, v.Value) {
		t.Fatal("status shows the refresh token")
	}
}

// Key Vault's rule for a write: only when the version read is older than
// --rotate-after; renew always writes.
func TestWritesBoundedByRotateAfter(t *testing.T) {
	w := newWorld(t)
	admin := w.machine(writerID, writerSecret)
	admin.Consent()
	m := w.machine(writerID, writerSecret)
	for range 3 {
		m.MustRun("get", "-s", "graph", "--force-refresh")
	}
	if n := len(w.vault.Versions(vaultName, secretName)); n != 1 {
		t.Fatalf("refreshes of a young version wrote: %d versions", n)
	}
	// Older than --rotate-after and its random margin of up to an eighth (the vault's
	// clock moves 28 hours, a day is due by 27): the next refresh writes, once; the one
	// after reads the new version and does not.
	w.advance(28 * time.Hour)
	m.Vars["PCTOKEN_ROTATE_AFTER"] = "1d"
	m.MustRun("get", "-s", "graph", "--force-refresh")
	m.MustRun("get", "-s", "graph", "--force-refresh")
	vs := w.vault.Versions(vaultName, secretName)
	if len(vs) != 2 || vs[1].Tags[keyvault.TagReason] != "rotate" {
		t.Fatalf("versions after an overdue refresh: %d, %v", len(vs), vs[len(vs)-1].Tags)
	}
	w.latestValid(t)
	// renew writes whatever the age, and says how many days are left.
	res := m.MustRun("renew")
	if !strings.Contains(res.Stdout, "renewed") {
		t.Fatalf("renew: %s", res.Stdout)
	}
	vs = w.vault.Versions(vaultName, secretName)
	if len(vs) != 3 || vs[2].Tags[keyvault.TagReason] != "renew" {
		t.Fatalf("renew did not write: %d versions", len(vs))
	}
	w.latestValid(t)
}
