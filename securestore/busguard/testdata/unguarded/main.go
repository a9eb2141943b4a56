// Command unguarded links keyring without busguard: the control that shows
// what the guard prevents.
package main

import (
	"encoding/json"
	"os"

	"github.com/99designs/keyring"
)

func main() {
	addr, set := os.LookupEnv("DBUS_SESSION_BUS_ADDRESS")
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"addr":     addr,
		"set":      set,
		"backends": keyring.AvailableBackends(),
	})
}
