package reliability

import (
	"bytes"
	"context"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/integration/entrasim"
	"github.com/pctoken/pctoken-helper/integration/harness"
)

// TestKilledAtRandomMoments SIGKILLs hundreds of helper processes at random moments of
// a refresh (reading the store, redeeming, writing the rotated refresh token, the
// profile and the cache entry), several at a time. After every round each file the
// helper keeps still parses, and the stored refresh token is one the identity provider
// accepts; at the end a forced refresh succeeds.
//
// The simulator keeps redeemed refresh tokens valid, as Entra does; so a kill between
// the redemption and the save of the rotated token leaves the previous token stored,
// and it must still work. What may never happen is a missing, empty, torn or
// undecryptable token.
func TestKilledAtRandomMoments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	e.MustRun("get", "--scope", "graph") // the metadata documents are on disk from here on

	// How long a refresh takes here sets the window the kills are spread over.
	var took []time.Duration
	for range 5 {
		res, d := timedRun(t, e, 30*time.Second, "", "get", "--scope", "graph", "--force-refresh")
		if res.Code != 0 {
			t.Fatalf("get --force-refresh: exit %d: %s", res.Code, res.Stderr)
		}
		took = append(took, d)
	}
	slices.Sort(took)
	window := took[len(took)/2] * 2 // several run at once, so each takes longer than alone

	kills := 360
	if testing.Short() {
		kills = 60
	}
	const perRound = 3
	commands := []struct {
		args    []string
		stdin   string
		redeems int // refresh tokens redeemed by a run that finishes
	}{
		{args: []string{"get", "--scope", "graph", "--force-refresh"}, redeems: 1},
		{args: []string{"get", "--scope", "arm", "--tenant", entrasim.CustomerTenantID, "--force-refresh"}, redeems: 1},
		{args: []string{"exec-credential", "-s", "partner-center", "--force-refresh"}, redeems: 1},
		{args: []string{"renew"}, redeems: 1},
		{args: []string{"get", "--request", "-", "--force-refresh"}, redeems: 3, stdin: `{"id":1,"scopes":["graph"]}` + "\n" +
			`{"id":2,"scopes":["arm"],"tenant":"` + entrasim.CustomerTenantID + `"}` + "\n" + `{"id":3,"scopes":["graph"],"tenant":"` + entrasim.CustomerTenantID + `"}` + "\n"},
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	var killed, finished, afterRedeem int
	for sent := 0; sent < kills; sent += perRound {
		e.Sim.SetLatency(time.Duration(rng.IntN(20)) * time.Millisecond)
		before := e.Sim.Stats().RefreshTokensRedeemed
		var wg sync.WaitGroup
		var mu sync.Mutex
		roundFinished := 0 // redemptions of the processes that finished
		for range perRound {
			c := commands[rng.IntN(len(commands))]
			delay := time.Duration(rng.Int64N(int64(window)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				wasKilled := killAfter(t, e, delay, c.stdin, c.args...)
				mu.Lock()
				defer mu.Unlock()
				if wasKilled {
					killed++
				} else {
					finished++
					roundFinished += c.redeems
				}
			}()
		}
		wg.Wait()
		// Redemptions beyond those of the processes that finished were made by killed
		// ones: those kills landed after the identity provider answered, while the
		// rotated token was being saved (a batch may redeem more than once).
		if n := e.Sim.Stats().RefreshTokensRedeemed - before - roundFinished; n > 0 {
			afterRedeem += n
		}

		rt := storedRefreshToken(t, e, "default")
		if !e.Sim.RefreshTokenValid(rt) {
			t.Fatalf("after %d kills the stored refresh token (%d bytes) is not redeemable", killed, len(rt))
		}
		checkFiles(t, e)
	}
	e.Sim.SetLatency(0)
	t.Logf("%d SIGKILLs (%d processes finished first) over a %s window; at least %d landed after a redemption",
		killed, finished, window.Round(time.Millisecond), afterRedeem)
	if killed < kills/2 {
		t.Fatalf("only %d of %d processes were killed before they finished", killed, kills)
	}
	if afterRedeem < kills/30 {
		t.Fatalf("only %d kills landed after a redemption: the write window was not exercised", afterRedeem)
	}
	e.Sim.ResetStats()
	res := e.MustRun("get", "--scope", "graph", "--force-refresh")
	if tok := decodeToken(t, res.Stdout); tok.Cached {
		t.Fatalf("forced refresh answered from the cache: %s", res.Stdout)
	}
	if st := e.Sim.Stats(); st.RefreshTokensRedeemed != 1 {
		t.Fatalf("the final forced refresh redeemed %d refresh tokens", st.RefreshTokensRedeemed)
	}
	if rt := storedRefreshToken(t, e, "default"); !e.Sim.RefreshTokenValid(rt) {
		t.Fatal("the refresh token stored by the final refresh is not redeemable")
	}
	checkFiles(t, e)
}

// killAfter starts the helper and sends it SIGKILL after delay; it reports whether the
// process died of the signal (false: it had already exited).
func killAfter(t testing.TB, e *harness.Env, delay time.Duration, stdin string, args ...string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.Command(ctx, args...)
	var errb bytes.Buffer
	cmd.Stdin, cmd.Stderr = strings.NewReader(stdin), &errb
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return false
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if ctx.Err() != nil {
		t.Errorf("pctoken-helper %v did not end", args)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return true
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("pctoken-helper %v: exit %d: %s", args, code, errb.String())
	}
	return false
}

// TestDamagedCacheEntryIsAMiss replaces a cached entry with what a crash, a bug or an
// attacker could leave there: the helper treats each as a miss (with a diagnostic
// under --verbose), never hangs on it, never returns the planted token, and replaces
// it with a good entry.
func TestDamagedCacheEntryIsAMiss(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Consent()
	armTok := decodeToken(t, e.MustRun("get", "--scope", "arm").Stdout)
	armFile := onlyNewEntry(t, e, nil)
	graphTok := decodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
	graphFile := onlyNewEntry(t, e, []string{armFile})
	good, err := os.ReadFile(graphFile)
	if err != nil {
		t.Fatal(err)
	}
	armData, _ := os.ReadFile(armFile)
	planted := filepath.Join(e.Dir, "planted.json")
	plantedTok := graphTok.AccessToken // the token in good, and so in the planted file

	damages := []struct {
		name string
		do   func(path string) error
	}{
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("\x00\xffnot json{{{"), 0o600) }},
		{"truncated", func(p string) error { return os.WriteFile(p, good[:len(good)/2], 0o600) }},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"foreign key", func(p string) error { return os.WriteFile(p, armData, 0o600) }},
		{"other version", func(p string) error {
			return os.WriteFile(p, bytes.Replace(good, []byte(`"v":1`), []byte(`"v":99`), 1), 0o600)
		}},
		{"no expiry", func(p string) error {
			return os.WriteFile(p, bytes.Replace(good, []byte(`"expires_on":`), []byte(`"expires_off":`), 1), 0o600)
		}},
		{"huge", func(p string) error {
			return os.WriteFile(p, append(bytes.TrimSpace(good), bytes.Repeat([]byte(" "), 4<<20)...), 0o600)
		}},
		{"symlink to a planted entry", func(p string) error {
			if err := os.WriteFile(planted, good, 0o600); err != nil {
				return err
			}
			os.Remove(p)
			return os.Symlink(planted, p)
		}},
		{"fifo", func(p string) error {
			os.Remove(p)
			return syscall.Mkfifo(p, 0o600)
		}},
		{"directory", func(p string) error {
			os.Remove(p)
			return os.Mkdir(p, 0o700)
		}},
	}
	for _, d := range damages {
		// Without -v a get may be answered by the early cache-hit path; with -v by
		// the full one, which also says why the entry was a miss.
		for _, verbose := range []bool{false, true} {
			if err := d.do(graphFile); err != nil {
				t.Fatalf("%s: %v", d.name, err)
			}
			args := []string{"get", "--scope", "graph"}
			name := d.name
			if verbose {
				args = append(args, "-v")
				name += " (-v)"
			}
			res, _ := timedRun(t, e, 30*time.Second, "", args...)
			noPanic(t, name, res)
			if res.Code != 0 {
				t.Fatalf("%s: exit %d\n%s", name, res.Code, res.Stderr)
			}
			tok := decodeToken(t, res.Stdout)
			if tok.Cached || tok.AccessToken == graphTok.AccessToken || tok.AccessToken == armTok.AccessToken || tok.AccessToken == plantedTok {
				t.Fatalf("%s: the damaged entry was used: %s", name, res.Stdout)
			}
			if verbose && !strings.Contains(res.Stderr, "cache: ignoring entry") {
				t.Fatalf("%s: no diagnostic under --verbose:\n%s", name, res.Stderr)
			}
			if d.name == "directory" {
				// A directory cannot be renamed over: the helper warns, answers, and
				// once the user removes it the next store works.
				if !strings.Contains(res.Stderr, "warning: could not cache") {
					t.Fatalf("%s: no warning that the token was not cached:\n%s", name, res.Stderr)
				}
				os.Remove(graphFile)
				e.MustRun("get", "--scope", "graph", "--force-refresh")
			}
			fi, err := os.Lstat(graphFile)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: the entry was not replaced by a regular 0600 file: %v %v", name, fi.Mode(), err)
			}
			again := decodeToken(t, e.MustRun("get", "--scope", "graph").Stdout)
			if !again.Cached {
				t.Fatalf("%s: the replaced entry is not served from the cache", name)
			}
			graphTok = again
			if b, _ := os.ReadFile(planted); len(b) > 0 && !bytes.Equal(b, good) {
				t.Fatalf("%s: the symlink's target was written to", name)
			}
		}
	}
	checkFiles(t, e)
}

