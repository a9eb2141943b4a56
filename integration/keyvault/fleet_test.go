package keyvault

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/integration/kvsim"
	"github.com/pctoken/pctoken-helper/keyvault"
)

// A secret written by another tool (a bare token, its own tags) is adopted as it is;
// after the helper writes, the value is still a bare token that tool can read, and
// the tool's tags are still there.
func TestAdoptAnotherToolsSecret(t *testing.T) {
	w := newWorld(t)
	w.machine(writerID, writerSecret).Consent()
	rt := w.latestValid(t).Value
	const cipp = "RefreshToken"
	w.vault.Put(vaultName, cipp, rt, map[string]string{"owner": "cipp"})

	m := w.machine(readerID, readerSecret) // a reader can adopt: adoption writes nothing
	m.Vars["PCTOKEN_KEYVAULT_SECRET"] = ""
	res := m.Run("import", "--store", "azure-keyvault", "--keyvault-secret", kvsim.SecretURL(vaultName, cipp))
	wantExit(t, res, 0, "import with nothing on stdin")
	wantStderr(t, res, "import", "Adopting the refresh token", "Consent saved for profile default", entrasim.UserUPN)
	if n := len(w.vault.Versions(vaultName, cipp)); n != 1 {
		t.Fatalf("adoption wrote: %d versions", n)
	}
	// The saved profile remembers the secret: gets need no Key Vault flag.
	tok := harness.DecodeToken(t, m.MustRun("get", "-s", "graph", "--force-refresh").Stdout)
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}

	// A writer renews: a new version, a bare token, the tool's tag kept.
	wm := w.machine(writerID, writerSecret)
	wm.Vars["PCTOKEN_KEYVAULT_SECRET"] = kvsim.SecretURL(vaultName, cipp)
	wm.MustRun("renew")
	vs := w.vault.Versions(vaultName, cipp)
	last := vs[len(vs)-1]
	if len(vs) != 2 || last.Tags["owner"] != "cipp" || last.Tags[keyvault.TagReason] != "renew" {
		t.Fatalf("after renew: %d versions, tags %v", len(vs), last.Tags)
	}
	if !w.entra.RefreshTokenValid(last.Value) || strings.ContainsAny(last.Value, "{}\" \n") {
		t.Fatal("the renewed value is not a bare, valid refresh token")
	}
}

// logout forgets the machine's state and leaves the vault alone, unless asked.
func TestLogoutLeavesTheVault(t *testing.T) {
	w := newWorld(t)
	admin := w.machine(writerID, writerSecret)
	admin.Consent()
	admin.MustRun("logout")
	if _, ok := w.vault.Latest(vaultName, secretName); !ok {
		t.Fatal("logout deleted the secret")
	}
	if res := admin.MustRun("status"); !strings.Contains(res.Stdout, "No profiles") {
		t.Fatalf("status after logout: %s", res.Stdout)
	}
	admin.Consent()
	res := admin.MustRun("logout", "--delete-secret")
	wantStderr(t, res, "logout --delete-secret", "Deleted "+secretURL(), "az keyvault secret recover")
	if res := w.machine(writerID, writerSecret).Run("get", "-s", "graph"); res.Code != 5 || !strings.Contains(res.Stderr, "az keyvault secret recover") {
		t.Fatalf("get after the secret was deleted: %d %s", res.Code, res.Stderr)
	}
}

