package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxGitLineBytes is git-credential(1)'s limit on one line, its newline
// included.
const MaxGitLineBytes = 65535

// MaxGitRequestBytes bounds a whole request; git sends a few short lines plus
// one wwwauth[] line per WWW-Authenticate header.
const MaxGitRequestBytes = 256 << 10

// GitRequest is what git sends a credential helper (gitcredentials(7)).
// Password and Credential are secrets: never log them.
type GitRequest struct {
	Protocol          string
	Host              string // with ":port" when the URL had one
	Path              string
	Username          string
	Password          string
	PasswordExpiryUTC string
	AuthType          string   // with capability authtype, e.g. on erase of a Bearer answer
	Credential        string   // likewise: the pre-encoded credential
	Capabilities      []string // capability[]
	WWWAuth           []string // wwwauth[]: the server's WWW-Authenticate headers
	State             []string // state[]
}

// Offers reports whether git announced capability (e.g. "authtype").
func (r GitRequest) Offers(capability string) bool {
	return slices.Contains(r.Capabilities, capability)
}

// ReadGitRequest reads key=value lines up to a blank line or the end of
// input. It reads nothing past the blank line's terminator being seen, so a
// caller that keeps the pipe open does not make it wait. Unknown keys are
// ignored, as git does; later values of a key replace earlier ones, and an
// empty value of an array key (key[]=) clears it. A url= line is read as git's
// credential.c reads it: it clears everything read so far and sets protocol,
// user name, password, host (with its port) and path from the URL; keys after it
// override those.
func ReadGitRequest(r io.Reader) (GitRequest, error) {
	br := bufio.NewReaderSize(r, MaxGitLineBytes)
	var req GitRequest
	total := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return GitRequest{}, fmt.Errorf("git credential line %d is longer than %d bytes", n, MaxGitLineBytes)
		}
		if err != nil && err != io.EOF {
			return GitRequest{}, fmt.Errorf("read git credential request: %w", err)
		}
		if total += len(line); total > MaxGitRequestBytes {
			return GitRequest{}, fmt.Errorf("git credential request is longer than %d bytes", MaxGitRequestBytes)
		}
		atEOF := err == io.EOF
		line = bytes.TrimSuffix(line, []byte("\n"))
		// git reads lines with strbuf_getline, which drops a CR before LF.
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			// A blank line ends the request; so does the end of input.
			return req, nil
		}
		if err := req.set(line); err != nil {
			// The line may hold a password: report only where it is.
			return GitRequest{}, fmt.Errorf("git credential line %d: %w", n, err)
		}
		if atEOF {
			return req, nil
		}
	}
}

func (r *GitRequest) set(line []byte) error {
	if bytes.IndexByte(line, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	key, value, ok := strings.Cut(string(line), "=")
	if !ok {
		return errors.New(`no "=" in line`)
	}
	switch key {
	case "protocol":
		r.Protocol = value
	case "host":
		r.Host = value
	case "path":
		r.Path = value
	case "username":
		r.Username = value
	case "password":
		r.Password = value
	case "password_expiry_utc":
		r.PasswordExpiryUTC = value
	case "authtype":
		r.AuthType = value
	case "credential":
		r.Credential = value
	case "capability[]":
		r.Capabilities = appendOrReset(r.Capabilities, value)
	case "wwwauth[]":
		r.WWWAuth = appendOrReset(r.WWWAuth, value)
	case "state[]":
		r.State = appendOrReset(r.State, value)
	case "url":
		return r.fromURL(value)
	}
	return nil
}

// fromURL is git's credential_from_url: clear, then take the parts of
// proto://[user[:pass]@]host[:port][/path]. The host ends at the first '/', '?' or
// '#'; user, password, host and path are percent-decoded; the path loses its
// leading and trailing slashes. A URL without a scheme, or a part that decodes to
// a newline (or CR, which git would drop), is refused, as git refuses it.
func (r *GitRequest) fromURL(u string) error {
	*r = GitRequest{}
	proto, rest, ok := strings.Cut(u, "://")
	if !ok || proto == "" {
		return errors.New("url has no scheme")
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	authority, path := rest[:hostEnd], rest[hostEnd:]
	host := authority
	if at := strings.IndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		host = authority[at+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		r.Username = percentDecode(user)
		if hasPass {
			r.Password = percentDecode(pass)
		}
	}
	r.Protocol = proto
	r.Host = percentDecode(host)
	path = strings.Trim(path, "/")
	if path != "" {
		r.Path = percentDecode(path)
	}
	for _, v := range []string{r.Username, r.Password, r.Protocol, r.Host, r.Path} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return errors.New("url contains a newline, CR or NUL in one of its parts")
		}
	}
	return nil
}

// percentDecode decodes %XX and leaves anything else, a malformed escape
// included, as it is (git's url_decode does the same; '+' stays '+').
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, ok1 := unhex(s[i+1]); ok1 {
				if lo, ok2 := unhex(s[i+2]); ok2 {
					b.WriteByte(hi<<4 | lo)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendOrReset follows git-credential(1): "key[]=" with an empty value
// clears the list.
func appendOrReset(list []string, value string) []string {
	if value == "" {
		return nil
	}
	return append(list, value)
}

// GitAnswer is a credential helper's answer to `get`.
type GitAnswer struct {
	Username  string    // left out when empty
	Password  string    // the access token
	ExpiryUTC time.Time // password_expiry_utc; left out when zero
	// Bearer adds authtype=Bearer and credential=<Password>. Send it only
	// when git offered capability[]=authtype (git 2.46 and later).
	Bearer bool
}

// WriteGitAnswer writes the answer lines. capability[]=authtype comes first,
// as git-credential(1) asks of a capability before the values depending on it.
func WriteGitAnswer(w io.Writer, a GitAnswer) error {
	if a.Password == "" {
		return errors.New("git answer has no password")
	}
	if err := checkGitValue("username", a.Username); err != nil {
		return err
	}
	if err := checkGitValue("password", a.Password); err != nil {
		return err
	}
	if a.Bearer {
		if err := checkGitValue("credential", a.Password); err != nil {
			return err
		}
	}
	var b strings.Builder
	if a.Bearer {
		b.WriteString("capability[]=authtype\n")
	}
	if a.Username != "" {
		b.WriteString("username=" + a.Username + "\n")
	}
	b.WriteString("password=" + a.Password + "\n")
	if !a.ExpiryUTC.IsZero() {
		b.WriteString("password_expiry_utc=" + strconv.FormatInt(a.ExpiryUTC.Unix(), 10) + "\n")
	}
	if a.Bearer {
		b.WriteString("authtype=Bearer\n")
		b.WriteString("credential=" + a.Password + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// checkGitValue refuses what the line format cannot carry. A CR is refused
// too: git would silently drop it at the end of a line.
func checkGitValue(key, v string) error {
	if strings.ContainsAny(v, "\n\r\x00") {
		return fmt.Errorf("git answer %s contains a newline, CR or NUL", key)
	}
	if len(key)+1+len(v)+1 > MaxGitLineBytes {
		return fmt.Errorf("git answer %s is longer than a git credential line", key)
	}
	return nil
}
