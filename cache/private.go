package cache

import (
	"fmt"
	"io/fs"
	"os"
)

// CheckDir applies to dir the rules Open applies to the cache folder: it must be a
// folder, belong to us, and not be writable by group or others. Other packages keep
// files that decide where tokens go (the identity provider's metadata) in folders
// checked this way.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return checkOwner(dir, fi)
}

// ReadPrivateFile reads path the way Load reads an entry, and is as strict about it:
// no symbolic link, nothing but a regular file (a FIFO planted there is refused
// without blocking), at most limit bytes. It also refuses a file that another user
// owns or that group or others can write. Its folder is the caller's to check, with
// CheckDir.
func ReadPrivateFile(path string, limit int64) ([]byte, error) {
	return readRegular(path, limit, func(fi fs.FileInfo) error { return checkFileOwner(path, fi) })
}
