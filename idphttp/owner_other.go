//go:build !unix

package idphttp

import "io/fs"

func ownedByUs(fs.FileInfo) bool { return true }
