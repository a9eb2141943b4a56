//go:build !linux

package cli

// hardenProcess does nothing outside Linux (see harden_linux.go).
func hardenProcess() {}
