package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// MaxLineBytes bounds one --request line, its "\n" excluded. A longer line is
// an error for that line alone; reading goes on with the next one.
const MaxLineBytes = 64 << 10

// maxMinValiditySeconds keeps min_validity_seconds inside time.Duration.
const maxMinValiditySeconds = math.MaxInt64 / int64(time.Second)

// ErrLineTooLong is the Err of a RequestError for a line over MaxLineBytes.
var ErrLineTooLong = fmt.Errorf("line longer than %d bytes", MaxLineBytes)

// utf8BOM is skipped at the very start of the input: Windows PowerShell's
// `Out-File -Encoding utf8` writes one.
var utf8BOM = []byte("\xef\xbb\xbf")

// Request is one --request line, as written: defaults and aliases are applied
// elsewhere.
type Request struct {
	// ID is echoed back verbatim: a JSON string or number, or nil when the
	// request had none (answered as null).
	ID           json.RawMessage
	Profile      string
	Tenant       string
	Scopes       []string
	MinValidity  *time.Duration // nil when min_validity_seconds is absent
	ForceRefresh bool
}

// RequestError reports a malformed line. The caller answers it with
// WriteErrorResponse(w, e.ID, ...) and reads on.
type RequestError struct {
	Line int             // 1-based, blank lines counted
	ID   json.RawMessage // the line's id when it could be read, else nil
	Err  error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("request on line %d: %v", e.Line, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// RequestReader reads newline-delimited JSON requests. Its memory is bounded by
// MaxLineBytes whatever the input.
type RequestReader struct {
	br   *bufio.Reader
	line int
}

// NewRequestReader reads requests from r.
func NewRequestReader(r io.Reader) *RequestReader {
	// One byte more than a line so that a full line and its "\n" fit.
	return &RequestReader{br: bufio.NewReaderSize(r, MaxLineBytes+1)}
}

// Next returns the next request, or io.EOF after the last one. A malformed line
// yields a *RequestError and the reader stays usable; any other error comes
// from the underlying reader and ends the stream. Blank lines are skipped.
func (rr *RequestReader) Next() (Request, error) {
	for {
		line, err := rr.readLine()
		if err != nil {
			return Request{}, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		req, err := parseRequest(line)
		if err != nil {
			return Request{}, &RequestError{Line: rr.line, ID: req.ID, Err: err}
		}
		return req, nil
	}
}

// readLine returns the next line without its terminator. The slice is valid
// until the next call.
func (rr *RequestReader) readLine() ([]byte, error) {
	line, err := rr.br.ReadSlice('\n')
	if len(line) == 0 && err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read request line %d: %w", rr.line+1, err)
	}
	rr.line++
	if errors.Is(err, bufio.ErrBufferFull) {
		// Skip the rest of the line without keeping it.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = rr.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read request line %d: %w", rr.line, err)
		}
		return nil, &RequestError{Line: rr.line, Err: ErrLineTooLong}
	}
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read request line %d: %w", rr.line, err)
	}
	if rr.line == 1 {
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	return bytes.TrimSuffix(line, []byte("\n")), nil
}

// requestFields are the keys a request may have. Keys match exactly (unlike
// encoding/json's case-insensitive matching), so "Scopes" or "scope" is
// reported instead of silently ignored.
var requestFields = []string{"id", "profile", "tenant", "scopes", "min_validity_seconds", "force_refresh"}

// parseRequest decodes one line. On error the returned Request still carries
// the id when it was readable, so the error answer can be matched.
func parseRequest(line []byte) (Request, error) {
	var fields map[string]json.RawMessage
	err := json.Unmarshal(line, &fields)
	if syntax := (*json.SyntaxError)(nil); errors.As(err, &syntax) {
		return Request{}, fmt.Errorf("invalid JSON: %v (byte %d)", syntax, syntax.Offset)
	}
	if err != nil || fields == nil {
		return Request{}, errors.New("not a JSON object")
	}
	var req Request
	if raw, ok := fields["id"]; ok && !isNull(raw) {
		if err := checkID(raw); err != nil {
			return req, err
		}
		req.ID = raw
	}
	if err := checkKeys(fields, requestFields); err != nil {
		return req, err
	}
	if err := decodeString(fields, "profile", &req.Profile); err != nil {
		return req, err
	}
	if err := decodeString(fields, "tenant", &req.Tenant); err != nil {
		return req, err
	}
	if raw, ok := fields["scopes"]; ok && !isNull(raw) {
		scopes, err := decodeScopes(raw)
		if err != nil {
			return req, err
		}
		req.Scopes = scopes
	}
	if raw, ok := fields["min_validity_seconds"]; ok && !isNull(raw) {
		var secs float64
		if json.Unmarshal(raw, &secs) != nil || secs < 0 || secs > float64(maxMinValiditySeconds) {
			return req, fmt.Errorf(`"min_validity_seconds" must be a number from 0 to %d`, maxMinValiditySeconds)
		}
		d := time.Duration(secs * float64(time.Second))
		req.MinValidity = &d
	}
	if raw, ok := fields["force_refresh"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &req.ForceRefresh) != nil {
			return req, errors.New(`"force_refresh" must be true or false`)
		}
	}
	return req, nil
}

