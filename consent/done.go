package consent

import (
	"net/http"
	"sync"
	"time"
)

// DonePath is the clean path the browser is sent to once the sign-in response is
// taken: its address bar and history then hold no code and no state, and a reload
// shows the result again instead of sending the response a second time.
const DonePath = "/done"

// Outcome is what became of a sign-in response, for the person in the browser.
// Nothing in it may be secret: it is shown in the page.
type Outcome struct {
	// Err is nil when consent succeeded; otherwise its text says what went wrong.
	Err error
	// Account is who signed in, when known.
	Account string
	// Remedy is the command that fixes Err, when there is one.
	Remedy string
}

// flow is the state the handler and the Listener share about the one sign-in
// response: whether it was taken, and the outcome Finish reported.
type flow struct {
	mu      sync.Mutex
	taken   *result // the response Wait returned, nil before
	outcome *Outcome
	sent303 bool // the browser was sent to DonePath

	finished   chan struct{} // closed by finish
	served     chan struct{} // closed once the final page was written
	closing    chan struct{} // closed when the listener stops
	finishOnce sync.Once
	serveOnce  sync.Once
	closeOnce  sync.Once
}

func newFlow() *flow {
	return &flow{finished: make(chan struct{}), served: make(chan struct{}), closing: make(chan struct{})}
}

func (f *flow) finish(o Outcome) {
	f.finishOnce.Do(func() {
		f.mu.Lock()
		f.outcome = &o
		f.mu.Unlock()
		close(f.finished)
	})
}

func (f *flow) close() { f.closeOnce.Do(func() { close(f.closing) }) }

func (f *flow) markServed() { f.serveOnce.Do(func() { close(f.served) }) }

func (f *flow) redirected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent303
}

// take records res as the response, unless one was taken before; it reports
// whether res is the one. The browser that sent it is sent on to DonePath (seeDone),
// recorded here already, before Wait can return and Finish can ask.
func (f *flow) take(res result) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken != nil {
		return false
	}
	f.taken = &res
	f.sent303 = true
	return true
}

func (f *flow) state() (taken *result, outcome *Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taken, f.outcome
}

// seeDone answers a sign-in response (the first or a repeat of it) with a 303 to
// DonePath: the browser follows it with a GET, so the response is never re-posted.
func (f *flow) seeDone(w http.ResponseWriter) {
	f.mu.Lock()
	f.sent303 = true
	f.mu.Unlock()
	w.Header().Set("Location", DonePath)
	writePage(w, http.StatusSeeOther, pageMoved)
}

// serveDone shows the outcome: at once when Finish reported it, else after waiting
// for it (the redemption takes a round trip) at most pendingWait.
func (f *flow) serveDone(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writePage(w, http.StatusMethodNotAllowed, pageMalformed.with("method "+r.Method+" is not used for this page"))
		return
	}
	taken, _ := f.state()
	if taken == nil {
		writePage(w, http.StatusNotFound, pageNotYet)
		return
	}
	timer := time.NewTimer(pendingWait)
	defer timer.Stop()
	select {
	case <-f.finished:
	case <-f.closing:
	case <-timer.C:
	case <-r.Context().Done():
		return
	}
	taken, outcome := f.state()
	if outcome == nil {
		// Finish has not said: show what the listener itself knows.
		if taken.err != nil {
			writePage(w, http.StatusOK, pageFailed.with(taken.err.Error()))
		} else {
			writePage(w, http.StatusOK, pagePending)
		}
		return
	}
	writePage(w, http.StatusOK, outcomePage(*outcome))
	f.markServed()
}
