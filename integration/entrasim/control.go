package entrasim

import (
	"maps"
	"net"
	"time"
)

// Defaults of the controls.
const (
	defaultLifetime = time.Hour
	// maxInactive is Entra's refresh-token inactivity limit.
	maxInactive = 90 * 24 * time.Hour
)

// controls are the knobs tests turn. Guarded by Sim.mu.
type controls struct {
	autoApprove bool
	mfaSince    time.Time // refresh tokens from sign-ins before this need MFA; zero: off
	consent     bool
	amr         []string
	lifetime    time.Duration
	latency     time.Duration
	strict      bool
	decline     bool // the user declines consent at the authorize endpoint

	// Faults for the next requests to the token endpoint, taken in this order.
	hang       int
	throttle   int
	retryAfter time.Duration
	fail       int
	failStatus int

	// resets is how many of the next connections are reset at once (TCP RST), before
	// a byte of TLS: the network failing under the client, not the server answering.
	resets int
}

func defaultControls() controls {
	return controls{autoApprove: true, amr: []string{"pwd", "mfa"}, lifetime: defaultLifetime}
}

// Stats counts what the simulator has seen since Start or ResetStats.
type Stats struct {
	// Requests by endpoint: "openid-configuration", "authorize", "devicecode", "token",
	// "discovery", "keys", "devicelogin", "logout". Every arrival counts, injected
	// faults included.
	Requests map[string]int `json:"requests"`
	// Grants counts token requests by grant_type ("authorization_code",
	// "refresh_token", "device_code", "client_credentials"), faults included.
	Grants map[string]int `json:"grants"`
	// Errors counts error answers by AADSTS code.
	Errors map[int]int `json:"errors"`
	// RefreshTokensIssued and RefreshTokensRedeemed count successful issues and
	// redemptions.
	RefreshTokensIssued   int `json:"refresh_tokens_issued"`
	RefreshTokensRedeemed int `json:"refresh_tokens_redeemed"`
	// Connections counts accepted TCP connections, ConnectionsReset those reset by
	// ResetNextConnections.
	Connections      int `json:"connections"`
	ConnectionsReset int `json:"connections_reset"`
}

func newStats() Stats {
	return Stats{Requests: map[string]int{}, Grants: map[string]int{}, Errors: map[int]int{}}
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Grants = maps.Clone(s.stats.Grants)
	st.Errors = maps.Clone(s.stats.Errors)
	return st
}

// ResetStats sets every counter to zero.
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}

// ExpireRefreshTokens makes every outstanding refresh token fail with AADSTS700082, as
// after 90 days of inactivity. Tokens issued afterwards work.
func (s *Sim) ExpireRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.rts {
		if rt.state == rtActive {
			rt.state = rtExpired
		}
	}
}

// RevokeRefreshTokens makes every outstanding refresh token fail with AADSTS50173, as
// after an admin revoked the user's sessions. Tokens issued afterwards work.
func (s *Sim) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, rt := range s.rts {
		if rt.state == rtActive {
			rt.state, rt.revokedAt = rtRevoked, now
		}
	}
}

// RequireMFA(true) makes refresh tokens from sign-ins before now fail with AADSTS50076
// (suberror basic_action), as when a policy starts demanding fresh MFA; a new
// interactive sign-in satisfies it. RequireMFA(false) lifts the requirement.
func (s *Sim) RequireMFA(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.ctl.mfaSince = s.now()
	} else {
		s.ctl.mfaSince = time.Time{}
	}
}

// RequireConsent makes refresh-token redemptions fail with AADSTS65001 (suberror
// consent_required) while on.
func (s *Sim) RequireConsent(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.consent = on
}

// DeclineConsent(true) makes the simulated user decline the consent prompt: the
// authorize endpoint sends error=access_denied (AADSTS65004) to the redirect URI, as
// Entra does when the user presses Cancel. DeclineConsent(false) restores approval.
func (s *Sim) DeclineConsent(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.decline = on
}

// SetAMR sets the amr claim of user tokens issued from now on; the default is
// ["pwd", "mfa"]. SetAMR([]string{"pwd"}) issues tokens without MFA.
func (s *Sim) SetAMR(amr []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.amr = append([]string(nil), amr...)
}

// FailNext makes the next n token requests answer status (500 if not 5xx) with an
// Entra-style error body.
func (s *Sim) FailNext(n int, status int) {
	if status < 500 || status > 599 {
		status = 500
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.fail, s.ctl.failStatus = max(n, 0), status
}

// ThrottleNext makes the next n token requests answer 429 with Retry-After in whole
// seconds (rounded up).
func (s *Sim) ThrottleNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.throttle, s.ctl.retryAfter = max(n, 0), max(retryAfter, 0)
}

// HangNext makes the next n token requests hang: the connection is accepted and never
// answered until the client gives up or the simulator closes.
func (s *Sim) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.hang = max(n, 0)
}

// SetLatency delays every token endpoint answer by d.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.latency = max(d, 0)
}

// SetTokenLifetime sets the lifetime of access and ID tokens issued from now on
// (expires_in), rounded down to whole seconds, at least one; d <= 0 restores the
// default of one hour. Over two hours, responses also carry refresh_in (half the
// lifetime), as Entra does for long-lived tokens.
func (s *Sim) SetTokenLifetime(d time.Duration) {
	switch {
	case d <= 0:
		d = defaultLifetime
	case d < time.Second:
		d = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.lifetime = d.Truncate(time.Second)
}

// SetStrictRotation(true) rejects a refresh token once it has been redeemed (including
// redemptions before the call). Real Entra keeps old refresh tokens valid, which is the
// default.
func (s *Sim) SetStrictRotation(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.strict = on
}

// ApproveDeviceCodes sets whether device codes approve themselves: on (the default),
// the first poll answers authorization_pending and the next succeeds. Off, a code waits
// for ApproveDeviceCode.
func (s *Sim) ApproveDeviceCodes(auto bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.autoApprove = auto
}

// RefreshTokenValid reports whether rt would be accepted now by the client it was issued
// to, in the home tenant. Tests use it to check that a stored token is still redeemable.
func (s *Sim) RefreshTokenValid(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.rts[rt]
	return ok && !s.ctl.consent && s.rtProblem(t, s.now(), graphResource) == nil
}

// ResetNextConnections resets the next n TCP connections as they are accepted, as a
// failing network or a middlebox would; 0 stops resetting.
func (s *Sim) ResetNextConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctl.resets = n
}

// resetListener counts connections and resets those ResetNextConnections asked for.
type resetListener struct {
	net.Listener
	s *Sim
}

func (l *resetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.s.mu.Lock()
		reset := l.s.ctl.resets > 0
		l.s.stats.Connections++
		if reset {
			l.s.ctl.resets--
			l.s.stats.ConnectionsReset++
		}
		l.s.mu.Unlock()
		if !reset {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST, not FIN
		}
		_ = c.Close()
	}
}
