package protocol

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// roleEnv makes the test binary play a client's plugin: kubectl's exec plugin
// or git's credential helper, so real clients talk to this package's code.
const roleEnv = "PROTOCOL_TEST_ROLE"

// pluginExpiry is the expiry the fake plugins hand out.
var pluginExpiry = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "exec-plugin":
		os.Exit(runExecPlugin())
	case "git-helper":
		os.Exit(runGitHelper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runExecPlugin answers kubectl with a token that spells out what it was told,
// so the test can see KUBERNETES_EXEC_INFO was understood.
func runExecPlugin() int {
	info, err := ParseExecInfo(os.Getenv("KUBERNETES_EXEC_INFO"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	tok := fmt.Sprintf("%s|%t|%s|%s|%s", info.APIVersion, info.Interactive,
		info.Cluster.Profile, info.Cluster.Tenant, strings.Join(info.Cluster.Scopes, ","))
	if err := WriteExecCredential(os.Stdout, info.APIVersion, tok, pluginExpiry); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runGitHelper answers `get` for any host with a token naming the host, and
// records what git sent in the file named by PROTOCOL_TEST_GIT_SEEN.
func runGitHelper(args []string) int {
	if len(args) != 1 || args[0] != "get" {
		return 0
	}
	req, err := ReadGitRequest(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	seen := fmt.Sprintf("protocol=%s host=%s path=%s authtype=%t", req.Protocol, req.Host, req.Path, req.Offers("authtype"))
	if err := os.WriteFile(os.Getenv("PROTOCOL_TEST_GIT_SEEN"), []byte(seen), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = WriteGitAnswer(os.Stdout, GitAnswer{
		Username:  "pctoken",
		Password:  "tok-" + req.Host,
		ExpiryUTC: pluginExpiry,
		Bearer:    req.Offers("authtype"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
