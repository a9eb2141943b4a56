package consent

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pageStyle is the pages' only style; the Content-Security-Policy allows it by hash
// and nothing else. Text is #1a1a1a on white (contrast 17:1); the accent colours
// (#0b6e2e, #a4001d, #4a4a4a) pass WCAG AA for large text and the border they colour
// is decoration, never the only sign of the outcome: the heading says it in words.
const pageStyle = `html{background:#fff;color:#1a1a1a}` +
	`body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;font-size:1.05rem;line-height:1.5;max-width:38em;margin:2em auto;padding:0 1em}` +
	`main{border-left:.4em solid #4a4a4a;padding:.2em 0 .2em 1.2em}` +
	`main.ok{border-color:#0b6e2e}main.failed{border-color:#a4001d}` +
	`.product{margin:0;color:#4a4a4a;font-size:.9rem;letter-spacing:.04em;text-transform:uppercase}` +
	`h1{font-size:1.7rem;line-height:1.25;margin:.2em 0 .6em}` +
	`main.ok h1{color:#0b6e2e}main.failed h1{color:#a4001d}` +
	`h2{font-size:1.05rem;margin:1.4em 0 .3em}` +
	`pre,.detail{white-space:pre-wrap;overflow-wrap:anywhere;background:#f2f2f2;border-radius:.3em;padding:.6em 1em;margin:.3em 0}` +
	`pre{font-size:.95rem}` +
	`.close{color:#4a4a4a;margin-top:1.6em}`

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{{.Title}} - pctoken-helper</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main class="{{.Tone}}">
<p class="product">pctoken-helper</p>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{with .Detail}}<h2>What happened</h2>
<p class="detail">{{.}}</p>
{{end}}{{with .Remedy}}<h2>What to do</h2>
<p>Run this in the terminal:</p>
<pre><code>{{.}}</code></pre>
{{end}}{{with .Link}}<p><a href="{{.}}">Show the result</a></p>
{{end}}{{with .Close}}<p class="close">{{.}}</p>
{{end}}</main>
</body>
</html>
`))

var contentSecurityPolicy = func() string {
	sum := sha256.Sum256([]byte(pageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// page is what the browser shows. Detail and Remedy carry text from outside or from
// an error, bounded and cleaned by cleanText and escaped like every field by
// html/template.
type page struct {
	Tone           string // "ok", "failed" or "" (neutral)
	Title, Message string
	Detail, Remedy string
	Link           string // a same-origin path to follow, for the 303's body
	Close          string // the closing line
}

func (p page) with(detail string) page { p.Detail = printable(detail); return p }

const closeTab = "You can close this tab and return to the terminal."

var (
	pageSignedIn = page{Tone: "ok", Title: "Signed in",
		Message: "pctoken-helper is saving this sign-in, so that scripts and tools can get tokens without asking you again; the terminal shows a summary.",
		Close:   closeTab}
	pageFailed = page{Tone: "failed", Title: "Sign-in failed",
		Message: "The sign-in did not complete, so nothing was saved.",
		Close:   "You can close this tab; the terminal shows the same message."}
	pagePending = page{Title: "Finishing sign-in",
		Message: "pctoken-helper received the sign-in response and is still completing it; the terminal shows the result.",
		Close:   closeTab}
	pageMoved = page{Title: "Sign-in received",
		Message: "pctoken-helper received the sign-in response.",
		Link:    DonePath}
	pageNotYet = page{Title: "No sign-in yet",
		Message: "pctoken-helper has not received a sign-in response yet. Finish the sign-in in the tab the terminal opened."}
	pageRefused = page{Title: "Request refused",
		Message: "This request is not the sign-in response pctoken-helper is waiting for, so it was ignored. If you started the sign-in more than once, finish it in the newest browser tab."}
	pageWrongHost = page{Title: "Request refused",
		Message: "This request was not addressed to localhost, so it was ignored."}
	pageMalformed = page{Title: "Request refused",
		Message: "This request is not a sign-in response, so it was ignored."}
	pageNotFound = page{Title: "Not found",
		Message: "There is nothing here."}
)

// outcomePage is the result page for what the caller reported with Finish.
func outcomePage(o Outcome) page {
	if o.Err == nil {
		p := pageSignedIn
		if o.Account != "" {
			p.Message = "You are signed in as " + printable(o.Account) + ". " + p.Message
		}
		return p
	}
	// The heading already says the sign-in failed.
	msg := strings.TrimPrefix(o.Err.Error(), "sign-in failed: ")
	if r, size := utf8.DecodeRuneInString(msg); r != utf8.RuneError {
		msg = string(unicode.ToUpper(r)) + msg[size:]
	}
	p := pageFailed.with(msg)
	p.Remedy = printable(o.Remedy)
	return p
}

// setPageHeaders keeps every answer out of caches and history and lets the page load
// nothing but its own style.
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
