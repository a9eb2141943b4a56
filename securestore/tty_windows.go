package securestore

import (
	"errors"
	"io"
	"os"
)

// console is the Windows counterpart of /dev/tty: the console's input and
// output buffers, which stay the console's even when stdin and stdout are
// redirected.
type console struct {
	in, out *os.File
}

func openTTY() (io.ReadWriteCloser, error) {
	in, err := os.OpenFile("CONIN$", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile("CONOUT$", os.O_WRONLY, 0)
	if err != nil {
		in.Close()
		return nil, err
	}
	return &console{in: in, out: out}, nil
}

func (c *console) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *console) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *console) Close() error                { return errors.Join(c.in.Close(), c.out.Close()) }

// Fd lets ask turn echo off: it is the input handle term.ReadPassword needs.
func (c *console) Fd() uintptr { return c.in.Fd() }
