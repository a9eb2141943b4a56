package keyvault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/pctoken/pctoken-helper/failure"
	"github.com/pctoken/pctoken-helper/securestore"
)

// DefaultRotateAfter is how old the vault's version may get before a refresh writes
// its rotated token back. A week is CIPP's schedule: 52 versions a year, so ten years
// before one secret reaches the 500 versions beyond which Key Vault cannot back it up,
// and a fleet of any size causes about one create a week against a limit of 300 per
// 10 s; the vault's token is then never more than about 8 days into its 90-day
// lifetime while anything refreshes (renew keeps it alive when nothing does).
const DefaultRotateAfter = 7 * 24 * time.Hour

// DefaultKeep is how many enabled versions a write leaves; older ones are disabled.
// Their tokens stay valid at Entra until they expire; disabling only keeps readers
// on the newest and lists short.
const DefaultKeep = 3

// Tags the helper writes on each version. Tags of other tools are carried over.
const (
	TagPrefix    = "pctoken-"
	TagWrittenAt = "pctoken-written-at" // RFC 3339, when this version's token was received
	TagWriter    = "pctoken-writer"     // host name of the machine that wrote it
	TagReason    = "pctoken-reason"     // consent, import, renew or rotate
	TagClientID  = "pctoken-client-id"  // the app the token belongs to
	TagTenant    = "pctoken-home-tenant"
)

// maxTags is Key Vault's limit of tags per secret.
const maxTags = 15

// Options configure a Store.
type Options struct {
	Secret SecretID
	// Credential reaches the vault (NewCredential, usually in a CachedCredential).
	Credential azcore.TokenCredential
	// AuthName is the --keyvault-auth method, for messages.
	AuthName string
	// RefreshKey is the securestore key this store answers for; other keys (a client
	// secret) are not kept in the vault.
	RefreshKey string
	// RotateAfter: see DefaultRotateAfter; 0 means that.
	RotateAfter time.Duration
	// Keep: see DefaultKeep; 0 means that, negative disables nothing.
	Keep int
	// ClientID and HomeTenant are written in tags.
	ClientID, HomeTenant string
	// Writer names this machine in tags; the host name if empty.
	Writer string
	// Timeout bounds an operation called without a context (Get, Set); 30 s if 0.
	Timeout time.Duration
	// Logf receives diagnostics (never a token).
	Logf func(format string, args ...any)
	// Jitter returns a number in [0, 1); math/rand if nil.
	Jitter func() float64
	// Lock, if set, is held around the reread and the write of a rotation, so that the
	// processes of one machine write at most once for one overdue version (the cache's
	// cross-process lock). Without it only the reread guards.
	Lock func(ctx context.Context) (unlock func(), err error)
	// WriteSpread is the longest random pause before a rotation's reread, so that
	// machines finding the same version overdue at once do not all write: the first
	// to wake writes, the others reread its version. 2 s if 0; negative: none.
	WriteSpread time.Duration
	// Transport replaces the HTTP client; nil is the pinned, redirect-free default.
	// The pin (https to the secret's host only) applies either way.
	Transport *http.Client
}

// Store is the refresh token of one profile in one Key Vault secret. It implements
// securestore.Store, plus the context-taking calls the token chain prefers.
type Store struct {
	opts   Options
	client *azsecrets.Client

	// margin is this process's random share of up to an eighth of RotateAfter, drawn
	// once, so that machines become due at different times.
	margin time.Duration

	mu   sync.Mutex
	seen *version // the version Get returned last
}

// version is what a read learned about the latest version.
type version struct {
	id          string
	created     time.Time
	age         time.Duration // at readAt, by the vault's clock
	readAt      time.Time     // local, monotonic
	tags        map[string]*string
	contentType *string
	value       string
}

// ErrNotInVault: the key is not one the vault keeps (a client secret).
var ErrNotInVault = errors.New("the Key Vault store keeps only the refresh token: give the client secret with PCTOKEN_CLIENT_SECRET or use --client-certificate")

