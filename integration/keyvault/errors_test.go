package keyvault

import (
	"strings"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/harness"
	"github.com/pctoken/pctoken-helper/integration/kvsim"
)

// Every vault failure class gives the documented exit code and remedy.
func TestVaultErrors(t *testing.T) {
	w := newWorld(t)
	w.machine(writerID, writerSecret).Consent()
	rt := w.latestValid(t).Value

	t.Run("403 read names the role and the caller", func(t *testing.T) {
		m := w.machine(strangerID, strangerPass)
		res := m.Run("get", "-s", "graph")
		wantExit(t, res, 5, "get by an identity without a role")
		wantStderr(t, res, "403", "Key Vault Secrets User", "appid="+strangerID, "az role assignment create --role \"Key Vault Secrets User\" --assignee ")
		if strings.Contains(res.Stderr, "<the caller's object id>") {
			t.Fatalf("the remedy does not name the refused identity:\n%s", res.Stderr)
		}
	})
	t.Run("403 write names the writer's role", func(t *testing.T) {
		m := w.machine(readerID, readerSecret)
		res := m.Run("renew")
		wantExit(t, res, 5, "renew by a reader")
		wantStderr(t, res, "renew", "Key Vault Secrets Officer", "appid="+readerID)
	})
	t.Run("404 says how to put a token there", func(t *testing.T) {
		m := w.machine(writerID, writerSecret)
		m.Vars["PCTOKEN_KEYVAULT_SECRET"] = kvsim.SecretURL(vaultName, "nothing-here")
		res := m.Run("get", "-s", "graph")
		wantExit(t, res, 5, "get of a missing secret")
		wantStderr(t, res, "404", "does not exist", "consent --store azure-keyvault --keyvault-secret "+kvsim.SecretURL(vaultName, "nothing-here"))
		errObj := res.Stdout
		if !strings.Contains(errObj, `"code":"configuration"`) || !strings.Contains(errObj, `"remedy":"put a refresh token there`) {
			t.Fatalf("json error: %s", errObj)
		}
	})
	t.Run("invalid settings are usage errors before any request", func(t *testing.T) {
		before := w.vault.Stats()
		m := w.machine(writerID, writerSecret)
		for _, c := range []struct{ k, v, want string }{
			{"PCTOKEN_KEYVAULT_SECRET", "http://contoso-sam.vault.azure.net/secrets/x", "https://"},
			{"PCTOKEN_KEYVAULT_SECRET", "https://evil.example.com/secrets/x", "not a Key Vault host"},
			{"PCTOKEN_KEYVAULT_SECRET", secretURL() + "/0123456789abcdef", "names one version"},
			{"PCTOKEN_KEYVAULT_SECRET", "", "needs --keyvault-secret"},
			{"PCTOKEN_KEYVAULT_AUTH", "password", "unknown --keyvault-auth"},
			{"PCTOKEN_ROTATE_AFTER", "soon", "invalid --rotate-after"},
		} {
			saved := m.Vars[c.k]
			m.Vars[c.k] = c.v
			res := m.Run("get", "-s", "graph")
			m.Vars[c.k] = saved
			wantExit(t, res, 2, c.k+"="+c.v)
			wantStderr(t, res, c.k, c.want)
		}
		if d := delta(w.vault.Stats(), before); len(d) != 0 {
			t.Fatalf("invalid settings reached the vault: %v", d)
		}
	})
	t.Run("soft-deleted names the recover command", func(t *testing.T) {
		const other = "deleted-token"
		w.vault.Put(vaultName, other, rt, nil)
		w.vault.Delete(vaultName, other)
		m := w.machine(writerID, writerSecret)
		m.Vars["PCTOKEN_KEYVAULT_SECRET"] = kvsim.SecretURL(vaultName, other)
		recover := "az keyvault secret recover --vault-name " + vaultName + " --name " + other
		res := m.Run("get", "-s", "graph")
		wantExit(t, res, 5, "get of a deleted secret")
		wantStderr(t, res, "read", "soft delete", recover)
		// A write to the name is refused with 409: the same remedy.
		res = m.RunStdin(rt+"\n", "import")
		wantExit(t, res, 5, "import into a deleted secret")
		wantStderr(t, res, "write", recover)
	})
	t.Run("outage is transient and a valid cached token is served with a warning", func(t *testing.T) {
		m := w.machine(writerID, writerSecret)
		first := harness.DecodeToken(t, m.MustRun("get", "-s", "graph").Stdout)
		w.vault.FailNext(100, 503)
		// The cached token (an hour) is not valid for 2 hours: a refresh is due, the
		// vault fails, the token still valid is served with a warning.
		res := m.Run("get", "-s", "graph", "--min-validity", "2h")
		wantExit(t, res, 0, "get during an outage with a valid cached token")
		if tok := harness.DecodeToken(t, res.Stdout); tok.AccessToken != first.AccessToken {
			t.Fatal("not the cached token")
		}
		wantStderr(t, res, "warning", "warning:", "returning the cached token", "503")
		// Without a cached token: exit 4 after retries.
		res = m.Run("get", "-s", "arm")
		wantExit(t, res, 4, "get during an outage without a cached token")
		wantStderr(t, res, "outage", "503")
		drain(w)
	})
	t.Run("429 honours Retry-After, then is transient", func(t *testing.T) {
		m := w.machine(writerID, writerSecret)
		w.vault.ThrottleNext(1, time.Second)
		start := time.Now()
		m.MustRun("get", "-s", "graph") // one 429, retried after a second
		if time.Since(start) < time.Second {
			t.Fatal("the retry did not wait for Retry-After")
		}
		w.vault.ThrottleNext(100, time.Second)
		res := m.Run("get", "-s", "arm")
		wantExit(t, res, 4, "get while throttled")
		wantStderr(t, res, "throttled", "429", "Throttled")
		drain(w)
	})
	t.Run("a vault that never answers ends within --timeout", func(t *testing.T) {
		m := w.machine(writerID, writerSecret)
		m.MustRun("get", "-s", "graph") // the vault's token is cached: the hang hits the read
		w.vault.HangNext(10)
		res := m.Run("get", "-s", "graph", "--force-refresh", "--timeout", "2s")
		wantExit(t, res, 4, "get with a hanging vault")
		drain(w)
	})
}

// drain takes the faults not used up (the simulator queues them).
func drain(w *world) {
	w.vault.ResetFaults()
}
