// Package cache keeps access tokens on disk, one file per (profile, client,
// authority, tenant, scope set), so that kubectl and git get a token from one
// small file read, and so that processes needing the same expired token refresh
// it once between them.
//
// Layout of the cache directory (0700, refused if others can write to it):
//
//	<id>.json        one entry, 0600, replaced atomically (never written in place)
//	tmp/             entries being written; leftovers of killed writers are
//	                 removed by later stores once they are a minute old
//	locks/<id>.lock  the cross-process lock of one key, apart from the data
//
// The cache holds access tokens only, never refresh tokens.
package cache

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

const (
	tmpDirName  = "tmp"
	lockDirName = "locks"
	dataSuffix  = ".json"

	// maxEntrySize bounds what Load reads: a real entry is a few kilobytes.
	maxEntrySize = 1 << 20

	// staleTempAge is how old a file in tmp/ must be before a store removes it.
	// A write takes milliseconds, so a minute-old temp file belongs to a writer
	// that was killed, never to one still at work.
	staleTempAge = time.Minute
)

// Cache is an access-token cache in one directory. Its methods may be called
// from many goroutines and many processes at once.
type Cache struct {
	// Logf, if set, receives diagnostics for --verbose: why an entry was a miss,
	// what was cleaned up. It never receives a token.
	Logf func(format string, args ...any)

	dir string
}

// Open opens the cache in dir, creating it (0700, parents too) if it is missing.
// It refuses a directory that is group- or other-writable or that belongs to
// another user, since whoever can write there can hand us tokens of their
// choosing, or one above it lets another user swap it (package safefs). Open costs one
// lstat per folder on the path when dir exists, those above it once per process.
func Open(dir string) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("open cache: no directory given")
	}
	// The same rules as for every folder of the helper's (package safefs): the
	// folder is the user's alone, and no folder above it lets another user swap it.
	if _, err := safefs.EnsureDir(dir); err != nil {
		var unsafe *safefs.UnsafeError
		if errors.As(err, &unsafe) {
			return nil, fmt.Errorf("refusing the cache folder: %w", err)
		}
		return nil, fmt.Errorf("open cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

func (c *Cache) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *Cache) dataPath(id string) string {
	return filepath.Join(c.dir, id+dataSuffix)
}

// Load returns the entry stored under k. A missing, unreadable, corrupt,
// truncated, other-version or other-key file is a miss, reported through Logf
// and never as an error: the caller then refreshes and stores a good entry. Load
// takes no lock, because entries are only ever replaced whole. Whether the entry
// is still fresh is for the caller to ask (see Fresh).
func (c *Cache) Load(k Key) (Entry, bool) {
	k = k.Canonical()
	id := k.id()
	data, err := readEntryFile(c.dataPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		c.logf("cache: no entry %s", id)
		return Entry{}, false
	}
	if err != nil {
		c.logf("cache: ignoring entry %s: %v", id, err)
		return Entry{}, false
	}
	e, err := decodeEntry(data)
	if err != nil {
		c.logf("cache: ignoring entry %s: %v", id, err)
		return Entry{}, false
	}
	if !e.Key.equal(k) {
		c.logf("cache: ignoring entry %s: it was stored for another key", id)
		return Entry{}, false
	}
	return e, true
}

// readEntryFile reads a data file without following a symbolic link (on unix)
// and without blocking on a FIFO; it refuses anything but a regular file of
// reasonable size.
func readEntryFile(path string) ([]byte, error) {
	return safefs.ReadFile(path, maxEntrySize)
}

// Store saves e under k, replacing any entry there, as a whole: readers see the
// old file or the new one, never a mix, even if the process is killed midway.
// e.Key is ignored; the entry is stored with the canonical form of k.
//
// Store does not fsync. Atomicity comes from the rename alone; what fsync would
// add is durability across a power cut, and the worst a power cut can do to an
// unsynced entry is leave it empty or old, which Load treats as a miss and the
// next get repairs with one refresh, while fsync would be paid on every store, with
// the key's lock held (docs/performance.md has the figures).
func (c *Cache) Store(k Key, e Entry) error {
	k = k.Canonical()
	data, err := encodeEntry(k, e)
	if err != nil {
		return fmt.Errorf("store cache entry: %w", err)
	}
	id := k.id()
	if err := c.writeFile(id, data); err != nil {
		return fmt.Errorf("store cache entry: %w", err)
	}
	c.removeStaleTemps()
	return nil
}

// writeFile writes data to a new file in tmp/ and renames it over the entry.
// The temp files live in their own folder so that cleaning up after killed
// writers lists only them, never the whole cache.
func (c *Cache) writeFile(id string, data []byte) error {
	tmpDir := filepath.Join(c.dir, tmpDirName)
	if err := safefs.CheckSub(c.dir, tmpDirName); err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, id+".*") // 0600, O_EXCL
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(tmpDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		f, err = os.CreateTemp(tmpDir, id+".*")
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.dataPath(id))
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

func (c *Cache) removeStaleTemps() {
	tmpDir := filepath.Join(c.dir, tmpDirName)
	des, err := os.ReadDir(tmpDir)
	if err != nil {
		c.logf("cache: cannot list %s: %v", tmpDir, err)
		return
	}
	cutoff := time.Now().Add(-staleTempAge)
	for _, de := range des {
		fi, err := de.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		path := filepath.Join(tmpDir, de.Name())
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.logf("cache: cannot remove stale temp file %s: %v", path, err)
			continue
		}
		c.logf("cache: removed stale temp file %s", path)
	}
}

