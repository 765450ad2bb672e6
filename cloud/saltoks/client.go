// Package saltoks is a client for the Salto KS Connect API: OAuth2 tokens from
// the identity server, typed calls for sites, locks, access groups, users,
// guests and PINs, paging, error mapping and retries.
package saltoks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portier-io/portier/agent"
)

// Grant is the OAuth2 grant the client authenticates with.
type Grant string

// Supported grants. Password (a dedicated Salto system user) is what headless
// Connect API integrations use; refresh_token comes from a one-time
// authorization-code login; client_credentials is for clients Salto set up so.
const (
	GrantPassword          Grant = "password"
	GrantRefreshToken      Grant = "refresh_token"
	GrantClientCredentials Grant = "client_credentials"
)

// DefaultScope is the Connect API scope.
const DefaultScope = "user_api.full_access"

// Config configures a Client. Secrets (ClientSecret, Password, RefreshToken)
// are never logged.
type Config struct {
	IdentityURL  string // e.g. https://identity.eu.my-clay.com (token at /connect/token)
	APIURL       string // e.g. https://connect.my-clay.com
	ClientID     string
	ClientSecret string
	Grant        Grant
	Username     string // password grant
	Password     string // password grant
	RefreshToken string // refresh_token grant
	Scope        string // default user_api.full_access (none for refresh_token)
	// OnRefreshToken receives a new refresh token when the identity server
	// rotates it, so the caller can persist it.
	OnRefreshToken func(token string)

	HTTPClient     *http.Client
	RequestTimeout time.Duration // per attempt; default 30 s
	MaxAttempts    int           // per request; default 5
	BackoffBase    time.Duration // default 500 ms
	BackoffMax     time.Duration // default 30 s
	MaxRetryAfter  time.Duration // longest Retry-After honoured; default 5 min
	TokenLeeway    time.Duration // refresh this long before expiry; default 60 s
	PageSize       int           // $top; default 500
	Version        string        // API version path prefix; default v1.2
	// MaxInFlight bounds the requests this client has open at once (every
	// attempt of every call: sync, access codes); default 16. Salto
	// publishes no rate limit; see docs/saltoks.md for the choice.
	MaxInFlight int

	Logger *slog.Logger
	Now    func() time.Time
	// Sleep waits d or until ctx is done; tests replace it so nothing sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, d]; tests make it deterministic.
	Jitter func(d time.Duration) time.Duration
}

// Client talks to one Salto KS Connect API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
	log  *slog.Logger

	inflight chan struct{} // one token per request open
	mu       sync.Mutex
	token    string
	expiry   time.Time
	refresh  string
	fetches  int
	lastAuth time.Time
}

// New checks cfg and returns a client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	if err := CheckAPIURL(cfg.APIURL); err != nil {
		return nil, fmt.Errorf("saltoks: api_url: %w", err)
	}
	if err := CheckIdentityURL(cfg.IdentityURL); err != nil {
		return nil, fmt.Errorf("saltoks: identity_url: %w", err)
	}
	base, _ := url.Parse(strings.TrimRight(cfg.APIURL, "/"))
	if cfg.ClientID == "" {
		return nil, errors.New("saltoks: client_id is required")
	}
	switch cfg.Grant {
	case "", GrantPassword:
		cfg.Grant = GrantPassword
		if cfg.Username == "" || cfg.Password == "" {
			return nil, errors.New("saltoks: the password grant needs a username and a password")
		}
	case GrantRefreshToken:
		if cfg.RefreshToken == "" {
			return nil, errors.New("saltoks: the refresh_token grant needs a refresh token")
		}
	case GrantClientCredentials:
		if cfg.ClientSecret == "" {
			return nil, errors.New("saltoks: the client_credentials grant needs a client secret")
		}
	default:
		return nil, fmt.Errorf("saltoks: grant %q is not password, refresh_token or client_credentials", cfg.Grant)
	}
	if cfg.Scope == "" && cfg.Grant != GrantRefreshToken {
		cfg.Scope = DefaultScope
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.HTTPClient == nil {
		// Keep a connection per request in flight: Go's default keeps 2 idle
		// per host, and at internet distance every new TLS connection costs
		// several round trips.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxInFlight
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RequestTimeout, 30*time.Second)
	def(&cfg.BackoffBase, 500*time.Millisecond)
	def(&cfg.BackoffMax, 30*time.Second)
	def(&cfg.MaxRetryAfter, 5*time.Minute)
	def(&cfg.TokenLeeway, 60*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.PageSize < 2 {
		cfg.PageSize = 2 // paging overlaps one item per page
	}
	if cfg.Version == "" {
		cfg.Version = "v1.2"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { return agent.Sleep(ctx, agent.SystemClock{}, d) }
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d + 1)
		}
	}
	return &Client{cfg: cfg, base: base, http: cfg.HTTPClient, log: cfg.Logger, refresh: cfg.RefreshToken,
		inflight: make(chan struct{}, cfg.MaxInFlight)}, nil
}

