//go:build !windows

package securestore

import (
	"io"
	"os"
)

func openTTY() (io.ReadWriteCloser, error) {
	return os.OpenFile("/dev/tty", os.O_RDWR, 0)
}
