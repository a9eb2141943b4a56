//go:build unix

package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openReadFlags: no symbolic link, and no hanging on a FIFO put where a file should
// be (non-blocking has no effect on a regular file).
const openReadFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// NoFollow keeps an open from following a symbolic link planted in place of a file.
const NoFollow = syscall.O_NOFOLLOW

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// checkOwn: a file or folder of the helper's own belongs to the user and no one else
// can write it.
func checkOwn(path string, fi fs.FileInfo, kind string) error {
	uid := os.Geteuid()
	if o, ok := owner(fi); ok && o != uid {
		remedy := "it is not yours: remove it (rm -r " + path + ") if you did not expect it there, or choose a folder of your own"
		if kind == "file" {
			remedy = "it is not yours: remove it (rm " + path + ") and run pctoken-helper consent again"
		}
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("is a %s that belongs to uid %d, not to you (uid %d)", kind, o, uid), Remedy: remedy}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		remedy := "run chmod go-w " + path
		if kind == "file" {
			remedy = "if you did not make it so, remove it (rm " + path + ") and run pctoken-helper consent again; else run chmod go-w " + path
		}
		return &UnsafeError{Path: path, Reason: fmt.Sprintf("is a %s writable by group or others (mode %04o)", kind, perm), Remedy: remedy}
	}
	return nil
}

// checkParent: a folder above the helper's own belongs to the user or to root, and
// only the sticky bit lets others write it.
func checkParent(dir string, fi fs.FileInfo) error {
	uid := os.Geteuid()
	if o, ok := owner(fi); ok && o != uid && o != 0 {
		return &UnsafeError{Path: dir, Reason: fmt.Sprintf("is a folder above the helper's files that belongs to uid %d, who could swap what it holds", o),
			Remedy: "keep the helper's folders (--config-dir, --cache-dir, --store-dir) in folders that only you or root own"}
	}
	if perm := fi.Mode(); perm.Perm()&0o002 != 0 && perm&fs.ModeSticky == 0 {
		return &UnsafeError{Path: dir, Reason: fmt.Sprintf("is a folder above the helper's files that every user can write and that is not sticky (mode %04o), so anyone could swap what it holds", perm.Perm()),
			Remedy: "keep the helper's folders (--config-dir, --cache-dir, --store-dir) elsewhere"}
	}
	return nil
}
