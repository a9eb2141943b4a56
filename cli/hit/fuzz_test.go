package hit

import (
	"strings"
	"testing"
)

// FuzzParse feeds parse arbitrary command lines and environments: it must never
// panic, and what it accepts must be a get or exec-credential with a known output.
func FuzzParse(f *testing.F) {
	f.Add("get\x00--scope\x00graph\x00-o\x00token", "PCTOKEN_PROFILE=p")
	f.Add("exec-credential\x00--min-validity=10m\x00--tenant\x00contoso.onmicrosoft.com", "PCTOKEN_VERBOSE=1")
	f.Add("get\x00--scope=a,b\x00--scope\x00c\x00--output=azd", "")
	f.Add("get\x00--timeout\x00-1s", "PCTOKEN_TENANT=")
	f.Add("get\x00--", "")
	f.Fuzz(func(t *testing.T, argv, env string) {
		args := strings.Split(argv, "\x00")
		vars := map[string]string{}
		for _, kv := range strings.Split(env, "\n") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		in, ok := parse(args, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if !ok {
			return
		}
		if in.cmd != cmdGet && in.cmd != cmdExecCredential {
			t.Fatalf("accepted command %q", in.cmd)
		}
		switch in.output {
		case "", "json", "token", "az", "azd":
		default:
			t.Fatalf("accepted output %q", in.output)
		}
	})
}
