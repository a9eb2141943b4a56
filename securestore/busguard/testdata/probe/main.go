// Command probe links securestore, and so keyring behind busguard, and
// reports what main sees: the bus variable and keyring's backends.
package main

import (
	"encoding/json"
	"os"

	"github.com/99designs/keyring"

	_ "github.com/pctoken/pctoken-helper/securestore"
)

func main() {
	addr, set := os.LookupEnv("DBUS_SESSION_BUS_ADDRESS")
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"addr":     addr,
		"set":      set,
		"backends": keyring.AvailableBackends(),
	})
}
