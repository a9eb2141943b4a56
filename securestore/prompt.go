package securestore

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/99designs/keyring"
	"golang.org/x/term"
)

// maxPassphrase bounds a passphrase read from a terminal that is not one, such
// as a pipe that never sends a newline.
const maxPassphrase = 4096

// terminalPrompt asks on the terminal, never on stdout (keyring's own
// TerminalPrompt prints to stdout, which carries the protocol's answer).
func terminalPrompt(cfg Config) keyring.PromptFunc {
	return func(prompt string) (string, error) {
		if !cfg.Prompt {
			return "", errors.New("a password is needed and asking is not allowed in a non-interactive run")
		}
		tty, err := cfg.TTY()
		if err != nil {
			return "", fmt.Errorf("no terminal to ask for a password on: %w", err)
		}
		defer tty.Close()
		return ask(tty, prompt+": ")
	}
}

// ask writes prompt to tty and reads one line back, with echo off when tty is
// a real terminal.
func ask(tty io.ReadWriter, prompt string) (string, error) {
	if _, err := io.WriteString(tty, prompt); err != nil {
		return "", err
	}
	if f, ok := tty.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		// The newline typed was not echoed; end the prompt's line.
		io.WriteString(tty, "\n")
		return string(b), err
	}
	return readLine(tty)
}

// readLine reads up to a newline one byte at a time, so that nothing after it
// is consumed (a second prompt may follow), and drops trailing "\r"s.
func readLine(r io.Reader) (string, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) == maxPassphrase {
				return "", errors.New("the passphrase is too long")
			}
			line = append(line, b[0])
			continue
		}
		if err == io.EOF && len(line) > 0 {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}
