package cache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

// Notes remember, across processes, that something was said about a secret, so that
// a warning about it is given once rather than by every process (each step of a CI
// job is a new process). They live in the cache folder:
//
//	notes/key            32 random bytes, 0600: the key of the names below
//	notes/<topic>-<mac>  empty, 0600: topic was said about the secret whose
//	                     HMAC-SHA256 under key (with the topic) is mac
//
// A note's name never holds the secret, nor a plain hash of it that could be checked
// against a guess away from this folder.
const (
	notesDirName = "notes"
	noteKeyName  = "key"
	noteKeySize  = 32

	// noteLifetime is how long a note is kept: as long as a refresh token can live
	// unused (90 days). A note older than that is removed when a new one is made; the
	// worst it costs is the warning once more.
	noteLifetime = 90 * 24 * time.Hour
)

// FirstNote records that topic was said about secret and reports whether this is the
// first time, in any process using this cache folder. Exactly one of several
// processes asking at once gets true. On an error the caller cannot know, and should
// say it (a warning given twice is better than one never given).
func (c *Cache) FirstNote(topic, secret string) (bool, error) {
	if topic == "" || strings.ContainsAny(topic, `/\.`+"\x00") {
		return false, fmt.Errorf("note: bad topic %q", topic)
	}
	key, err := c.noteKey()
	if err != nil {
		return false, fmt.Errorf("failed to read the notes key: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(topic))
	mac.Write([]byte{0})
	mac.Write([]byte(secret))
	name := topic + "-" + hex.EncodeToString(mac.Sum(nil)[:16])
	f, err := os.OpenFile(filepath.Join(c.dir, notesDirName, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to write a note: %w", err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("failed to write a note: %w", err)
	}
	c.pruneNotes(name)
	return true, nil
}

// noteKey reads the notes key, making it (and the folder) on first use. The key is
// written whole to a temp file and linked into place, so a process never reads half
// a key, and of two processes making it at once, one key wins and both use it.
func (c *Cache) noteKey() ([]byte, error) {
	if err := safefs.CheckSub(c.dir, notesDirName); err != nil {
		return nil, err
	}
	dir := filepath.Join(c.dir, notesDirName)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	path := filepath.Join(dir, noteKeyName)
	for range 2 {
		key, err := safefs.ReadFile(path, noteKeySize)
		if err == nil {
			if len(key) != noteKeySize {
				return nil, fmt.Errorf("%s has %d bytes, want %d: remove it (the helper makes a new one)", path, len(key), noteKeySize)
			}
			return key, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err := makeNoteKey(dir, path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s vanished while it was being made", path)
}

func makeNoteKey(dir, path string) error {
	key := make([]byte, noteKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, noteKeyName+".*.tmp") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path) // fails with ErrExist if another process was first
}

// pruneNotes removes notes older than noteLifetime, and the temp files of a key
// writer that was killed, except keep.
func (c *Cache) pruneNotes(keep string) {
	dir := filepath.Join(c.dir, notesDirName)
	des, err := os.ReadDir(dir)
	if err != nil {
		c.logf("cache: cannot list %s: %v", dir, err)
		return
	}
	now := time.Now()
	for _, de := range des {
		name := de.Name()
		if name == keep || name == noteKeyName || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		age := now.Sub(fi.ModTime())
		if age > noteLifetime || strings.HasSuffix(name, ".tmp") && age > staleTempAge {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.logf("cache: cannot remove old note %s: %v", name, err)
			}
		}
	}
}
