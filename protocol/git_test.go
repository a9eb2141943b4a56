package protocol

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadGitRequest(t *testing.T) {
	tests := []struct {
		name, in string
		want     GitRequest
	}{
		{"what git 2.46 sends on get",
			"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=dev.azure.com\npath=org/proj/_git/repo\nwwwauth[]=Bearer authorization_uri=https://login.microsoftonline.com/x\nwwwauth[]=Basic realm=\"https://dev.azure.com/\"\n\n",
			GitRequest{Protocol: "https", Host: "dev.azure.com", Path: "org/proj/_git/repo",
				Capabilities: []string{"authtype", "state"},
				WWWAuth:      []string{"Bearer authorization_uri=https://login.microsoftonline.com/x", `Basic realm="https://dev.azure.com/"`}}},
		{"erase of a Bearer answer",
			"capability[]=authtype\nprotocol=https\nhost=dev.azure.com\nusername=pctoken\npassword=tok\npassword_expiry_utc=1741961366\nauthtype=Bearer\ncredential=tok\nstate[]=pctoken:1\n\n",
			GitRequest{Protocol: "https", Host: "dev.azure.com", Username: "pctoken", Password: "tok",
				PasswordExpiryUTC: "1741961366", AuthType: "Bearer", Credential: "tok",
				Capabilities: []string{"authtype"}, State: []string{"pctoken:1"}}},
		{"values may hold = and spaces; CRLF; no blank line before EOF",
			"protocol=https\r\nhost=example.com:8443\r\npassword=a=b = c\r\n",
			GitRequest{Protocol: "https", Host: "example.com:8443", Password: "a=b = c"}},
		{"unknown and empty keys are ignored; later values win (url= sets the protocol, as git does)",
			"host=a.example\nfuture_key=1\n=orphan\nurl=https://evil.example\nhost=dev.azure.com\n",
			GitRequest{Protocol: "https", Host: "dev.azure.com"}},
		{"an empty array value clears the list",
			"wwwauth[]=one\nwwwauth[]=\nwwwauth[]=two\ncapability[]=authtype\ncapability[]=\n",
			GitRequest{WWWAuth: []string{"two"}}},
		{"reading stops at the blank line",
			"host=dev.azure.com\n\nno equals sign here\nhost=evil.example\n",
			GitRequest{Host: "dev.azure.com"}},
		{"empty input", "", GitRequest{}},
		{"empty host", "protocol=cert\nhost=\n", GitRequest{Protocol: "cert"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadGitRequest(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReadGitRequestErrors(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"no equals sign":   {"protocol=https\nhost\n\n", `line 2: no "="`},
		"NUL in value":     {"host=dev.azure.com\x00.evil.example\n", "line 1: contains a NUL"},
		"NUL in key":       {"ho\x00st=x\n", "contains a NUL"},
		"line too long":    {"path=" + strings.Repeat("p", MaxGitLineBytes) + "\n", "line 1 is longer than"},
		"request too long": {strings.Repeat("wwwauth[]="+strings.Repeat("w", 1000)+"\n", MaxGitRequestBytes/1000), "request is longer than"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadGitRequest(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %+v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
	// The longest line git allows, newline included, is fine.
	long := "path=" + strings.Repeat("p", MaxGitLineBytes-len("path=")-1) + "\n"
	if _, err := ReadGitRequest(strings.NewReader(long)); err != nil {
		t.Errorf("a line of exactly %d bytes: %v", MaxGitLineBytes, err)
	}
}

func TestReadGitRequestKeepsSecretsOutOfErrors(t *testing.T) {
	_, err := ReadGitRequest(strings.NewReader("password=hunter2\x00\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("got %v; want an error that does not quote the line", err)
	}
}

func TestReadGitRequestBoundedMemory(t *testing.T) {
	for name, r := range map[string]io.Reader{
		"one endless line": &endless{b: 'x', n: 100 << 20},
		"endless lines":    &repeat{line: []byte("wwwauth[]=Bearer realm=x\n")},
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ReadGitRequest(r)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("no error for an unbounded request")
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxGitRequestBytes {
				t.Errorf("allocated %d bytes, want O(MaxGitRequestBytes)", alloc)
			}
		})
	}
}

// TestReadGitRequestDoesNotWaitForEOF feeds a request through a real pipe whose
// writer stays open, as some callers of credential helpers do.
func TestReadGitRequestDoesNotWaitForEOF(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, err := pw.WriteString("protocol=https\nhost=dev.azure.com\n\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan GitRequest, 1)
	go func() {
		req, err := ReadGitRequest(pr)
		if err != nil {
			t.Error(err)
		}
		done <- req
	}()
	select {
	case req := <-done:
		if req.Host != "dev.azure.com" {
			t.Errorf("host %q", req.Host)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadGitRequest waits for EOF after the blank line")
	}
}

func TestWriteGitAnswerGolden(t *testing.T) {
	exp := time.Date(2025, 3, 14, 15, 9, 26, 999_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		a    GitAnswer
		want string
	}{
		{"username and password", GitAnswer{Username: "pctoken", Password: "tok"},
			"username=pctoken\npassword=tok\n"},
		{"with expiry", GitAnswer{Username: "pctoken", Password: "tok", ExpiryUTC: exp},
			"username=pctoken\npassword=tok\npassword_expiry_utc=1741961366\n"},
		{"bearer: capability first", GitAnswer{Username: "pctoken", Password: "tok", ExpiryUTC: exp, Bearer: true},
			"capability[]=authtype\nusername=pctoken\npassword=tok\npassword_expiry_utc=1741961366\nauthtype=Bearer\ncredential=tok\n"},
		{"no username", GitAnswer{Password: "a=b"}, "password=a=b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteGitAnswer(&buf, tt.a); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
			// What a helper writes, a helper reads back the same way.
			back, err := ReadGitRequest(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if back.Username != tt.a.Username || back.Password != tt.a.Password ||
				(tt.a.Bearer && (back.Credential != tt.a.Password || back.AuthType != "Bearer" || !back.Offers("authtype"))) {
				t.Errorf("read back %+v", back)
			}
		})
	}
	bad := map[string]GitAnswer{
		"no password":         {Username: "u"},
		"newline in password": {Password: "tok\nhost=evil.example"},
		"CR in password":      {Password: "tok\r"},
		"NUL in username":     {Username: "u\x00", Password: "tok"},
		"newline in username": {Username: "u\npassword=x", Password: "tok"},
		"password too long":   {Password: strings.Repeat("t", MaxGitLineBytes)},
		"credential too long": {Password: strings.Repeat("t", MaxGitLineBytes-len("password=\n")), Bearer: true},
	}
	for name, a := range bad {
		var buf bytes.Buffer
		if err := WriteGitAnswer(&buf, a); err == nil || buf.Len() != 0 {
			t.Errorf("%s: err %v, wrote %q", name, err, buf.String())
		}
	}
	boom := errors.New("pipe closed")
	if err := WriteGitAnswer(failWriter{boom}, GitAnswer{Password: "tok"}); !errors.Is(err, boom) {
		t.Errorf("got %v, want %v", err, boom)
	}
}

// TestGitCredentialFill has the git on PATH run the test binary as its
// credential helper: git must send what ReadGitRequest understands and take
// the answer WriteGitAnswer gives.
func TestGitCredentialFill(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not on PATH")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	cmd := exec.Command(git,
		"-c", "credential.helper=",
		"-c", "credential.helper=!'"+self+"'",
		"-c", "credential.useHttpPath=true",
		"credential", "fill")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+dir, "XDG_CONFIG_HOME="+dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		roleEnv+"=git-helper", "PROTOCOL_TEST_GIT_SEEN="+seen)
	cmd.Stdin = strings.NewReader("protocol=https\nhost=dev.azure.com\npath=org/proj/_git/repo\n\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git credential fill: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"username=pctoken\n", "password=tok-dev.azure.com\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("git printed %q, missing %q", out, want)
		}
	}
	got, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "protocol=https host=dev.azure.com path=org/proj/_git/repo authtype=") {
		t.Errorf("helper read %q", got)
	}
}

// TestReadGitRequestURL: a url= line is read as git's credential.c reads it (clear,
// then protocol, user, password, host and path from the URL; later keys override),
// wherever it comes: after host= it wins, and a host= after it wins in turn.
func TestReadGitRequestURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want GitRequest
	}{
		{"protocol=https\nhost=dev.azure.com\nurl=http://evil.example/x\n",
			GitRequest{Protocol: "http", Host: "evil.example", Path: "x"}},
		{"url=https://u%40x:p%3Aw@dev.azure.com:8443//org/_git/r%20x//\nhost=other.example\n",
			GitRequest{Protocol: "https", Host: "other.example", Username: "u@x", Password: "p:w", Path: "org/_git/r x"}},
		{"capability[]=authtype\nurl=https://a.visualstudio.com?x#y\n",
			GitRequest{Protocol: "https", Host: "a.visualstudio.com", Path: "?x#y"}},
		{"url=https://h/%zz%4\n", GitRequest{Protocol: "https", Host: "h", Path: "%zz%4"}},
	} {
		got, err := ReadGitRequest(strings.NewReader(c.in))
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"url=dev.azure.com\n", "url=://x\n", "url=https://a%0Ab/\n", "url=https://a/%0d\n"} {
		if _, err := ReadGitRequest(strings.NewReader(bad)); err == nil {
			t.Errorf("%q was read", bad)
		}
	}
}
