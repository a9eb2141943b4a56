package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// encodeRequest writes req back as a request line.
func encodeRequest(t *testing.T, req Request) []byte {
	t.Helper()
	fields := map[string]any{"profile": req.Profile, "tenant": req.Tenant, "force_refresh": req.ForceRefresh}
	if req.ID != nil {
		fields["id"] = req.ID
	}
	if req.Scopes != nil {
		fields["scopes"] = req.Scopes
	}
	if req.MinValidity != nil {
		fields["min_validity_seconds"] = req.MinValidity.Seconds()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep ids byte for byte
	if err := enc.Encode(fields); err != nil {
		t.Fatalf("re-encode %+v: %v", req, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func FuzzRequestReader(f *testing.F) {
	for _, seed := range []string{
		`{"id":"a1","profile":"contoso","tenant":"fabrikam.onmicrosoft.com","scopes":["https://graph.microsoft.com/.default"],"min_validity_seconds":600,"force_refresh":true}` + "\n",
		"\xef\xbb\xbf{\"id\":1}\r\n\r\n{\"id\":2.5e1,\"min_validity_seconds\":0.25}",
		`{"id":"x","scope":["a"]}` + "\n" + `not json` + "\n" + `{"id":{"a":1}}` + "\n" + `null` + "\n" + `[1]`,
		`{"id":"\u003c\u00e9>","profile":"a&b","scopes":[]}`,
		`{"scopes":["a b"]}` + "\n" + `{"min_validity_seconds":-1}` + "\n" + `{"min_validity_seconds":9223372036}`,
		`{"id":1} {"id":2}`,
		"\n\n\t \n",
	} {
		f.Add([]byte(seed))
	}
	tok := Token{AccessToken: "tok", ExpiresOn: time.Unix(1741961366, 0)}
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := NewRequestReader(bytes.NewReader(data))
		// Every answer but io.EOF consumes at least one line.
		for range bytes.Count(data, []byte("\n")) + 2 {
			req, err := rr.Next()
			if err == io.EOF {
				return
			}
			var re *RequestError
			if errors.As(err, &re) {
				if re.Line < 1 || re.Err == nil {
					t.Fatalf("malformed RequestError %+v", re)
				}
				checkAnswerID(t, re.ID, func(w io.Writer) error {
					return WriteErrorResponse(w, re.ID, Error{Code: "bad_input", Message: re.Err.Error()})
				})
				continue
			}
			if err != nil {
				t.Fatalf("Next on an in-memory reader: %v", err)
			}
			for _, s := range req.Scopes {
				if checkScope(s) != nil {
					t.Fatalf("accepted bad scope %q", s)
				}
			}
			if req.MinValidity != nil && *req.MinValidity < 0 {
				t.Fatalf("negative min validity %v", *req.MinValidity)
			}
			again, err := parseRequest(encodeRequest(t, req))
			if err != nil {
				t.Fatalf("re-encoded %+v does not parse: %v", req, err)
			}
			if !sameRequest(req, again) {
				t.Fatalf("round trip changed %+v into %+v", req, again)
			}
			checkAnswerID(t, req.ID, func(w io.Writer) error { return WriteResponse(w, req.ID, tok) })
		}
		t.Fatal("more answers than lines")
	})
}

// sameRequest compares two requests, allowing min validity the rounding a
// trip through float seconds costs.
func sameRequest(a, b Request) bool {
	if (a.MinValidity == nil) != (b.MinValidity == nil) {
		return false
	}
	if a.MinValidity != nil {
		diff := *a.MinValidity - *b.MinValidity
		if diff < -time.Microsecond-*a.MinValidity>>40 || diff > time.Microsecond+*a.MinValidity>>40 {
			return false
		}
	}
	a.MinValidity, b.MinValidity = nil, nil
	return reflect.DeepEqual(a, b)
}

// checkAnswerID writes an answer and checks it is one JSON line carrying id.
func checkAnswerID(t *testing.T, id json.RawMessage, write func(io.Writer) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatalf("answer for id %s: %v", id, err)
	}
	line := buf.Bytes()
	if bytes.IndexByte(line, '\n') != len(line)-1 {
		t.Fatalf("answer is not one line: %q", line)
	}
	var got struct{ ID json.RawMessage }
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("answer %q: %v", line, err)
	}
	want := string(id)
	if id == nil {
		want = "null"
	}
	if string(got.ID) != want {
		t.Fatalf("answer carries id %s, want %s", got.ID, want)
	}
}