// onlyNewEntry returns the one cache entry file not in known.
func onlyNewEntry(t *testing.T, e *harness.Env, known []string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(cacheDir(e), "*.json"))
	var out []string
	for _, m := range matches {
		if !slices.Contains(known, m) {
			out = append(out, m)
		}
	}
	if len(out) != 1 {
		t.Fatalf("want one new cache entry, found %v", out)
	}
	return out[0]
}

// TestInterruptedRefreshChangesNothing sends SIGINT to a get whose refresh is in
// flight (the identity provider holds the request): the helper stops at once, says
// so, and leaves the cached token and the stored refresh token as they were.
func TestInterruptedRefreshChangesNothing(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			e.Consent()
			before := e.MustRun("get", "-o", "token").Stdout
			storeBefore := snapshot(t, e.Dir)
			e.Sim.HangNext(1)
			e.Sim.ResetStats()

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := e.Command(ctx, "get", "-o", "token", "--force-refresh", "--timeout", "50s")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for e.Sim.Stats().Requests["token"] == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the refresh never reached the identity provider")
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("the helper took %v to stop after %v", took, sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != 130 || out.Len() != 0 || !strings.Contains(errb.String(), "interrupted") {
				t.Fatalf("after %v: exit %d, stdout %q, stderr %q; want 130, nothing on stdout, \"interrupted\"", sig, code, out.String(), errb.String())
			}
			if after := snapshot(t, e.Dir); !maps.Equal(after, storeBefore) {
				t.Fatalf("the interrupted refresh changed files:\nbefore %v\nafter  %v", storeBefore, after)
			}
			if got := e.MustRun("get", "-o", "token").Stdout; got != before {
				t.Fatalf("the cached token changed: %q, was %q", got, before)
			}
		})
	}
}

