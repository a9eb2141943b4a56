package cache

import (
	"fmt"
	"os"
)

// CheckFolder applies Open's rule (no folder another user can write to) to an
// existing folder, creating and opening nothing: doctor reports with it on the cache
// folder and on the config folder. what and flag name the folder and the flag that
// chooses another in the message. A missing folder gives an fs.ErrNotExist error.
func CheckFolder(what, flag, dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s is not a directory", what, dir)
	}
	return checkFolder(what, flag, dir, fi)
}