func FuzzParseExecInfo(f *testing.F) {
	for _, seed := range []string{
		"",
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":true}}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://k8s.example:6443","config":{"profile":"contoso","tenant":"t","scopes":["a/.default"],"other":{}}},"interactive":false}}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"scopes":"a b"}}}}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1"}`,
		`{"kind":"Pod","apiVersion":"client.authentication.k8s.io/v1"}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"config":{"scopes":[null]}}}}`,
		`null`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ParseExecInfo(s)
		if err != nil {
			return
		}
		if !knownExecAPI(info.APIVersion) {
			t.Fatalf("accepted apiVersion %q", info.APIVersion)
		}
		for _, sc := range info.Cluster.Scopes {
			if checkScope(sc) != nil {
				t.Fatalf("accepted bad scope %q", sc)
			}
		}
		config, err := json.Marshal(map[string]any{
			"profile": info.Cluster.Profile, "tenant": info.Cluster.Tenant, "scopes": info.Cluster.Scopes,
		})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseExecInfo(fmt.Sprintf(`{"kind":"ExecCredential","apiVersion":%q,"spec":{"interactive":%t,"cluster":{"config":%s}}}`,
			info.APIVersion, info.Interactive, config))
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", info, err)
		}
		if !reflect.DeepEqual(info, again) {
			t.Fatalf("round trip changed %+v into %+v", info, again)
		}
		if err := WriteExecCredential(io.Discard, info.APIVersion, "tok", time.Unix(1741961366, 0)); err != nil {
			t.Fatal(err)
		}
	})
}

// encodeGitRequest writes r back in git's format. A value ending in CR gets a
// CRLF line end, since a reader drops one CR before LF.
func encodeGitRequest(r GitRequest) []byte {
	var b strings.Builder
	put := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(k + "=" + v)
		if strings.HasSuffix(v, "\r") {
			b.WriteString("\r")
		}
		b.WriteString("\n")
	}
	for _, kv := range [][2]string{
		{"protocol", r.Protocol}, {"host", r.Host}, {"path", r.Path}, {"username", r.Username},
		{"password", r.Password}, {"password_expiry_utc", r.PasswordExpiryUTC},
		{"authtype", r.AuthType}, {"credential", r.Credential},
	} {
		put(kv[0], kv[1])
	}
	for _, v := range r.Capabilities {
		put("capability[]", v)
	}
	for _, v := range r.WWWAuth {
		put("wwwauth[]", v)
	}
	for _, v := range r.State {
		put("state[]", v)
	}
	return []byte(b.String())
}

func FuzzReadGitRequest(f *testing.F) {
	for _, seed := range []string{
		"capability[]=authtype\nprotocol=https\nhost=dev.azure.com\npath=org/_git/r\nwwwauth[]=Bearer realm=x\n\n",
		"protocol=https\r\nhost=example.com:8443\r\npassword=a=b\r\r\n",
		"username=pctoken\npassword=tok\npassword_expiry_utc=1741961366\nauthtype=Bearer\ncredential=tok\nstate[]=s\n",
		"wwwauth[]=one\nwwwauth[]=\nwwwauth[]=two\n\nafter=blank\n",
		"host\n",
		"host=a\x00b\n",
		"=x\nurl=https://example.com\n",
		"protocol=https\nhost=dev.azure.com\nurl=https://u%40x:p@h.example:8443//a/b%2F//\npath=p\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadGitRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := ReadGitRequest(bytes.NewReader(encodeGitRequest(req)))
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", req, err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed %+v into %+v", req, again)
		}
		// An answer built from what was read reads back the same.
		if req.Password == "" || strings.Contains(req.Username+req.Password, "\r") {
			return
		}
		var buf bytes.Buffer
		if err := WriteGitAnswer(&buf, GitAnswer{Username: req.Username, Password: req.Password}); err != nil {
			t.Fatalf("answer with values git sent: %v", err)
		}
		back, err := ReadGitRequest(&buf)
		if err != nil || back.Username != req.Username || back.Password != req.Password {
			t.Fatalf("answer read back as %+v, %v", back, err)
		}
	})
}