// The fleet: machines with their own homes and caches share one vault, and refresh
// at once, again and again, while the vault is slow and throttles. Every get
// succeeds; the vault's newest token is always redeemable; writes stay bounded.
func TestFleet(t *testing.T) {
	const machines, perMachine, rounds = 8, 8, 3
	w := newWorld(t)
	w.machine(writerID, writerSecret).Consent()
	w.vault.SetLatency(20 * time.Millisecond)
	var fleet []*harness.Env
	for range machines {
		m := w.machine(writerID, writerSecret)
		m.Vars["PCTOKEN_TENANT"] = entrasim.HomeTenantID
		fleet = append(fleet, m)
	}
	run := func(round int, extra ...string) {
		var wg sync.WaitGroup
		errs := make(chan string, machines*perMachine)
		for i, m := range fleet {
			for j := range perMachine {
				wg.Add(1)
				go func() {
					defer wg.Done()
					args := append([]string{"get", "-o", "token", "-s", []string{"graph", "arm"}[j%2]}, extra...)
					res := m.Run(args...)
					if res.Code != 0 || strings.Count(res.Stdout, "\n") != 1 {
						errs <- fmt.Sprintf("round %d machine %d get %d: exit %d: %s", round, i, j, res.Code, res.Stderr)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if t.Failed() {
			t.FailNow()
		}
		w.latestValid(t)
	}
	// Young version: many refreshes, no write at all. A token counts as expired 3 s
	// after it is issued (--min-validity of its hour minus 3 s) and the rounds are 3.5 s
	// apart, so each round outlives the tokens of the one before; each machine's
	// processes wait on its cache lock for the one refresh per token (or refresh
	// themselves when that wait is long).
	before := w.vault.Stats()
	for r := range rounds {
		if r > 0 {
			time.Sleep(3500 * time.Millisecond)
		}
		w.vault.ThrottleNext(4, time.Second)
		run(r, "--min-validity", "59m57s")
	}
	t.Logf("%d gets over %d rounds of expiring tokens: vault %v", machines*perMachine*rounds, rounds, delta(w.vault.Stats(), before))
	if n := len(w.vault.Versions(vaultName, secretName)); n != 1 {
		t.Fatalf("refreshes of a young version wrote %d versions", n-1)
	}
	// Overdue version, every machine refreshing at once: each machine writes at most
	// once per round, and after the first writes, rereads keep the rest from writing.
	w.advance(8 * 24 * time.Hour)
	for r := range rounds {
		w.vault.ThrottleNext(4, time.Second)
		run(r, "--force-refresh")
	}
	written := len(w.vault.Versions(vaultName, secretName)) - 1
	if written < 1 || written > machines {
		t.Fatalf("%d versions written by %d machines refreshing an overdue token %d times each", written, machines, rounds*perMachine)
	}
	t.Logf("an overdue token refreshed %d times by %d machines at once: %d versions written; vault stats %v", rounds*perMachine*machines, machines, written, w.vault.Stats())
	// Versions beyond the newest few are disabled.
	enabled := 0
	for _, v := range w.vault.Versions(vaultName, secretName) {
		if v.Enabled {
			enabled++
		}
	}
	if written+1 > keyvault.DefaultKeep && enabled > keyvault.DefaultKeep+machines {
		t.Fatalf("%d versions still enabled", enabled)
	}
	// Hits: no request anywhere.
	before = w.vault.Stats()
	run(rounds)
	if d := delta(w.vault.Stats(), before); len(d) != 0 {
		t.Fatalf("hits reached the vault: %v", d)
	}
}

// Revoked at Entra: every machine needs consent; one consent again, on one machine,
// heals the fleet with no step on the others.
func TestReconsentHealsTheFleet(t *testing.T) {
	w := newWorld(t)
	admin := w.machine(writerID, writerSecret)
	admin.Consent()
	var fleet []*harness.Env
	for range 3 {
		m := w.machine(readerID, readerSecret)
		m.MustRun("get", "-s", "graph")
		fleet = append(fleet, m)
	}
	w.entra.RevokeRefreshTokens()
	for _, m := range fleet {
		res := m.Run("get", "-s", "graph", "--force-refresh")
		wantExit(t, res, 3, "get after revocation")
		wantStderr(t, res, "get after revocation", "consent again once, on any machine", "--store azure-keyvault --keyvault-secret "+secretURL())
	}
	time.Sleep(1100 * time.Millisecond) // a token issued after the revocation, by Entra's whole seconds
	admin.Consent()
	for _, m := range fleet {
		m.MustRun("get", "-s", "graph", "--force-refresh")
	}
	w.latestValid(t)
}

// renew on one scheduled machine keeps the fleet's token alive: 80 days, then 80 more,
// with no other use, and every machine still works.
func TestRenewKeepsTheFleetAlive(t *testing.T) {
	w := newWorld(t)
	admin := w.machine(writerID, writerSecret)
	admin.Consent()
	consented := w.latestValid(t).Value
	rotator := w.machine(writerID, writerSecret)
	fleet := []*harness.Env{w.machine(readerID, readerSecret), w.machine(readerID, readerSecret)}
	for range 2 {
		w.advance(80 * 24 * time.Hour)
		res := rotator.MustRun("renew")
		if !strings.Contains(res.Stdout, "renewed") {
			t.Fatalf("renew: %s", res.Stdout)
		}
		w.latestValid(t)
		for _, m := range fleet {
			m.MustRun("get", "-s", "graph", "--force-refresh")
		}
	}
	if w.entra.RefreshTokenValid(consented) {
		t.Fatal("the consented token outlived 160 days: the test proves nothing")
	}
	st := admin.MustRun("status", "-o", "json")
	if !strings.Contains(st.Stdout, `"keyvault"`) || !strings.Contains(st.Stdout, `"days_left": 90`) {
		t.Fatalf("status after renew: %s", st.Stdout)
	}
}
