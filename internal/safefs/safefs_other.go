//go:build !unix

package safefs

import (
	"io/fs"
	"os"
)

// Elsewhere (Windows) there is no O_NOFOLLOW, and access is governed by ACLs that the
// user profile folder already restricts, not by mode bits.
const (
	openReadFlags = os.O_RDONLY
	NoFollow      = 0
)

func isLoop(error) bool                          { return false }
func checkOwn(string, fs.FileInfo, string) error { return nil }
func checkParent(string, fs.FileInfo) error      { return nil }