// New opens the store; it makes no request.
func New(o Options) (*Store, error) {
	if o.RotateAfter == 0 {
		o.RotateAfter = DefaultRotateAfter
	}
	if o.Keep == 0 {
		o.Keep = DefaultKeep
	}
	if o.WriteSpread == 0 {
		o.WriteSpread = 2 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Writer == "" {
		o.Writer = hostname()
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	hc := o.Transport
	if hc == nil {
		hc = noRedirectClient(nil)
	}
	// Pin whatever client is used: the refresh token goes to the vault host only.
	pinnedClient := &http.Client{Transport: pinned{allow: onlyVault(o.Secret.Host), next: transportOf(hc)}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cred := o.Credential
	if _, cached := cred.(*CachedCredential); !cached {
		cred = markCredential{cred}
	}
	c, err := azsecrets.NewClient(o.Secret.VaultURL(), cred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: pinnedClient,
		Retry: policy.RetryOptions{
			MaxRetries:    3,
			RetryDelay:    500 * time.Millisecond,
			MaxRetryDelay: 10 * time.Second, // a longer Retry-After ends the call: transient
			TryTimeout:    15 * time.Second,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "pctoken-helper"},
		Logging:   policy.LogOptions{IncludeBody: false},
	}})
	if err != nil {
		return nil, fmt.Errorf("failed to open Key Vault client: %w", err)
	}
	return &Store{opts: o, client: c, margin: time.Duration(o.Jitter() * float64(o.RotateAfter/8))}, nil
}

// retryRefused runs call, and once more if the vault refused (401) an access token
// the cache served: the vault may reject a token before its expiry (revoked, a clock
// that disagrees). On the second call azcore sends the refused token once more, gets
// the vault's challenge again, and asks the credential, which now goes past the cache.
func (s *Store) retryRefused(call func() error) error {
	err := call()
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusUnauthorized {
		if cc, ok := s.opts.Credential.(*CachedCredential); ok && cc.Forget() {
			s.logf("key vault: the vault refused the cached access token; getting a new one")
			err = call()
		}
	}
	return err
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

func (s *Store) authName() string {
	if s.opts.AuthName == "" {
		return "default"
	}
	return s.opts.AuthName
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Store) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// Get is GetContext bounded by Options.Timeout.
func (s *Store) Get(key string) (string, error) {
	ctx, cancel := s.bounded()
	defer cancel()
	return s.GetContext(ctx, key)
}

// GetContext reads the latest version of the secret: the refresh token, as it is.
func (s *Store) GetContext(ctx context.Context, key string) (string, error) {
	if key != s.opts.RefreshKey {
		return "", securestore.ErrNotFound
	}
	v, err := s.read(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.seen = v
	s.mu.Unlock()
	return v.value, nil
}

func (s *Store) read(ctx context.Context) (*version, error) {
	var raw *http.Response
	var resp azsecrets.GetSecretResponse
	err := s.retryRefused(func() (err error) {
		resp, err = s.client.GetSecret(runtime.WithCaptureResponse(ctx, &raw), s.opts.Secret.Name, "", nil)
		return err
	})
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound && s.isDeleted(ctx) {
			return nil, s.deletedError(opRead, err)
		}
		return nil, s.classify(opRead, err)
	}
	v := &version{readAt: time.Now(), tags: resp.Tags, contentType: resp.ContentType}
	if resp.Value != nil {
		v.value = strings.TrimSpace(*resp.Value)
	}
	if resp.ID != nil {
		v.id = resp.ID.Version()
	}
	if a := resp.Attributes; a != nil && a.Created != nil {
		v.created = *a.Created
		v.age = serverNow(raw).Sub(v.created)
	}
	s.logf("key vault: read version %s of %s (written %s ago)", short(v.id), s.opts.Secret, v.age.Round(time.Second))
	if v.value == "" {
		return nil, &failure.Error{Kind: failure.Configuration,
			Message: fmt.Sprintf("secret %s is empty", s.opts.Secret),
			Remedy:  fmt.Sprintf("put a refresh token there: pctoken-helper consent --store azure-keyvault --keyvault-secret %s", s.opts.Secret)}
	}
	return v, nil
}

// serverNow is the vault's clock from the answer's Date header, so that a version's
// age does not depend on this machine's clock; the local clock if there is none.
func serverNow(r *http.Response) time.Time {
	if r != nil {
		if t, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now()
}

func (s *Store) isDeleted(ctx context.Context) bool {
	_, err := s.client.GetDeletedSecret(ctx, s.opts.Secret.Name, nil)
	return err == nil
}

// Set writes value as a new version, whatever the vault holds: consent and import
// use it, and mean it.
func (s *Store) Set(key, value string) error {
	ctx, cancel := s.bounded()
	defer cancel()
	if key != s.opts.RefreshKey {
		return ErrNotInVault
	}
	return s.write(ctx, value, "set")
}

// SaveRotated is the token chain's save of a rotated refresh token. It writes only
// when the version this process read is older than RotateAfter plus a jitter of up to
// an eighth of it, and, reading again first, only if nobody wrote since: Entra keeps
// every rotated token valid, so the vault's version stays good and a write is only
// needed to keep its 90-day lifetime far away. A context marked with
// securestore.WithWriteRequired (renew) always writes.
func (s *Store) SaveRotated(ctx context.Context, key, value string) error {
	if key != s.opts.RefreshKey {
		return ErrNotInVault
	}
	if securestore.WriteRequired(ctx) {
		return s.write(ctx, value, "renew")
	}
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	if seen == nil {
		return s.write(ctx, value, "rotate")
	}
	age := seen.age + time.Since(seen.readAt)
	due := s.opts.RotateAfter + s.margin
	if age < due {
		s.logf("key vault: kept the rotated token in this process only: the vault's version is %s old, written back after %s", age.Round(time.Second), due.Round(time.Second))
		return nil
	}
	if s.opts.WriteSpread > 0 {
		select {
		case <-time.After(time.Duration(s.opts.Jitter() * float64(s.opts.WriteSpread))):
		case <-ctx.Done():
			return nil // the process is out of time; the vault's version stays good
		}
	}
	if s.opts.Lock != nil {
		unlock, err := s.opts.Lock(ctx)
		if err != nil {
			return nil // another process of this machine is writing this rotation
		}
		defer unlock()
	}
	cur, err := s.read(ctx)
	if err != nil {
		return err
	}
	if cur.id != seen.id {
		s.logf("key vault: another machine wrote version %s meanwhile; not writing", short(cur.id))
		s.mu.Lock()
		s.seen = cur
		s.mu.Unlock()
		return nil
	}
	return s.write(ctx, value, "rotate")
}

// write creates a version holding value, with the helper's tags and the foreign tags
// of the version read, then disables versions beyond the newest Keep.
func (s *Store) write(ctx context.Context, value, reason string) error {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	tags := map[string]*string{}
	var contentType *string
	if seen != nil {
		contentType = seen.contentType
		for k, v := range seen.tags {
			if !strings.HasPrefix(k, TagPrefix) && len(tags) < maxTags-5 {
				tags[k] = v
			}
		}
	}
	now := time.Now().UTC()
	set := func(k, v string) {
		if v != "" {
			v = clean(v)
			if len(v) > 256 {
				v = v[:256]
			}
			tags[k] = &v
		}
	}
	set(TagWrittenAt, now.Format(time.RFC3339))
	set(TagWriter, s.opts.Writer)
	set(TagReason, reason)
	set(TagClientID, s.opts.ClientID)
	set(TagTenant, s.opts.HomeTenant)
	var raw *http.Response
	var resp azsecrets.SetSecretResponse
	err := s.retryRefused(func() (err error) {
		resp, err = s.client.SetSecret(runtime.WithCaptureResponse(ctx, &raw), s.opts.Secret.Name, azsecrets.SetSecretParameters{
			Value: &value, Tags: tags, ContentType: contentType,
		}, nil)
		return err
	})
	if err != nil {
		return s.classify(opWrite, err)
	}
	v := &version{readAt: time.Now(), tags: tags, contentType: contentType, value: value}
	if resp.ID != nil {
		v.id = resp.ID.Version()
	}
	if a := resp.Attributes; a != nil && a.Created != nil {
		v.created = *a.Created
		v.age = serverNow(raw).Sub(v.created)
	}
	s.mu.Lock()
	s.seen = v
	s.mu.Unlock()
	s.logf("key vault: wrote version %s of %s (%s)", short(v.id), s.opts.Secret, reason)
	if s.opts.Keep > 0 {
		if err := s.prune(ctx); err != nil {
			s.logf("key vault: could not disable old versions: %v", err)
		}
	}
	return nil
}

// prune disables enabled versions beyond the newest Keep, by creation time.
func (s *Store) prune(ctx context.Context) error {
	var enabled []*azsecrets.SecretProperties
	pager := s.client.NewListSecretPropertiesVersionsPager(s.opts.Secret.Name, nil)
	for pages := 0; pager.More() && pages < 40; pages++ {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return s.classify(opList, err)
		}
		for _, p := range page.Value {
			if p != nil && p.ID != nil && p.Attributes != nil && p.Attributes.Created != nil && (p.Attributes.Enabled == nil || *p.Attributes.Enabled) {
				enabled = append(enabled, p)
			}
		}
	}
	if len(enabled) <= s.opts.Keep {
		return nil
	}
	sort.Slice(enabled, func(i, j int) bool { return enabled[i].Attributes.Created.After(*enabled[j].Attributes.Created) })
	off := false
	for _, p := range enabled[s.opts.Keep:] {
		if _, err := s.client.UpdateSecretProperties(ctx, s.opts.Secret.Name, p.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: &off},
		}, nil); err != nil {
			return s.classify(opUpdate, err)
		}
	}
	return nil
}