// DefaultMaxInFlight is the default bound on requests open at once. A full
// sync of a 100,000-user, 1,000-group site is about 3,100 requests; at 100 ms
// each, 16 in flight bring it to about 20 s, where 8 would need 40 s.
const DefaultMaxInFlight = 16

// MaxInFlight is the bound on requests open at once (for callers that size
// their own parallelism to it).
func (c *Client) MaxInFlight() int { return c.cfg.MaxInFlight }

// TokenFetches counts tokens obtained from the identity server (for tests and
// diagnostics).
func (c *Client) TokenFetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// accessToken returns a cached token valid for at least the leeway, or fetches
// one. force fetches a new one unless the cached token already differs from
// stale (another request refreshed it meanwhile).
func (c *Client) accessToken(ctx context.Context, force bool, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.token != "" && !force && now.Before(c.expiry.Add(-c.cfg.TokenLeeway)) {
		return c.token, nil
	}
	if force && c.token != "" && c.token != stale {
		return c.token, nil
	}
	var err error
	retry := c.backoff()
	for attempt := 1; ; attempt++ {
		err = c.fetchToken(ctx)
		if err == nil || !Retryable(err) || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
			break
		}
		d := retry.Next()
		c.log.Warn("salto ks token request failed, retrying", "attempt", attempt, "in", d, "err", err)
		if serr := c.cfg.Sleep(ctx, d); serr != nil {
			return "", serr
		}
	}
	if err != nil {
		return "", err
	}
	return c.token, nil
}

func (c *Client) fetchToken(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)
	tokenURL := strings.TrimRight(c.cfg.IdentityURL, "/") + tokenPath
	var scopes []string
	if c.cfg.Scope != "" {
		scopes = strings.Fields(c.cfg.Scope)
	}
	oc := &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Scopes: scopes,
		Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader}}
	var tok *oauth2.Token
	var err error
	switch c.cfg.Grant {
	case GrantPassword:
		tok, err = oc.PasswordCredentialsToken(ctx, c.cfg.Username, c.cfg.Password)
	case GrantRefreshToken:
		tok, err = oc.TokenSource(ctx, &oauth2.Token{RefreshToken: c.refresh, Expiry: time.Unix(1, 0)}).Token()
	case GrantClientCredentials:
		cc := clientcredentials.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, TokenURL: tokenURL,
			Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
		tok, err = cc.Token(ctx)
	}
	if err != nil {
		err = tokenError(err)
		var ae *AuthError
		var te *TransportError
		switch {
		case errors.As(err, &ae):
			ae.Hint = c.hint(ae.Status, ae.Code, tokenPath)
		case errors.As(err, &te):
			te.Hint = netHint(te.Err, "salto.identity_url")
		}
		return err
	}
	if tok.AccessToken == "" {
		return &AuthError{Status: 200, Description: "the token response has no access_token"}
	}
	now := c.cfg.Now()
	life := time.Hour // Salto issues 3600 s tokens; used when expires_in is missing
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		life = time.Duration(v) * time.Second
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			life = time.Duration(n) * time.Second
		}
	}
	c.token, c.expiry, c.lastAuth = tok.AccessToken, now.Add(life), now
	c.fetches++
	if tok.RefreshToken != "" && tok.RefreshToken != c.refresh {
		c.refresh = tok.RefreshToken
		if c.cfg.OnRefreshToken != nil && c.cfg.Grant == GrantRefreshToken {
			c.cfg.OnRefreshToken(tok.RefreshToken)
		}
	}
	c.log.Debug("salto ks token obtained", "grant", string(c.cfg.Grant), "expires_in", life)
	return nil
}

func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		ae := &AuthError{Code: re.ErrorCode, Description: clip(re.ErrorDescription, 200)}
		if re.Response != nil {
			ae.Status = re.Response.StatusCode
		}
		if ae.Code == "" {
			ae.Code, ae.Description = ParseErrorBody(re.Body)
		}
		return ae
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Network failure or an unreadable token body: the identity server may
	// answer on the next try.
	return &TransportError{Method: "POST", Path: tokenPath, Err: unwrapURL(err)}
}

