// Package kubeconfig points a kubeconfig user at pctoken-helper's exec credential
// plugin, as `kubelogin convert-kubeconfig` does for kubelogin: the user's other
// credentials are replaced by an exec entry, and every other part of the file
// (clusters, contexts, other users, preferences, extensions, comments, key order)
// is kept as it was.
//
// It edits the YAML document tree (go.yaml.in/yaml/v3's Node) rather than decoding
// into client-go's types: the tree keeps comments, key order and fields unknown to
// any version of client-go, and the binary links no Kubernetes API machinery.
package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// MaxSize bounds the kubeconfig read: a real one is kilobytes, a big fleet's a few
// megabytes.
const MaxSize = 16 << 20

// APIVersion is the exec plugin API the converted user asks for.
const APIVersion = "client.authentication.k8s.io/v1"

// Exec is the plugin a user is converted to.
type Exec struct {
	Command string
	Args    []string
}

// Selector picks the user to convert: User by name, else the user of Context, else
// the user of the current context.
type Selector struct {
	Context string
	User    string
}

// credentialKeys are the ways of authenticating a user entry may hold besides exec;
// each is dropped on conversion, since client-go refuses or prefers them over exec.
// Client certificates are kept: they authenticate the TLS connection, apart from
// the bearer token.
var credentialKeys = []string{"auth-provider", "token", "tokenFile", "username", "password", "exec"}

// Convert rewrites the user sel picks in the kubeconfig doc so that it runs x, and
// returns the new document and the user's name. The result is the same for the same
// input, so converting twice changes nothing the second time.
func Convert(doc []byte, sel Selector, x Exec) ([]byte, string, error) {
	if sel.Context != "" && sel.User != "" {
		return nil, "", errors.New("give --context or --user, not both")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, "", fmt.Errorf("not a kubeconfig: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, "", errors.New("not a kubeconfig: the document is not a YAML mapping")
	}
	top := root.Content[0]
	userName, err := pickUser(top, sel)
	if err != nil {
		return nil, "", err
	}
	users := value(top, "users")
	if users == nil || users.Kind == yaml.ScalarNode && users.Tag == "!!null" {
		users = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		set(top, "users", users)
	}
	if users.Kind != yaml.SequenceNode {
		return nil, "", errors.New("not a kubeconfig: users is not a list")
	}
	entry := named(users, userName)
	if entry == nil {
		if sel.User != "" {
			return nil, "", fmt.Errorf("no user %s in the kubeconfig (users: %s)", shown(userName), orNone(names(users)))
		}
		// The context names a user with no entry yet: add it.
		entry = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		set(entry, "name", str(userName))
		users.Content = append(users.Content, entry)
	}
	user := value(entry, "user")
	if user == nil || user.Kind != yaml.MappingNode {
		user = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		set(entry, "user", user)
	}
	for _, k := range credentialKeys {
		del(user, k)
	}
	set(user, "exec", execNode(x))

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	enc.CompactSeqIndent() // "- name:" under "users:", as kubectl writes it
	if err := enc.Encode(&root); err != nil {
		return nil, "", fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, "", fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	return out.Bytes(), userName, nil
}

func pickUser(top *yaml.Node, sel Selector) (string, error) {
	if sel.User != "" {
		return sel.User, nil
	}
	ctxName := sel.Context
	if ctxName == "" {
		cur := value(top, "current-context")
		if cur == nil || cur.Kind != yaml.ScalarNode || cur.Value == "" {
			return "", errors.New("the kubeconfig has no current context: pass --context or --user")
		}
		ctxName = cur.Value
	}
	contexts := value(top, "contexts")
	var c *yaml.Node
	if contexts != nil && contexts.Kind == yaml.SequenceNode {
		c = named(contexts, ctxName)
	}
	if c == nil {
		var list []string
		if contexts != nil && contexts.Kind == yaml.SequenceNode {
			list = names(contexts)
		}
		return "", fmt.Errorf("no context %s in the kubeconfig (contexts: %s)", shown(ctxName), orNone(list))
	}
	body := value(c, "context")
	u := (*yaml.Node)(nil)
	if body != nil && body.Kind == yaml.MappingNode {
		u = value(body, "user")
	}
	if u == nil || u.Kind != yaml.ScalarNode || u.Value == "" {
		return "", fmt.Errorf("context %s names no user: pass --user", shown(ctxName))
	}
	return u.Value, nil
}

// orNone lists names for an error message: at most maxListed, each shown.
func orNone(list []string) string {
	const maxListed = 20
	if len(list) == 0 {
		return "none"
	}
	out := make([]string, 0, min(len(list), maxListed)+1)
	for i, n := range list {
		if i == maxListed {
			out = append(out, fmt.Sprintf("and %d more", len(list)-maxListed))
			break
		}
		out = append(out, shown(n))
	}
	return strings.Join(out, ", ")
}

// shown is a name from the file as an error message may show it: control
// characters dropped, at most 80 characters.
func shown(s string) string {
	const maxLen = 80
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > maxLen {
		s = string(r[:maxLen]) + "..."
	}
	return s
}

func execNode(x Exec) *yaml.Node {
	args := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, a := range x.Args {
		args.Content = append(args.Content, str(a))
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	set(n, "apiVersion", str(APIVersion))
	set(n, "command", str(x.Command))
	set(n, "args", args)
	// kubectl may not prompt through the plugin: the helper never needs a person
	// once consent was given, and says what to run when it does.
	set(n, "interactiveMode", str("Never"))
	set(n, "provideClusterInfo", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	return n
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// value is the value of key in the mapping m, nil when absent.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set replaces the value of key in m, or appends key and v.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, str(key), v)
}

func del(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// named is the entry of list whose name is name.
func named(list *yaml.Node, name string) *yaml.Node {
	for _, e := range list.Content {
		if n := value(e, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value == name {
			return e
		}
	}
	return nil
}

func names(list *yaml.Node) []string {
	var out []string
	for _, e := range list.Content {
		if n := value(e, "name"); n != nil && n.Kind == yaml.ScalarNode {
			out = append(out, n.Value)
		}
	}
	sort.Strings(out)
	return out
}

// Path is the kubeconfig to edit: flag, else the first file of $KUBECONFIG (a list,
// as kubectl reads it) that exists, else its first entry, else ~/.kube/config.
func Path(flag, env, home string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	var first string
	for _, p := range filepath.SplitList(env) {
		if p == "" {
			continue
		}
		if first == "" {
			first = p
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if first != "" {
		return first, nil
	}
	if home == "" {
		return "", errors.New("no home folder: pass --kubeconfig")
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// Read reads the kubeconfig at path, at most MaxSize bytes.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%s is larger than %d MB", path, MaxSize>>20)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteAtomic replaces the file at path (through a symbolic link, the file it points
// to) with data, keeping its mode: a temporary file in the same folder is written,
// synced and renamed over it, so a reader sees the old file or the new one, never
// half of one.
func WriteAtomic(path string, data []byte) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(target)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(target), ".pctoken-kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // nothing left to remove after the rename
	if err := f.Chmod(fi.Mode().Perm()); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), target)
}

// IsNotExist reports whether err means the kubeconfig is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
