package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func dur(d time.Duration) *time.Duration { return &d }

// result is one answer of RequestReader.Next, flattened for comparison.
type result struct {
	req     Request
	line    int    // of a *RequestError, else 0
	id      string // of a *RequestError
	errText string // part of the *RequestError's message
}

func readAll(t *testing.T, input string) []result {
	t.Helper()
	rr := NewRequestReader(strings.NewReader(input))
	var out []result
	for {
		req, err := rr.Next()
		if err == io.EOF {
			return out
		}
		var re *RequestError
		switch {
		case errors.As(err, &re):
			out = append(out, result{line: re.Line, id: string(re.ID), errText: re.Err.Error()})
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			out = append(out, result{req: req})
		}
	}
}

func TestRequestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []result
	}{
		{
			name:  "full request",
			input: `{"id":"a1","profile":"contoso","tenant":"fabrikam.onmicrosoft.com","scopes":["https://graph.microsoft.com/.default"],"min_validity_seconds":600,"force_refresh":true}` + "\n",
			want: []result{{req: Request{ID: json.RawMessage(`"a1"`), Profile: "contoso", Tenant: "fabrikam.onmicrosoft.com",
				Scopes: []string{"https://graph.microsoft.com/.default"}, MinValidity: dur(10 * time.Minute), ForceRefresh: true}}},
		},
		{
			name:  "ids echo verbatim; absent and null mean none",
			input: "{\"id\":7}\n{\"id\": 1.50e2 }\n{\"id\":\"\\u00e9\"}\n{}\n{\"id\":null}\n",
			want: []result{
				{req: Request{ID: json.RawMessage(`7`)}},
				{req: Request{ID: json.RawMessage(`1.50e2`)}},
				{req: Request{ID: json.RawMessage(`"\u00e9"`)}},
				{req: Request{}},
				{req: Request{}},
			},
		},
		{
			name:  "blank lines, CRLF, BOM and no final newline",
			input: "\xef\xbb\xbf{\"id\":1}\r\n\r\n   \n\t\n{\"id\":2,\"scopes\":[],\"min_validity_seconds\":0.5}",
			want: []result{
				{req: Request{ID: json.RawMessage(`1`)}},
				{req: Request{ID: json.RawMessage(`2`), MinValidity: dur(500 * time.Millisecond)}},
			},
		},
		{
			name:  "nulls read as absent",
			input: `{"profile":null,"tenant":null,"scopes":null,"min_validity_seconds":null,"force_refresh":null}`,
			want:  []result{{req: Request{}}},
		},
		{
			name: "a bad line is answered and reading goes on",
			input: `{"id":"x","scope":["a"]}` + "\n" +
				`{"id":"y","Scopes":["a"]}` + "\n" +
				`{"id":3,"profile":"p"}` + "\n" +
				`not json` + "\n" +
				`{"id":4,"tenant":` + "\n" +
				`{"id":{"nested":1},"profile":"p"}` + "\n" +
				`{"id":true}` + "\n" +
				`["id",5]` + "\n" +
				`null` + "\n" +
				`{"id":6} {"id":7}` + "\n" +
				`{"id":8}`,
			want: []result{
				{line: 1, id: `"x"`, errText: `unknown field "scope"`},
				{line: 2, id: `"y"`, errText: `unknown field "Scopes"`},
				{req: Request{ID: json.RawMessage(`3`), Profile: "p"}},
				{line: 4, errText: "invalid JSON: invalid character 'o' in literal null (expecting 'u') (byte 2)"},
				{line: 5, errText: "invalid JSON: unexpected end of JSON input"},
				{line: 6, errText: `"id" must be a string or a number`},
				{line: 7, errText: `"id" must be a string or a number`},
				{line: 8, errText: "not a JSON object"},
				{line: 9, errText: "not a JSON object"},
				{line: 10, errText: "invalid JSON: invalid character '{' after top-level value"},
				{req: Request{ID: json.RawMessage(`8`)}},
			},
		},
		{
			name: "field types are checked",
			input: `{"id":1,"profile":5}` + "\n" +
				`{"id":2,"tenant":["t"]}` + "\n" +
				`{"id":3,"scopes":"a b"}` + "\n" +
				`{"id":4,"scopes":["a",null]}` + "\n" +
				`{"id":5,"scopes":["a b"]}` + "\n" +
				`{"id":6,"scopes":[""]}` + "\n" +
				`{"id":7,"min_validity_seconds":-1}` + "\n" +
				`{"id":8,"min_validity_seconds":"300"}` + "\n" +
				`{"id":9,"min_validity_seconds":1e300}` + "\n" +
				`{"id":10,"force_refresh":"yes"}` + "\n" +
				`{"id":11,"min_validity_seconds":9223372036}` + "\n",
			want: []result{
				{line: 1, id: `1`, errText: `"profile" must be a string`},
				{line: 2, id: `2`, errText: `"tenant" must be a string`},
				{line: 3, id: `3`, errText: `"scopes" must be an array of strings`},
				{line: 4, id: `4`, errText: `"scopes" must be an array of strings`},
				{line: 5, id: `5`, errText: `scope "a b" contains a space`},
				{line: 6, id: `6`, errText: "empty scope"},
				{line: 7, id: `7`, errText: `"min_validity_seconds" must be a number`},
				{line: 8, id: `8`, errText: `"min_validity_seconds" must be a number`},
				{line: 9, id: `9`, errText: `"min_validity_seconds" must be a number`},
				{line: 10, id: `10`, errText: `"force_refresh" must be true or false`},
				{req: Request{ID: json.RawMessage(`11`), MinValidity: dur(9223372036 * time.Second)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d answers, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if w.errText != "" {
					if g.line != w.line || g.id != w.id || !strings.Contains(g.errText, w.errText) {
						t.Errorf("answer %d: got error line %d id %q %q; want line %d id %q containing %q",
							i, g.line, g.id, g.errText, w.line, w.id, w.errText)
					}
					continue
				}
				if g.errText != "" || !reflect.DeepEqual(g.req, w.req) {
					t.Errorf("answer %d: got %+v (error %q), want %+v", i, g.req, g.errText, w.req)
				}
			}
		})
	}
}