// checkKeys reports the first unknown key in sorted order, so the message does
// not depend on map iteration.
func checkKeys(fields map[string]json.RawMessage, known []string) error {
	var unknown []string
	for k := range fields {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("unknown field %q (known: %s)", unknown[0], strings.Join(known, ", "))
}

func decodeString(fields map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := fields[key]
	if !ok || isNull(raw) {
		return nil
	}
	if json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("%q must be a string", key)
	}
	return nil
}

// decodeScopes accepts an array of scope strings; an empty array reads as
// none (nil). An empty scope or one with a space is refused: the identity
// provider gets scopes joined with spaces, so it would be mangled on the way.
func decodeScopes(raw json.RawMessage) ([]string, error) {
	var scopes []*string
	if json.Unmarshal(raw, &scopes) != nil {
		return nil, errors.New(`"scopes" must be an array of strings`)
	}
	if len(scopes) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if s == nil {
			return nil, errors.New(`"scopes" must be an array of strings`)
		}
		if err := checkScope(*s); err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, nil
}

func checkScope(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	if strings.ContainsFunc(s, isSpaceOrControl) {
		return fmt.Errorf("scope %q contains a space or control character", s)
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// checkID accepts the JSON scalars an id may be: a string or a number.
func checkID(raw json.RawMessage) error {
	if len(raw) > 0 {
		switch c := raw[0]; {
		case c == '"', c == '-', '0' <= c && c <= '9':
			if json.Valid(raw) {
				return nil
			}
		}
	}
	return errors.New(`"id" must be a string or a number`)
}

// responseJSON puts "id" first, then the `json` shape.
type responseJSON struct {
	ID json.RawMessage `json:"id"`
	tokenJSON
}

type errorResponseJSON struct {
	ID    json.RawMessage `json:"id"`
	Error Error           `json:"error"`
}

// WriteResponse answers one request with the `json` shape, "id" first.
func WriteResponse(w io.Writer, id json.RawMessage, t Token) error {
	id, err := answerID(id)
	if err != nil {
		return err
	}
	v, err := newTokenJSON(t)
	if err != nil {
		return err
	}
	return writeJSONLine(w, responseJSON{ID: id, tokenJSON: v})
}

// WriteErrorResponse answers one request with {"id":...,"error":{...}}.
func WriteErrorResponse(w io.Writer, id json.RawMessage, e Error) error {
	id, err := answerID(id)
	if err != nil {
		return err
	}
	return writeJSONLine(w, errorResponseJSON{ID: id, Error: e})
}

func answerID(id json.RawMessage) (json.RawMessage, error) {
	if len(id) == 0 || isNull(id) {
		return json.RawMessage("null"), nil
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	return id, nil
}