// snapshot is the content of every regular file under dir, by path (lock files, which
// hold nothing, left out).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".lock") {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnusableLockStillRefreshes plants what makes the cache lock impossible to take
// where the lock file of the token goes: a FIFO (opening one for reading would block)
// or a symbolic link. The get still refreshes, says why it went without the lock, and
// never waits on the FIFO.
func TestUnusableLockStillRefreshes(t *testing.T) {
	for name, plant := range map[string]func(path string) error{
		"fifo":    func(path string) error { return syscall.Mkfifo(path, 0o600) },
		"symlink": func(path string) error { return os.Symlink("/dev/null", path) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.Consent()
			e.MustRun("get", "-o", "token")
			locks, _ := filepath.Glob(filepath.Join(e.Dir, "home", ".cache", "pctoken-helper", "locks", "*.lock"))
			if len(locks) != 1 {
				t.Fatalf("want the one lock file of the token, found %v", locks)
			}
			if err := os.Remove(locks[0]); err != nil {
				t.Fatal(err)
			}
			if err := plant(locks[0]); err != nil {
				t.Fatal(err)
			}
			res := e.Run("get", "-o", "token", "--force-refresh", "--timeout", "20s")
			if res.Code != 0 || strings.TrimSpace(res.Stdout) == "" || !strings.Contains(res.Stderr, "without the cache lock") {
				t.Fatalf("exit %d, stdout %q, stderr %q: want a refreshed token and a warning", res.Code, res.Stdout, res.Stderr)
			}
		})
	}
}