func TestRequestReaderLineLimit(t *testing.T) {
	// A request whose line is exactly n bytes long, padded in the profile.
	line := func(id, n int) string {
		head := `{"id":` + string(rune('0'+id)) + `,"profile":"`
		return head + strings.Repeat("p", n-len(head)-2) + `"}`
	}
	input := line(1, MaxLineBytes) + "\n" + // fits
		line(2, MaxLineBytes+1) + "\n" + // one byte too many
		strings.Repeat("x", 3*MaxLineBytes) + "\n" + // far too long
		`{"id":4}` + "\n" +
		line(5, MaxLineBytes+1) // too long, and the last line
	got := readAll(t, input)
	want := []result{
		{req: Request{ID: json.RawMessage(`1`), Profile: strings.Repeat("p", MaxLineBytes-len(`{"id":1,"profile":""}`))}},
		{line: 2, errText: ErrLineTooLong.Error()},
		{line: 3, errText: ErrLineTooLong.Error()},
		{req: Request{ID: json.RawMessage(`4`)}},
		{line: 5, errText: ErrLineTooLong.Error()},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("answer %d: got line %d %q, want line %d %q", i, got[i].line, got[i].errText, want[i].line, want[i].errText)
		}
	}
}

// endless yields n bytes of b repeated, without holding them.
type endless struct {
	b byte
	n int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	for i := range p {
		p[i] = e.b
	}
	e.n -= int64(len(p))
	return len(p), nil
}