// Delete removes the entry stored under k; a missing entry is not an error.
func (c *Cache) Delete(k Key) error {
	return c.remove(c.dataPath(k.ID()))
}

func (c *Cache) remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete cache entry: %w", err)
	}
	return nil
}

// List returns every readable entry, expired ones included, sorted by profile,
// tenant, scopes, authority and client id. Unreadable files and files whose name
// does not match their key are skipped (and reported through Logf).
func (c *Cache) List() ([]Entry, error) {
	var out []Entry
	err := c.scan(func(_ string, e Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(
			cmp.Compare(a.Key.Profile, b.Key.Profile),
			cmp.Compare(a.Key.Tenant, b.Key.Tenant),
			slices.Compare(a.Key.Scopes, b.Key.Scopes),
			cmp.Compare(a.Key.Authority, b.Key.Authority),
			cmp.Compare(a.Key.ClientID, b.Key.ClientID),
		)
	})
	return out, nil
}

// scan calls fn with the path and contents of every valid entry file.
func (c *Cache) scan(fn func(path string, e Entry) error) error {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("list cache: %w", err)
	}
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), dataSuffix)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(c.dir, de.Name())
		data, err := readEntryFile(path)
		if err != nil {
			c.logf("cache: skipping %s: %v", path, err)
			continue
		}
		e, err := decodeEntry(data)
		if err != nil {
			c.logf("cache: skipping %s: %v", path, err)
			continue
		}
		if e.Key.id() != id {
			c.logf("cache: skipping %s: its name does not match its key", path)
			continue
		}
		if err := fn(path, e); err != nil {
			return err
		}
	}
	return nil
}

// DeleteProfile removes every entry of profile, for logout, and reports how many
// it removed. Lock files of those keys that no process holds are removed too
// (see Lock for why that is safe).
func (c *Cache) DeleteProfile(profile string) (int, error) {
	n := 0
	err := c.scan(func(path string, e Entry) error {
		if e.Key.Profile != profile {
			return nil
		}
		if err := c.remove(path); err != nil {
			return err
		}
		n++
		c.removeLockFile(e.Key.id())
		return nil
	})
	return n, err
}

// DeleteToken removes every entry whose access token is accessToken, for
// git-credential erase, and reports whether there was one. The comparison takes
// the same time wherever the tokens differ. An entry that another process
// replaces between the read and the removal goes too, which costs one refresh.
func (c *Cache) DeleteToken(accessToken string) (bool, error) {
	if accessToken == "" {
		return false, nil
	}
	want := []byte(accessToken)
	found := false
	err := c.scan(func(path string, e Entry) error {
		if subtle.ConstantTimeCompare([]byte(e.AccessToken), want) != 1 {
			return nil
		}
		found = true
		return c.remove(path)
	})
	return found, err
}