// Remove leaves the vault untouched: logout forgets the local state of a profile, and
// the secret serves other machines. Delete removes it.
func (s *Store) Remove(key string) error { return nil }

// Delete deletes the secret (Key Vault keeps it recoverable for its retention period).
func (s *Store) Delete(ctx context.Context) error {
	if _, err := s.client.DeleteSecret(ctx, s.opts.Secret.Name, nil); err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return nil
		}
		return s.classify(opDelete, err)
	}
	return nil
}

// Info is what status shows of the secret: never its value.
type Info struct {
	Secret    string            `json:"secret"`
	Version   string            `json:"version"`
	Created   time.Time         `json:"created"`
	WrittenBy string            `json:"written_by,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	DaysLeft  int               `json:"days_left"`
	Tags      map[string]string `json:"-"`
}

// Describe reads the latest version's metadata.
func (s *Store) Describe(ctx context.Context) (Info, error) {
	v, err := s.read(ctx)
	if err != nil {
		return Info{}, err
	}
	in := Info{Secret: s.opts.Secret.String(), Version: v.id, Created: v.created.UTC(), Tags: map[string]string{}}
	for k, p := range v.tags {
		if p != nil {
			in.Tags[k] = clean(*p)
		}
	}
	in.WrittenBy, in.Reason = in.Tags[TagWriter], in.Tags[TagReason]
	const day = 24 * time.Hour
	left := 90*day - v.age
	in.DaysLeft = int((left + day - 1) / day)
	if left <= 0 {
		in.DaysLeft = int(left / day)
	}
	return in, nil
}

func short(version string) string {
	if len(version) > 8 {
		return version[:8]
	}
	return version
}
