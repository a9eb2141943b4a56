// Package busguard keeps github.com/99designs/keyring from reaching the D-Bus
// session bus while the program starts.
//
// keyring's secret-service and kwallet backends call dbus.SessionBus() in
// their init functions, so every process that links keyring dials the session
// bus before main runs, even when it never touches a secret. Worse, with no bus
// address set and dbus-x11's dbus-launch installed, godbus autolaunches a
// dbus-daemon that outlives the process: one stray daemon per run
// (99designs/keyring#103). A credential helper that kubectl runs on every
// command cannot afford either.
//
// The guard works through package initialisation order. Since Go 1.21 the
// packages of a program are initialised one at a time, always taking the
// first, by import path, of those whose imports are all initialised. This
// package imports only "os"; keyring needs "os/exec" (through godbus), and
// "github.com/pctoken/..." sorts before "os/exec". So this package's init runs
// before keyring's, whatever imports what. It points DBUS_SESSION_BUS_ADDRESS
// at an address with no transport ("disabled:"): keyring's dial then fails at
// once, without touching the network or running dbus-launch, and keyring
// registers neither bus backend. securestore, which imports keyring and so is
// initialised after it, calls Restore from its own init to put the variable
// back before main runs. securestore reaches the Secret Service itself,
// lazily, only when a secret is read or written.
//
// The one exception is KWallet, which only keyring speaks: when the user asks
// for it at start-up (PCTOKEN_STORE=kwallet, or --store kwallet or
// --store=kwallet on the command line) and a session bus is there to be found
// without autolaunching one, the guard stands aside, so that keyring's kwallet
// backend can register. With no bus, a wallet cannot be reached anyway, and
// the guard stays to keep dbus-launch from running.
package busguard

import "os"

// busVariable is the variable godbus reads for the session bus address.
const busVariable = "DBUS_SESSION_BUS_ADDRESS"

// disabledAddress names no transport godbus knows, so a dial fails before any
// I/O; being non-empty and not "autolaunch:", it also keeps godbus from
// looking in /run/user/<uid> or running dbus-launch.
const disabledAddress = "disabled:"

var (
	guarded       bool
	original      string
	originalIsSet bool
)

func init() {
	if kwalletRequested(os.Getenv("PCTOKEN_STORE"), os.Args) && busExists() {
		return
	}
	original, originalIsSet = os.LookupEnv(busVariable)
	if os.Setenv(busVariable, disabledAddress) == nil {
		guarded = true
	}
}

// kwalletRequested reports whether the user chose the kwallet store in the
// environment or on the command line; it cannot wait for flag parsing, which
// happens after keyring's init.
func kwalletRequested(env string, args []string) bool {
	if env == "kwallet" {
		return true
	}
	for i, a := range args {
		if i == 0 {
			continue
		}
		if a == "--" {
			break
		}
		if a == "--store=kwallet" || a == "--store" && i+1 < len(args) && args[i+1] == "kwallet" {
			return true
		}
	}
	return false
}

// busExists reports whether godbus would find a session bus without
// autolaunching one: it uses the variable unless it is empty or
// "autolaunch:", then looks in /run/user/<uid> (conn_other.go).
func busExists() bool {
	if a := os.Getenv(busVariable); a != "" && a != "autolaunch:" {
		return true
	}
	dir := "/run/user/" + itoa(os.Getuid())
	for _, name := range []string{"/bus", "/dbus-session"} {
		if _, err := os.Stat(dir + name); err == nil {
			return true
		}
	}
	return false
}

// itoa spares an import of strconv: this package must import nothing that
// could be initialised after keyring's dependencies (see the package doc).
func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// Restore puts DBUS_SESSION_BUS_ADDRESS back as it was before the guard
// (unset if it was unset). It is meant for securestore's init and does
// nothing on later calls.
func Restore() {
	if !guarded {
		return
	}
	guarded = false
	if originalIsSet {
		os.Setenv(busVariable, original)
	} else {
		os.Unsetenv(busVariable)
	}
}
