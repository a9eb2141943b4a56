package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

// openTemp opens a cache in a fresh directory and collects its diagnostics.
func openTemp(t testing.TB) *Cache {
	t.Helper()
	c, err := Open(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func sampleEntry(token string) Entry {
	return Entry{
		AccessToken: token,
		ExpiresOn:   time.Now().Add(time.Hour).Truncate(time.Second),
		TenantID:    "00000000-0000-4000-8000-00000000000a",
		Scopes:      []string{"https://api.partnercenter.microsoft.com/user_impersonation"},
		Account:     "admin@fabrikam.onmicrosoft.com",
	}
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenCreatesPrivateDirectories(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "cache")
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), dir} {
		if p := perm(t, d); p != 0o700 {
			t.Errorf("%s has mode %04o, want 0700", d, p)
		}
	}
	if err := c.Store(baseKey(), sampleEntry("t")); err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(context.Background(), baseKey())
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	id := baseKey().ID()
	for path, want := range map[string]fs.FileMode{
		filepath.Join(dir, id+".json"):          0o600,
		filepath.Join(dir, "tmp"):               0o700,
		filepath.Join(dir, "locks"):             0o700,
		filepath.Join(dir, "locks", id+".lock"): 0o600,
	} {
		if p := perm(t, path); p != want {
			t.Errorf("%s has mode %04o, want %04o", path, p, want)
		}
	}
}

func TestOpenRefusesDirectoriesOthersCanWrite(t *testing.T) {
	for _, mode := range []fs.FileMode{0o777, 0o775, 0o770, 0o702} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir)
		if err == nil {
			t.Errorf("mode %04o: opened", mode)
			continue
		}
		if !strings.Contains(safefs.RemedyOf(err), "chmod go-w "+dir) {
			t.Errorf("mode %04o: error does not say what to run: %v", mode, err)
		}
	}
	for _, mode := range []fs.FileMode{0o700, 0o750, 0o755} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
}

func TestOpenRefusesDirectoryOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "belongs to uid 4242") {
		t.Fatalf("Open = %v, want a refusal naming the owner", err)
	}
}

func TestOpenRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("opened a file as the cache directory")
	}
	if _, err := Open(""); err == nil {
		t.Fatal("opened an empty path")
	}
}

func TestStoreThenLoad(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	want := sampleEntry("token-1")
	if err := c.Store(k, want); err != nil {
		t.Fatal(err)
	}
	// The same key spelled differently finds the entry.
	other := k
	other.Tenant = strings.ToUpper(k.Tenant)
	other.Scopes = []string{strings.ToUpper(k.Scopes[0]), k.Scopes[0]}
	got, ok := c.Load(other)
	if !ok {
		t.Fatal("miss")
	}
	want.Key = k.Canonical()
	if !got.ExpiresOn.Equal(want.ExpiresOn) {
		t.Fatalf("ExpiresOn = %v, want %v", got.ExpiresOn, want.ExpiresOn)
	}
	got.ExpiresOn = want.ExpiresOn
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Load = %+v\nwant   %+v", got, want)
	}
	des, err := os.ReadDir(filepath.Join(c.dir, "tmp"))
	if err != nil || len(des) != 0 {
		t.Fatalf("tmp/ after store: %v, %v", des, err)
	}
	if err := c.Store(k, sampleEntry("token-2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Load(k); got.AccessToken != "token-2" {
		t.Fatalf("after second store: %q", got.AccessToken)
	}
	if err := c.Store(k, Entry{AccessToken: "x"}); err == nil {
		t.Fatal("stored an entry without expiry")
	}
}

