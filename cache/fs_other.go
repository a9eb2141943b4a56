//go:build !unix

package cache

import (
	"io/fs"
	"os"
)

// Elsewhere (Windows) there is no O_NOFOLLOW, and access is governed by ACLs that
// the user profile directory already restricts, not by mode bits.
const (
	noFollow      = 0
	openReadFlags = os.O_RDONLY
)

func checkOwner(string, fs.FileInfo) error { return nil }

func checkFolder(_, _, _ string, _ fs.FileInfo) error { return nil }