func TestRequestReaderBoundedMemory(t *testing.T) {
	const lineSize = 10 << 20
	input := io.MultiReader(&endless{b: 'x', n: lineSize}, strings.NewReader("\n"+`{"id":"after"}`+"\n"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rr := NewRequestReader(input)
	_, err := rr.Next()
	req, err2 := rr.Next()
	runtime.ReadMemStats(&after)

	var re *RequestError
	if !errors.As(err, &re) || !errors.Is(err, ErrLineTooLong) || re.Line != 1 {
		t.Fatalf("first Next: got %v, want a line-too-long error on line 1", err)
	}
	if err2 != nil || string(req.ID) != `"after"` {
		t.Fatalf("second Next: got %+v, %v", req, err2)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxLineBytes {
		t.Errorf("reading a %d-byte line allocated %d bytes, want O(MaxLineBytes)", lineSize, alloc)
	}
}

// TestRequestReaderStreams checks that each request is returned as soon as its
// line arrives on a real pipe, not when the writer closes it: a script may
// wait for the answer before it writes the next request.
func TestRequestReaderStreams(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	rr := NewRequestReader(pr)
	for i, line := range []string{`{"id":1}`, `{"id":2,"profile":"p"}`} {
		if _, err := pw.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
		got := make(chan Request, 1)
		go func() {
			req, err := rr.Next()
			if err != nil {
				t.Error(err)
			}
			got <- req
		}()
		select {
		case req := <-got:
			if want := string(rune('1' + i)); string(req.ID) != want {
				t.Errorf("got id %s, want %s", req.ID, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d not returned while the pipe stays open", i+1)
		}
	}
	pw.Close()
	if _, err := rr.Next(); err != io.EOF {
		t.Errorf("after close: got %v, want io.EOF", err)
	}
}

func TestRequestReaderReadError(t *testing.T) {
	boom := errors.New("stdin broke")
	rr := NewRequestReader(io.MultiReader(strings.NewReader(`{"id":1}`+"\n"), errReader{boom}))
	if _, err := rr.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := rr.Next()
	var re *RequestError
	if !errors.Is(err, boom) || errors.As(err, &re) {
		t.Errorf("got %v, want the reader's error, not a RequestError", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestWriteResponsesGolden(t *testing.T) {
	tok := Token{AccessToken: "tok", ExpiresOn: time.Unix(1741961366, 0), TenantID: "t1", Scopes: []string{"s/.default"}, Profile: "p"}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  string
	}{
		{"string id", func(w *bytes.Buffer) error { return WriteResponse(w, json.RawMessage(`"a<1>"`), tok) },
			`{"id":"a<1>","access_token":"tok","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"t1","scopes":["s/.default"],"profile":"p","cached":false}` + "\n"},
		{"number id kept as written", func(w *bytes.Buffer) error { return WriteResponse(w, json.RawMessage(`1.50e2`), tok) },
			`{"id":1.50e2,"access_token":"tok","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"t1","scopes":["s/.default"],"profile":"p","cached":false}` + "\n"},
		{"no id", func(w *bytes.Buffer) error { return WriteResponse(w, nil, tok) },
			`{"id":null,"access_token":"tok","token_type":"Bearer","expires_on":1741961366,"expires_at":"2025-03-14T14:09:26Z","tenant_id":"t1","scopes":["s/.default"],"profile":"p","cached":false}` + "\n"},
		{"error", func(w *bytes.Buffer) error {
			return WriteErrorResponse(w, json.RawMessage(`"a1"`), Error{Code: "bad_input", Message: `unknown field "scope"`})
		}, `{"id":"a1","error":{"code":"bad_input","message":"unknown field \"scope\""}}` + "\n"},
		{"error without id", func(w *bytes.Buffer) error {
			return WriteErrorResponse(w, nil, Error{Code: "bad_input", Message: "not a JSON object"})
		}, `{"id":null,"error":{"code":"bad_input","message":"not a JSON object"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
		})
	}
	for _, id := range []string{`{}`, `[1]`, `true`, `"unterminated`, `1 2`} {
		var buf bytes.Buffer
		if err := WriteResponse(&buf, json.RawMessage(id), tok); err == nil || buf.Len() != 0 {
			t.Errorf("WriteResponse with id %s: err %v, wrote %q", id, err, buf.String())
		}
		if err := WriteErrorResponse(&buf, json.RawMessage(id), Error{Code: "internal"}); err == nil || buf.Len() != 0 {
			t.Errorf("WriteErrorResponse with id %s: err %v, wrote %q", id, err, buf.String())
		}
	}
}

// TestRequestRoundTrip reads requests, answers them, and checks each answer
// carries its request's id: what a batch script relies on.
func TestRequestRoundTrip(t *testing.T) {
	input := `{"id":"b","profile":"x"}` + "\n" + `{"id":2,"bogus":1}` + "\n" + `{"id":-3.5}` + "\n"
	rr := NewRequestReader(strings.NewReader(input))
	var out bytes.Buffer
	for {
		req, err := rr.Next()
		if err == io.EOF {
			break
		}
		var re *RequestError
		if errors.As(err, &re) {
			if err := WriteErrorResponse(&out, re.ID, Error{Code: "bad_input", Message: re.Err.Error()}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteResponse(&out, req.ID, Token{AccessToken: "t", ExpiresOn: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var a struct {
			ID    json.RawMessage `json:"id"`
			Error *Error          `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("answer %q: %v", line, err)
		}
		ids = append(ids, string(a.ID)+map[bool]string{true: "!", false: ""}[a.Error != nil])
	}
	if got, want := strings.Join(ids, " "), `"b" 2! -3.5`; got != want {
		t.Errorf("answer ids %s, want %s", got, want)
	}
}

// BenchmarkReadRequest reads a typical request line.
func BenchmarkReadRequest(b *testing.B) {
	line := []byte(`{"id":"customer-42","profile":"contoso","tenant":"fabrikam.onmicrosoft.com","scopes":["https://api.partnercenter.microsoft.com/user_impersonation"],"min_validity_seconds":300}` + "\n")
	rr := NewRequestReader(&repeat{line: line})
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := rr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// repeat yields line over and over.
type repeat struct {
	line []byte
	off  int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}