func TestBadFilesAreMissesAndStoreReplacesThem(t *testing.T) {
	k := baseKey()
	good := validFile(t)
	otherKey := k
	otherKey.Tenant = "contoso.onmicrosoft.com"
	otherData, err := encodeEntry(otherKey.Canonical(), sampleEntry("other"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(data []byte) func(string) error {
		return func(path string) error { return os.WriteFile(path, data, 0o600) }
	}
	cases := map[string]func(path string) error{
		"missing":       func(string) error { return nil },
		"empty":         write(nil),
		"garbage":       write([]byte("\x00\x01garbage")),
		"other version": write([]byte(strings.Replace(string(good), `"v":1`, `"v":7`, 1))),
		"other key":     write(otherData),
		"too large":     write(append(good, make([]byte, maxEntrySize)...)),
		"directory":     func(path string) error { return os.Mkdir(path, 0o700) },
		"fifo":          mkfifo,
		"symlink to a good file": func(path string) error {
			target := filepath.Join(filepath.Dir(path), "elsewhere")
			if err := os.WriteFile(target, good, 0o600); err != nil {
				return err
			}
			return os.Symlink(target, path)
		},
	}
	for i := 1; i < len(good)-1; i += 7 { // the last byte is a newline
		cases[fmt.Sprintf("truncated to %d", i)] = write(good[:i])
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			c := openTemp(t)
			var log logRecorder
			c.Logf = log.logf
			path := filepath.Join(c.dir, k.ID()+".json")
			if err := setup(path); err != nil {
				t.Fatal(err)
			}
			done := make(chan bool)
			go func() {
				_, ok := c.Load(k)
				done <- ok
			}()
			select {
			case ok := <-done:
				if ok {
					t.Fatal("Load found an entry")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Load hangs")
			}
			if !strings.Contains(log.String(), k.ID()) {
				t.Errorf("miss not logged: %q", log.String())
			}
			if name == "directory" {
				return // Store cannot rename over a directory; nothing to replace
			}
			if err := c.Store(k, sampleEntry("fresh-token")); err != nil {
				t.Fatal(err)
			}
			if got, ok := c.Load(k); !ok || got.AccessToken != "fresh-token" {
				t.Fatalf("after store: %q, %v", got.AccessToken, ok)
			}
			if strings.Contains(log.String(), "fresh-token") || strings.Contains(log.String(), "eyJ0") {
				t.Errorf("a token reached the log: %q", log.String())
			}
		})
	}
}

func TestDelete(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	if err := c.Delete(k); err != nil {
		t.Fatalf("delete of a missing entry: %v", err)
	}
	if err := c.Store(k, sampleEntry("t")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(k); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Load(k); ok {
		t.Fatal("entry still there")
	}
}

// populate stores one entry per (profile, tenant, scope) and returns the keys.
func populate(t testing.TB, c *Cache, profiles []string, tenants, scopes int) []Key {
	t.Helper()
	var keys []Key
	for _, p := range profiles {
		for i := range tenants {
			for j := range scopes {
				k := baseKey()
				k.Profile = p
				k.Tenant = fmt.Sprintf("tenant%d.onmicrosoft.com", i)
				k.Scopes = []string{fmt.Sprintf("api://scope%d/.default", j)}
				if err := c.Store(k, sampleEntry(fmt.Sprintf("tok-%s-%d-%d", p, i, j))); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
		}
	}
	return keys
}

func TestListSkipsBadFilesAndSorts(t *testing.T) {
	c := openTemp(t)
	populate(t, c, []string{"zeta", "alpha"}, 3, 2)
	// A corrupt entry, a valid entry under the wrong name, and unrelated files.
	if err := os.WriteFile(filepath.Join(c.dir, baseKey().ID()+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, strings.Repeat("0", 64)+".json"), validFile(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "README"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log logRecorder
	c.Logf = log.logf
	entries, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 12 {
		t.Fatalf("List returned %d entries, want 12; log:\n%s", len(entries), log.String())
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Key.Profile+"/"+e.Key.Tenant+"/"+strings.Join(e.Key.Scopes, ","))
	}
	if !slices.IsSorted(got) || !strings.HasPrefix(got[0], "alpha/tenant0") || !strings.HasPrefix(got[11], "zeta/tenant2") {
		t.Fatalf("not sorted: %q", got)
	}
	if n := strings.Count(log.String(), "skipping"); n != 2 {
		t.Fatalf("logged %d skipped files, want 2:\n%s", n, log.String())
	}
}

func TestDeleteProfile(t *testing.T) {
	c := openTemp(t)
	keys := populate(t, c, []string{"a", "b"}, 2, 2)
	var aKeys []Key
	for _, k := range keys {
		if k.Profile == "a" {
			// Leave a lock file behind for every key of profile a.
			unlock, err := c.Lock(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			unlock()
			aKeys = append(aKeys, k)
		}
	}
	// A held lock file must survive: removing it would split the lock.
	held, err := c.Lock(context.Background(), aKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	defer held()
	n, err := c.DeleteProfile("a")
	if err != nil || n != 4 {
		t.Fatalf("DeleteProfile = %d, %v; want 4", n, err)
	}
	for _, k := range keys {
		if _, ok := c.Load(k); ok != (k.Profile == "b") {
			t.Errorf("%s/%s: present = %v", k.Profile, k.Tenant, ok)
		}
	}
	for i, k := range aKeys {
		_, err := os.Stat(c.lockPath(k.ID()))
		if exists := err == nil; exists != (i == 0) {
			t.Errorf("lock file of %s/%s: exists = %v", k.Profile, k.Tenant, exists)
		}
	}
	if n, err := c.DeleteProfile("a"); err != nil || n != 0 {
		t.Fatalf("second DeleteProfile = %d, %v", n, err)
	}
}

func TestDeleteToken(t *testing.T) {
	c := openTemp(t)
	keys := populate(t, c, []string{"p"}, 2, 1)
	found, err := c.DeleteToken("tok-p-1-0")
	if err != nil || !found {
		t.Fatalf("DeleteToken = %v, %v", found, err)
	}
	if _, ok := c.Load(keys[1]); ok {
		t.Fatal("entry with that token is still there")
	}
	if _, ok := c.Load(keys[0]); !ok {
		t.Fatal("another entry was removed")
	}
	for _, tok := range []string{"tok-p-1-0", "tok-p-0", "tok-p-0-00", ""} {
		if found, err := c.DeleteToken(tok); err != nil || found {
			t.Errorf("DeleteToken(%q) = %v, %v; want false", tok, found, err)
		}
	}
}

func TestStoreRemovesStaleTempFiles(t *testing.T) {
	c := openTemp(t)
	if err := c.Store(baseKey(), sampleEntry("t")); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "tmp")
	stale := filepath.Join(tmp, "killed-writer")
	recent := filepath.Join(tmp, "busy-writer")
	for _, p := range []string{stale, recent} {
		if err := os.WriteFile(p, []byte(`{"v":1,"acc`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-staleTempAge - time.Second)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Load(baseKey()); !ok {
		t.Fatal("miss")
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("Load cleaned up; only Store should")
	}
	if err := c.Store(baseKey(), sampleEntry("t2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file survived a store: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("recent temp file was removed: %v", err)
	}
}

func TestLockWaitsForContext(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	unlock, err := c.Lock(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Lock(ctx, k); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held key = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	// Another key is not blocked.
	other := k
	other.Tenant = "other"
	u2, err := c.Lock(ctx2s(t), other)
	if err != nil {
		t.Fatal(err)
	}
	u2()
	unlock()
	unlock() // twice is harmless
	u3, err := c.Lock(ctx2s(t), k)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	u3()
}

func ctx2s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLockExcludesWhileLockFilesAreRemoved has goroutines (each with its own
// open file, as separate processes would) increment a counter kept in a file
// under the lock, while another goroutine keeps removing the lock file the way
// DeleteProfile does. A lost update would show that two holders overlapped.
func TestLockExcludesWhileLockFilesAreRemoved(t *testing.T) {
	c := openTemp(t)
	k := baseKey()
	counter := filepath.Join(t.TempDir(), "counter")
	if err := os.WriteFile(counter, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 40
	stop := make(chan struct{})
	removerDone := make(chan int)
	go func() {
		removed := 0
		for {
			select {
			case <-stop:
				removerDone <- removed
				return
			default:
			}
			if _, err := os.Stat(c.lockPath(k.ID())); err == nil {
				c.removeLockFile(k.ID())
				if _, err := os.Stat(c.lockPath(k.ID())); err != nil {
					removed++
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				unlock, err := c.Lock(ctx2s(t), k)
				if err != nil {
					errs <- err
					return
				}
				var n int
				data, _ := os.ReadFile(counter)
				fmt.Sscan(string(data), &n)
				time.Sleep(50 * time.Microsecond)
				err = os.WriteFile(counter, []byte(fmt.Sprint(n+1)), 0o600)
				unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	removed := <-removerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(counter)
	if string(data) != fmt.Sprint(workers*rounds) {
		t.Fatalf("counter = %s, want %d: two goroutines held the lock at once", data, workers*rounds)
	}
	t.Logf("lock file removed %d times during the run", removed)
	if removed == 0 {
		t.Error("the lock file was never removed; the test proved nothing")
	}
}