// unwrapURL drops url.Error's copy of the URL (the API URL is not secret, but
// messages read better without it).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff is one request's retry delays: full jitter over the doubling step,
// never less than half the base.
func (c *Client) backoff() *agent.Backoff {
	return &agent.Backoff{Min: c.cfg.BackoffBase, Max: c.cfg.BackoffMax,
		Jitter: func(step time.Duration) time.Duration { return c.cfg.BackoffBase/2 + c.cfg.Jitter(step) }}
}

// request is one API call.
type request struct {
	method string
	path   string     // below the API base, e.g. /v1.2/sites/x/users
	query  url.Values // may be nil
	body   any        // JSON-encoded when not nil
	// idempotent requests are retried on network errors and 5xx; others
	// (creating users and guests) only on 429, which the server did not act on.
	idempotent bool
	// decode, when set, reads a 2xx body inside the retry loop, so a
	// malformed answer is retried like a failed one.
	decode func(*response) error
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// maxBody bounds one response: a page of users is well below it.
const maxBody = 64 << 20

// do sends req with retries and one token refresh on 401.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	var lastErr error
	refreshed := false
	retry := c.backoff()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tok, err := c.accessToken(ctx, false, "")
		if err != nil {
			return nil, err
		}
		resp, err := c.once(ctx, req, tok)
		if err == nil && req.decode != nil {
			err = req.decode(resp)
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			if refreshed {
				return nil, &AuthError{Status: 401, Code: ae.Code, Description: "the API refused a freshly issued token: " + ae.Message}
			}
			// The token expired early or was revoked: refresh once, and do not
			// count it as an attempt.
			refreshed = true
			c.log.Info("salto ks answered 401, refreshing the token once", "path", req.path)
			if _, err := c.accessToken(ctx, true, tok); err != nil {
				return nil, err
			}
			attempt--
			continue
		}
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !c.shouldRetry(req, err) || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
			return nil, lastErr
		}
		var ra time.Duration
		if ae != nil {
			ra = ae.RetryAfter
			if ra > c.cfg.MaxRetryAfter {
				return nil, fmt.Errorf("%w (Retry-After %s is longer than we wait)", lastErr, ra)
			}
		}
		d := retry.Next()
		if ra > 0 {
			d = ra // the server's Retry-After
		}
		c.log.Warn("salto ks request failed, retrying", "method", req.method, "path", req.path, "attempt", attempt, "in", d, "err", err)
		if err := c.cfg.Sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

func (c *Client) shouldRetry(req request, err error) bool {
	if !Retryable(err) {
		return false
	}
	if req.idempotent {
		return true
	}
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests
}

// once sends one attempt with the per-request timeout, once a slot of the
// in-flight bound is free (waiting for it does not count against the
// timeout).
func (c *Client) once(ctx context.Context, req request, token string) (*response, error) {
	select {
	case c.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.inflight }()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + req.path
	if req.query != nil {
		u.RawQuery = req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("salto ks: encode %s body: %w", req.path, err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("salto ks: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Accept", "application/json")
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	start := c.cfg.Now()
	res, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, &TransportError{Method: req.method, Path: req.path, Err: timeoutErr(unwrapURL(err), c.cfg.RequestTimeout), Hint: netHint(err, "salto.api_url")}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, &TransportError{Method: req.method, Path: req.path, Err: timeoutErr(fmt.Errorf("reading the body: %w", err), c.cfg.RequestTimeout)}
	}
	c.log.Debug("salto ks request", "method", req.method, "path", req.path, "status", res.StatusCode, "bytes", len(data), "took", c.cfg.Now().Sub(start))
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return &response{status: res.StatusCode, header: res.Header, body: data}, nil
	}
	ae := &APIError{Method: req.method, Path: req.path, Status: res.StatusCode}
	ae.Code, ae.Message = ParseErrorBody(data)
	ae.Hint = c.hint(ae.Status, ae.Code, req.path)
	ae.RetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), c.cfg.Now())
	return nil, ae
}

func timeoutErr(err error, limit time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no complete answer within the request timeout of %s: %w", limit, err)
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// decodeJSON decodes a 2xx body into v.
func decodeJSON(req request, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return &DecodeError{Method: req.method, Path: req.path, Err: err}
	}
	return nil
}
