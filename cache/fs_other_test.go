//go:build !unix

package cache

import "os"

// mkfifo stands in with an ordinary bad file where there are no FIFOs.
func mkfifo(path string) error { return os.WriteFile(path, []byte("fifo"), 0o600) }
