// Package safefs decides whether a file or folder that changes the helper's behaviour
// (saved profiles, the access-token cache, the file store, lock and temp folders) may
// be trusted: one set of rules, used by every package that reads such files, and by
// the early cache-hit path, so it imports nothing heavy.
//
// A folder of the helper's own (CheckDir) must belong to the user running the helper
// and be writable by no one else. Each folder above it must belong to that user or to
// root, and may be writable by others only when sticky (as /tmp is): in any other
// folder above it, someone else could rename the helper's folder away and put one of
// their own in its place. Symbolic links on the way are followed, and the folders they
// lead through are checked too; every path an error names is the real one, so that the
// remedy it gives never acts through a link. A file of the helper's own (ReadFile) is
// read without following a link and without blocking on a FIFO, must be a regular file
// of bounded size, belong to the user and be writable by no one else.
//
// The checks cost one lstat per folder on the path; folders above the helper's own are
// checked once per process.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// UnsafeError is a file or folder another user could have written or could swap.
type UnsafeError struct {
	Path   string // the real path (no symbolic link in it)
	Reason string // what is wrong with it
	Remedy string // a safe way out, acting on Path itself only
}

// Error names the path and what is wrong; the remedy is for the hint line (cli shows
// it, through RemedyOf).
func (e *UnsafeError) Error() string {
	return e.Path + " " + e.Reason
}

// RemedyOf is the remedy of the UnsafeError in err's chain, "" if there is none.
func RemedyOf(err error) string {
	var u *UnsafeError
	if errors.As(err, &u) {
		return u.Remedy
	}
	return ""
}

// ErrTooLarge is returned by ReadFile for a file over its limit: a damaged file, or
// one planted to cost memory, never worth reading.
var ErrTooLarge = errors.New("file too large")

// maxLinks bounds the symbolic links followed on one path, as the kernel does (40).
const maxLinks = 40

// passed holds the real folders that passed a check, as a folder above another or as
// one of the helper's own: the paths the helper uses share most of their folders (/,
// /home, the home folder, the config folder above profiles/), and a walk starts
// below the deepest one already checked, so a cache hit pays a few lstats, not a
// dozen.
var passed = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

func hasPassed(dir string) bool {
	passed.Lock()
	defer passed.Unlock()
	return passed.m[dir]
}

func setPassed(dir string) {
	passed.Lock()
	passed.m[dir] = true
	passed.Unlock()
}

// CheckDir checks the folder dir, which must exist, and the folders above it. It
// returns the folder's real path. A missing folder is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func CheckDir(dir string) (string, error) {
	real, fi, err := resolve(dir)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", &UnsafeError{Path: real, Reason: "is not a folder", Remedy: "remove it, or choose another folder"}
	}
	if err := checkOwn(real, fi, "folder"); err != nil {
		return "", err
	}
	setPassed(real)
	return real, nil
}

// EnsureDir creates dir (0700, with its parents) if it is missing, then checks it as
// CheckDir does.
func EnsureDir(dir string) (string, error) {
	real, err := CheckDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("failed to create %s: %w", dir, err)
		}
		// Check again rather than trust the mode asked for: another process may have
		// made the folder first, and the umask applies.
		real, err = CheckDir(dir)
	}
	return real, err
}

// CheckSub checks name, a folder directly inside the checked folder parent (its real
// path): it must be a folder of the user's own. A missing one is fine (nil); the
// caller creates it 0700.
func CheckSub(parent, name string) error {
	p := filepath.Join(parent, name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UnsafeError{Path: p, Reason: "is not a folder", Remedy: "remove it (rm " + p + "); the helper makes its own"}
	}
	return checkOwn(p, fi, "folder")
}

// ReadFile reads the file at path, at most max bytes, refusing a symbolic link, a
// FIFO or device, a larger file, and a file another user owns or can write. The
// folder holding it must have been checked (CheckDir).
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, openReadFlags, 0)
	if err != nil {
		if isLoop(err) {
			return nil, &UnsafeError{Path: path, Reason: "is a symbolic link", Remedy: "the helper reads only files it wrote itself: remove it (rm " + path + ")"}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &UnsafeError{Path: path, Reason: "is not a regular file", Remedy: "remove it (rm " + path + ")"}
	}
	if err := checkOwn(path, fi, "file"); err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%w: %s has %d bytes, at most %d", ErrTooLarge, path, fi.Size(), max)
	}
	// The helper replaces its files by rename and never rewrites them, so the size
	// read by the stat is the size of what this descriptor reads: one read.
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

// CheckReplace checks what is at path before the helper writes its own file there by
// rename: nothing, or a file of the user's own. A file someone else put there is left
// alone, never replaced: it is a trace worth keeping.
func CheckReplace(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: path, Reason: "is not a regular file", Remedy: "remove it (rm " + path + ")"}
	}
	return checkOwn(path, fi, "file")
}

// resolve walks path from the root, following symbolic links, checks every folder
// above the last component, and returns the real path with its lstat.
func resolve(path string) (string, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	// Start below the deepest folder on the path that already passed; only a path
	// without links can match, as passed holds real paths.
	cur := rootOf(abs)
	for p := abs; len(p) > len(cur); p = filepath.Dir(p) {
		if hasPassed(p) {
			cur = p
			break
		}
	}
	if cur == rootOf(abs) {
		if err := checkAncestor(cur); err != nil {
			return "", nil, err
		}
	}
	comps := split(abs[len(cur):])
	links := 0
	var fi fs.FileInfo
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			if len(comps) == 0 && fi == nil {
				if fi, err = os.Lstat(cur); err != nil {
					return "", nil, err
				}
			}
			continue
		case "..":
			cur = filepath.Dir(cur) // cur holds no link, so its parent is real
			fi = nil
			if len(comps) == 0 {
				if fi, err = os.Lstat(cur); err != nil {
					return "", nil, err
				}
			}
			continue
		}
		next := filepath.Join(cur, c)
		st, err := os.Lstat(next)
		if err != nil {
			return "", nil, err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", nil, fmt.Errorf("%s: too many symbolic links", path)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", nil, err
			}
			if filepath.IsAbs(target) {
				cur = rootOf(target)
				target = target[len(cur):]
			}
			comps = append(split(target), comps...)
			fi = nil
			continue
		}
		if len(comps) > 0 {
			if err := checkAncestorInfo(next, st); err != nil {
				return "", nil, err
			}
		}
		cur, fi = next, st
	}
	if fi == nil {
		if fi, err = os.Lstat(cur); err != nil {
			return "", nil, err
		}
	}
	return cur, fi, nil
}

func split(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
}

func rootOf(abs string) string {
	v := filepath.VolumeName(abs)
	return v + string(filepath.Separator)
}

func checkAncestor(dir string) error {
	if hasPassed(dir) {
		return nil
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	return checkAncestorInfo(dir, fi)
}

func checkAncestorInfo(dir string, fi fs.FileInfo) error {
	if hasPassed(dir) {
		return nil
	}
	if err := checkParent(dir, fi); err != nil {
		return err
	}
	setPassed(dir)
	return nil
}

// ReadFlags open a file for reading without following a symbolic link planted in its
// place and without blocking on a FIFO (non-blocking has no effect on a regular file).
const ReadFlags = openReadFlags
