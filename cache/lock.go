package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/gofrs/flock"

	"github.com/pctoken/pctoken-helper/internal/safefs"
)

func (c *Cache) lockPath(id string) string {
	return filepath.Join(c.dir, lockDirName, id+".lock")
}

// Lock takes the cross-process lock of k, waiting until it is free or ctx is done.
// Hold it across load, refresh and store, so that processes needing the same
// expired token refresh it once: the others wait here, then Load the fresh entry.
// Readers that find a fresh entry never take the lock. The lock is not reentrant:
// a second Lock of the same key waits, even in the same process. unlock may be
// called more than once.
//
// The lock is an flock(2) on locks/<id>.lock, never on the data file, which is
// replaced by rename on every store. Lock files are left in place when unlocked,
// since removing a file another process has open and is about to lock would let
// two processes hold "the" lock at once. DeleteProfile removes them anyway, but
// only while holding the lock, and Lock checks after locking that its file is
// still the one at the path, starting over if not; so no removal splits a lock.
func (c *Cache) Lock(ctx context.Context, k Key) (unlock func(), err error) {
	for {
		unlock, held, err := c.Acquire(ctx, k)
		if err != nil || held {
			return unlock, err
		}
	}
}

// Acquire takes the cross-process lock of k if no one holds it (held is true; call
// unlock when done). If another process holds it, Acquire sleeps until that process
// lets go and returns with held false and no lock, so that the caller can first look
// at what that process stored, and call Acquire again if it still needs the lock.
//
// The sleep is a blocking shared flock(2), not polling: when 64 processes wait for one
// refresh, polling every few milliseconds wakes them thousands of times a second and
// takes the CPU from the one process doing the work. The kernel wakes them all at once
// when the lock is released. If ctx ends first, Acquire returns at once; the goroutine
// left in flock ends when the lock is released.
func (c *Cache) Acquire(ctx context.Context, k Key) (unlock func(), held bool, err error) {
	path := c.lockPath(k.ID())
	if err := safefs.CheckSub(c.dir, lockDirName); err != nil {
		return nil, false, fmt.Errorf("lock cache entry: %w", err)
	}
	madeDir := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, fmt.Errorf("lock cache entry: %w", err)
		}
		fl := flock.New(path, flock.SetFlag(os.O_CREATE|openReadFlags))
		ok, err := fl.TryLock()
		if errors.Is(err, fs.ErrNotExist) && !madeDir {
			madeDir = true
			if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, false, fmt.Errorf("lock cache entry: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("lock cache entry: %w", err)
		}
		if !ok {
			return nil, false, waitReleased(ctx, path)
		}
		if fi, err := fl.Stat(); err == nil && !fi.Mode().IsRegular() {
			_ = fl.Unlock()
			return nil, false, fmt.Errorf("lock cache entry: %s is not a regular file", path)
		}
		if !stillLinked(fl) {
			_ = fl.Unlock()
			continue
		}
		var once sync.Once
		return func() {
			once.Do(func() {
				if err := fl.Unlock(); err != nil {
					c.logf("cache: unlock %s: %v", path, err)
				}
			})
		}, true, nil
	}
}

// waitReleased sleeps until no process holds the exclusive lock on path, or ctx ends.
// A shared lock is granted only then, and is dropped at once.
func waitReleased(ctx context.Context, path string) error {
	done := make(chan error, 1)
	go func() {
		fl := flock.New(path, flock.SetFlag(openReadFlags))
		err := fl.RLock()
		if err == nil {
			err = fl.Unlock()
		} else if errors.Is(err, fs.ErrNotExist) {
			err = nil // removed meanwhile: no one holds it
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("wait for cache entry lock: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lock cache entry: %w", ctx.Err())
	}
}

// stillLinked reports whether the locked file is still the one at its path.
func stillLinked(fl *flock.Flock) bool {
	held, err := fl.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(fl.Path())
	return err == nil && os.SameFile(held, now)
}

// removeLockFile removes the lock file of id if no one holds it. Taking the lock
// before the unlink is what makes it safe: a process that opened the file before
// the unlink finds, once it gets the lock, that the file is gone, and retries.
func (c *Cache) removeLockFile(id string) {
	path := c.lockPath(id)
	fl := flock.New(path, flock.SetFlag(os.O_RDONLY|noFollow))
	ok, err := fl.TryLock()
	if err != nil || !ok {
		return // missing, or in use: leave it
	}
	defer fl.Unlock()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logf("cache: cannot remove lock file %s: %v", path, err)
	}
}
