package consent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
)

// pageStyle is the pages' only style; the Content-Security-Policy allows it by hash
// and nothing else.
const pageStyle = `body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;line-height:1.5}pre{white-space:pre-wrap;background:#f4f4f4;padding:1em}`

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{with .Detail}}<pre>{{.}}</pre>
{{end}}</body>
</html>
`))

var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// page is what the browser shows; Detail carries text from the request and is
// escaped like every field by html/template.
type page struct{ Title, Message, Detail string }

func (p page) with(detail string) page { p.Detail = detail; return p }

var (
	pageSignedIn = page{Title: "Signed in",
		Message: "pctoken-helper received the sign-in response. You can close this window and return to the terminal."}
	pageFailed = page{Title: "Sign-in failed",
		Message: "The identity provider did not grant access. You can close this window; the terminal says what to do next."}
	pageRefused = page{Title: "Request refused",
		Message: "This request is not the sign-in response pctoken-helper is waiting for, so it was ignored. If you started the sign-in more than once, finish it in the newest browser tab."}
	pageWrongHost = page{Title: "Request refused",
		Message: "This request was not addressed to localhost, so it was ignored."}
	pageMalformed = page{Title: "Request refused",
		Message: "This request is not a sign-in response, so it was ignored."}
	pageNotFound = page{Title: "Not found",
		Message: "There is nothing here."}
	pageAlreadyDone = page{Title: "Already signed in",
		Message: "pctoken-helper has already received a sign-in response. You can close this window."}
)

// setPageHeaders keeps every answer out of caches and history (the URL carries the
// code) and lets the page load nothing but its own style.
func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

func writePage(w http.ResponseWriter, status int, p page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		// The template and its fields are ours and strings; this cannot fail in practice.
		http.Error(w, p.Title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
