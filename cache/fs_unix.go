//go:build unix

package cache

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// noFollow keeps opens from following a symbolic link planted in place of a file.
const noFollow = syscall.O_NOFOLLOW

// openReadFlags: no symbolic links, and no hanging on a FIFO put where an entry
// should be (non-blocking has no effect on a regular file).
const openReadFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// checkOwner refuses a cache directory that someone else could write to.
func checkOwner(dir string, fi fs.FileInfo) error {
	return checkFolder("cache directory", "--cache-dir", dir, fi)
}

// checkFolder refuses a folder (what, chosen with flag) that someone else could
// write to.
func checkFolder(what, flag, dir string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s %s is writable by group or others (mode %04o): run chmod 700 %s",
			what, dir, fi.Mode().Perm(), dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s %s belongs to uid %d, not to you (uid %d): choose a directory of your own with %s",
			what, dir, st.Uid, uid, flag)
	}
	return nil
}
