package saltoks_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

type harness struct {
	fake   *saltokstest.Fake
	client *saltoks.Client
	logs   *bytes.Buffer
	mu     sync.Mutex
	sleeps []time.Duration
}

func (h *harness) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// lockedBuffer lets concurrent requests log into one buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newHarness(t *testing.T, shape saltokstest.SiteShape, fopt saltokstest.Options, mod func(*saltoks.Config)) *harness {
	t.Helper()
	fake, err := saltokstest.New(saltokstest.Generate(shape), fopt)
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)
	h := &harness{fake: fake, logs: &bytes.Buffer{}}
	o := fake.Options()
	cfg := saltoks.Config{
		IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Grant: saltoks.GrantPassword, Username: o.Username, Password: o.Password,
		HTTPClient: fake.Client(), PageSize: 7, RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&lockedBuffer{b: h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    fake.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return ctx.Err()
		},
		Jitter: func(d time.Duration) time.Duration { return d / 2 },
	}
	if mod != nil {
		mod(&cfg)
	}
	h.client, err = saltoks.New(cfg)
	require.NoError(t, err)
	return h
}

var small = saltokstest.SiteShape{Users: 40, Groups: 5, Locks: 4}

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, small, saltokstest.Options{}, nil)
	c, site := h.client, saltokstest.GeneratedSiteID

	sites, err := c.Sites(ctx) // v1.2 answers a bare array
	require.NoError(t, err)
	require.Len(t, sites, 1)
	assert.Equal(t, "Europe/Berlin", sites[0].TimeZone)

	s, err := c.Site(ctx, site)
	require.NoError(t, err)
	assert.Equal(t, "DE0000000001", s.SiteUID)
	assert.Equal(t, 40, s.SubscribedUserAmount)

	locks, err := c.Locks(ctx, site)
	require.NoError(t, err)
	assert.Len(t, locks, 4)

	groups, err := c.AccessGroups(ctx, site)
	require.NoError(t, err)
	require.Len(t, groups, 5)
	assert.Equal(t, saltokstest.GroupID(0), groups[0].ID)

	gl, err := c.GroupLocks(ctx, site, saltokstest.GroupID(1))
	require.NoError(t, err)
	require.Len(t, gl, 1)
	assert.Equal(t, saltokstest.LockID(1), gl[0].ID)

	members, err := c.GroupUsers(ctx, site, saltokstest.GroupID(2))
	require.NoError(t, err)
	assert.Len(t, members, 8) // users 2, 7, 12, … over pages of 7
	assert.Contains(t, members, saltokstest.PlatformID(37))

	ts, err := c.GroupSchedules(ctx, site, saltokstest.GroupID(1))
	require.NoError(t, err)
	require.Len(t, ts, 1)
	assert.Equal(t, "07:00:00", ts[0].StartTime)
	assert.False(t, ts[0].Saturday)

	var users []saltoks.SiteUser
	require.NoError(t, c.Users(ctx, site, "", func(p []saltoks.SiteUser) error { users = append(users, p...); return nil }))
	require.Len(t, users, 40)
	assert.Equal(t, saltokstest.PlatformID(0), users[0].User.ID)
	assert.Equal(t, saltokstest.TagNumber(0), *users[0].User.TagNumber)

	one, err := c.User(ctx, site, saltokstest.UserID(3))
	require.NoError(t, err)
	assert.Equal(t, "subscribed", one.SubscriptionState)

	nu, err := c.CreateUser(ctx, site, saltoks.NewUser{FirstName: "Ada", LastName: "L", UsePIN: true})
	require.NoError(t, err)
	assert.NotEqual(t, nu.ID, nu.User.ID, "two ids")
	exp := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	g, err := c.CreateGuest(ctx, site, saltoks.NewGuest{Alias: "portier:abc", ExpiresAt: &exp})
	require.NoError(t, err)
	assert.False(t, *g.UsePIN, "guests come without PIN")
	assert.Equal(t, "2026-07-01T10:00:00Z", *g.ExpiresAt)

	var found []saltoks.SiteUser
	require.NoError(t, c.Users(ctx, site, "alias eq 'portier:abc'", func(p []saltoks.SiteUser) error { found = append(found, p...); return nil }))
	require.Len(t, found, 1)
	assert.Equal(t, g.ID, found[0].ID)

	_, err = c.GeneratePIN(ctx, site, g.ID, nil)
	var ae *saltoks.APIError
	require.ErrorAs(t, err, &ae, "PIN needs use_pin")
	assert.Equal(t, saltoks.CodeValidation, ae.Code)
	on := true
	_, err = c.UpdateUser(ctx, site, g.ID, saltoks.UserPatch{UsePIN: &on})
	require.NoError(t, err)
	pin, err := c.GeneratePIN(ctx, site, g.ID, &exp)
	require.NoError(t, err)
	assert.Len(t, pin, 6)
	assert.Equal(t, h.fake.LastPIN(g.ID), pin)

	err = c.AddGroupUser(ctx, site, saltokstest.GroupID(0), g.ID)
	assert.True(t, saltoks.IsNotFound(err), "a site-user id is not a member id: %v", err)
	require.NoError(t, c.AddGroupUser(ctx, site, saltokstest.GroupID(0), g.User.ID))
	assert.Contains(t, h.fake.GroupMembers(saltokstest.GroupID(0)), g.User.ID)
	require.NoError(t, c.RemoveGroupUser(ctx, site, saltokstest.GroupID(0), g.User.ID))
	assert.NotContains(t, h.fake.GroupMembers(saltokstest.GroupID(0)), g.User.ID)

	require.NoError(t, c.DeleteUser(ctx, site, g.ID))
	err = c.DeleteUser(ctx, site, g.ID)
	assert.True(t, saltoks.IsNotFound(err))
	assert.False(t, saltoks.Retryable(err))

	_, err = c.Site(ctx, "DE0000000001")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 400, ae.Status)
	assert.Equal(t, saltoks.CodeInvalidParameter, ae.Code)
	_, err = c.Locks(ctx, "00000000-0000-4000-8000-000000000000")
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 403, ae.Status)
	assert.Equal(t, saltoks.CodeForbidden, ae.Code)
	assert.False(t, saltoks.Retryable(err))
	_, err = c.Site(ctx, site+"/../x")
	require.Error(t, err)
	assert.Equal(t, 1, c.TokenFetches(), "one token serves every call")
}

func TestErrorCodeStringOrNumber(t *testing.T) {
	for _, numeric := range []bool{false, true} {
		h := newHarness(t, small, saltokstest.Options{NumericErrorCodes: numeric}, nil)
		_, err := h.client.User(context.Background(), saltokstest.GeneratedSiteID, "nope")
		var ae *saltoks.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "2202", ae.Code, "numeric=%v", numeric)
		assert.True(t, ae.NotFound())
	}
}

func TestPINAsText(t *testing.T) {
	h := newHarness(t, small, saltokstest.Options{PINAsText: true, PINLength: 8}, nil)
	pin, err := h.client.GeneratePIN(context.Background(), saltokstest.GeneratedSiteID, saltokstest.UserID(1), nil)
	require.NoError(t, err)
	assert.Len(t, pin, 8)
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	site := saltokstest.GeneratedSiteID
	t.Run("cached until shortly before expiry", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		_, err := h.client.Site(ctx, site)
		require.NoError(t, err)
		h.fake.Advance(saltokstest.TokenLifetime - 2*time.Minute)
		_, err = h.client.Site(ctx, site)
		require.NoError(t, err)
		assert.Equal(t, 1, h.client.TokenFetches())
		h.fake.Advance(90 * time.Second) // inside the 60 s leeway
		_, err = h.client.Site(ctx, site)
		require.NoError(t, err)
		assert.Equal(t, 2, h.client.TokenFetches())
		assert.Equal(t, 0, h.fake.Hits("GET")-3-0, "no 401 round trip")
	})
	t.Run("401 refreshes exactly once and retries", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		_, err := h.client.Site(ctx, site)
		require.NoError(t, err)
		h.fake.ExpireTokens() // the client still believes its token is good
		_, err = h.client.Site(ctx, site)
		require.NoError(t, err)
		assert.Equal(t, 2, h.client.TokenFetches())
		assert.Equal(t, 3, h.fake.Hits("GET /v1.2/sites/"))
		assert.Empty(t, h.slept(), "a refresh is not a backoff")
	})
	t.Run("concurrent 401s share one refresh", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		_, err := h.client.Site(ctx, site)
		require.NoError(t, err)
		h.fake.ExpireTokens()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, errs[i] = h.client.GroupLocks(ctx, site, saltokstest.GroupID(i%5)) })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, 2, h.client.TokenFetches(), "requests that saw the same stale token refresh it once")
	})
	t.Run("token expiring mid-sync", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ExpireToken, Path: "/users", Skip: 2})
		n := 0
		require.NoError(t, h.client.Users(ctx, site, "", func(p []saltoks.SiteUser) error { n += len(p); return nil }))
		assert.Equal(t, 40, n)
		assert.Equal(t, 2, h.client.TokenFetches())
	})
	t.Run("a second 401 is an auth error, not a loop", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ExpireToken, Times: -1})
		_, err := h.client.Site(ctx, site)
		var ae *saltoks.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 401, ae.Status)
		assert.False(t, saltoks.Retryable(err))
		assert.Equal(t, 2, h.client.TokenFetches())
		assert.Equal(t, 2, h.fake.Hits("GET /v1.2/sites/"))
	})
	t.Run("wrong password", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.Password = "wrong" })
		_, err := h.client.Site(ctx, site)
		var ae *saltoks.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "invalid_grant", ae.Code)
		assert.False(t, saltoks.Retryable(err))
		assert.Equal(t, 1, h.fake.Hits("POST /connect/token"))
		assert.Contains(t, err.Error(), "check the Salto username and password")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.ClientSecret = "nope" })
		_, err := h.client.Site(ctx, site)
		var ae *saltoks.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "invalid_client", ae.Code)
	})
	t.Run("identity server 500 is retried", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/connect/token"})
		_, err := h.client.Site(ctx, site)
		require.NoError(t, err)
		assert.Equal(t, 2, h.fake.Hits("POST /connect/token"))
		assert.Len(t, h.slept(), 1)
	})
	t.Run("refresh token grant rotates and reports the new token", func(t *testing.T) {
		var got []string
		var fake *saltokstest.Fake
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) {
			c.Grant, c.Password, c.Username = saltoks.GrantRefreshToken, "", ""
			c.RefreshToken = "placeholder"
			c.OnRefreshToken = func(s string) { got = append(got, s) }
		})
		fake = h.fake
		_, err := h.client.Site(ctx, site)
		var ae *saltoks.AuthError
		require.ErrorAs(t, err, &ae, "unknown refresh token")
		assert.Equal(t, "invalid_grant", ae.Code)

		o := fake.Options()
		c, err := saltoks.New(saltoks.Config{IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Grant: saltoks.GrantRefreshToken, RefreshToken: fake.IssueRefreshToken(), HTTPClient: fake.Client(), Now: fake.Now,
			OnRefreshToken: func(s string) { got = append(got, s) }})
		require.NoError(t, err)
		_, err = c.Site(ctx, site)
		require.NoError(t, err)
		fake.ExpireTokens()
		_, err = c.Site(ctx, site)
		require.NoError(t, err, "the rotated refresh token is used for the next refresh")
		require.Len(t, got, 2)
		assert.NotEqual(t, got[0], got[1])
	})
	t.Run("client credentials", func(t *testing.T) {
		for _, allowed := range []bool{true, false} {
			h := newHarness(t, small, saltokstest.Options{AllowClientCredentials: allowed}, func(c *saltoks.Config) {
				c.Grant, c.Username, c.Password = saltoks.GrantClientCredentials, "", ""
			})
			_, err := h.client.Site(ctx, site)
			if allowed {
				require.NoError(t, err)
				continue
			}
			var ae *saltoks.AuthError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "unauthorized_client", ae.Code)
		}
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	site := saltokstest.GeneratedSiteID
	listUsers := func(c *saltoks.Client) (int, error) {
		n := 0
		err := c.Users(ctx, site, "", func(p []saltoks.SiteUser) error { n += len(p); return nil })
		return n, err
	}
	cases := []struct {
		name      string
		fault     saltokstest.Fault
		wantErr   func(t *testing.T, err error)
		wantSleep []time.Duration
		wantHits  int // GET /users requests
	}{
		{name: "429 honours Retry-After", fault: saltokstest.Fault{Kind: saltokstest.RateLimit, Path: "/users", Skip: 1, RetryAfter: 7 * time.Second},
			wantSleep: []time.Duration{7 * time.Second}, wantHits: 8},
		{name: "500 twice then fine", fault: saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users", Times: 2},
			wantSleep: []time.Duration{500 * time.Millisecond, 750 * time.Millisecond}, wantHits: 9},
		{name: "500 for ever", fault: saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users", Times: -1},
			wantErr: func(t *testing.T, err error) {
				var ae *saltoks.APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, 500, ae.Status)
				assert.True(t, saltoks.Retryable(err))
			}, wantSleep: []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, 1250 * time.Millisecond, 2250 * time.Millisecond}, wantHits: 5},
		{name: "hanging answer hits the request timeout", fault: saltokstest.Fault{Kind: saltokstest.Slow, Path: "/users", Skip: 3},
			wantSleep: []time.Duration{500 * time.Millisecond}, wantHits: 8},
		{name: "connection cut mid-page", fault: saltokstest.Fault{Kind: saltokstest.CutBody, Path: "/users", Skip: 2},
			wantSleep: []time.Duration{500 * time.Millisecond}, wantHits: 8},
		{name: "malformed JSON", fault: saltokstest.Fault{Kind: saltokstest.Malformed, Path: "/users"},
			wantSleep: []time.Duration{500 * time.Millisecond}, wantHits: 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.RequestTimeout = 200 * time.Millisecond })
			h.fake.Inject(tc.fault)
			n, err := listUsers(h.client)
			if tc.wantErr != nil {
				tc.wantErr(t, err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, 40, n)
			}
			assert.Equal(t, tc.wantSleep, h.slept())
			assert.Equal(t, tc.wantHits, h.fake.Hits("GET /v1.2/sites/"+site+"/users"))
		})
	}
}

func TestCreateIsNotRetriedAfterAServerError(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, small, saltokstest.Options{}, nil)
	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/guests"})
	_, err := h.client.CreateGuest(ctx, saltokstest.GeneratedSiteID, saltoks.NewGuest{Alias: "x"})
	require.Error(t, err)
	assert.Equal(t, 1, h.fake.Hits("POST"+" /v1.2/sites/"+saltokstest.GeneratedSiteID+"/guests"), "the server may have acted: no blind retry")

	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.RateLimit, Path: "/guests", RetryAfter: time.Second})
	_, err = h.client.CreateGuest(ctx, saltokstest.GeneratedSiteID, saltoks.NewGuest{Alias: "y"})
	require.NoError(t, err, "429 means not acted on: retried")
}

func TestListChangingBetweenPages(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(f *saltokstest.Fake)
	}{
		{"an earlier item removed", func(f *saltokstest.Fake) { f.RemoveUser(saltokstest.UserID(1)) }},
		{"an item added in front", func(f *saltokstest.Fake) {
			u := saltokstest.Generate(saltokstest.SiteShape{Users: 1}).Users[0]
			u.ID, u.User.ID = "00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-0000000000ff"
			f.AddUser(u)
		}},
		{"one removed, one added: same count", func(f *saltokstest.Fake) {
			f.RemoveUser(saltokstest.UserID(2))
			u := saltokstest.Generate(saltokstest.SiteShape{Users: 1}).Users[0]
			u.ID, u.User.ID = "ffffffff-0000-4000-8000-000000000000", "ffffffff-0000-4000-8000-0000000000ff"
			f.AddUser(u)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, small, saltokstest.Options{}, nil)
			h.fake.Inject(saltokstest.Fault{Kind: saltokstest.After, Path: "/users", Do: func() { tc.change(h.fake) }})
			err := h.client.Users(ctx, saltokstest.GeneratedSiteID, "", func([]saltoks.SiteUser) error { return nil })
			var ie *saltoks.InconsistentError
			require.ErrorAs(t, err, &ie)
			assert.True(t, saltoks.Retryable(err))
		})
	}
}

func TestContextCancelled(t *testing.T) {
	h := newHarness(t, small, saltokstest.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.client.Site(ctx, saltokstest.GeneratedSiteID)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Equal(t, 0, h.fake.Hits(""))
}

func TestNoSecretInLogs(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, small, saltokstest.Options{}, nil)
	site := saltokstest.GeneratedSiteID
	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Path: "/users"})
	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.ExpireToken, Path: "/locks"})
	require.NoError(t, h.client.Users(ctx, site, "", func([]saltoks.SiteUser) error { return nil }))
	_, err := h.client.Locks(ctx, site)
	require.NoError(t, err)
	pin, err := h.client.GeneratePIN(ctx, site, saltokstest.UserID(0), nil)
	require.NoError(t, err)
	o := h.fake.Options()
	logs := h.logs.String()
	require.NotEmpty(t, logs)
	for _, secret := range []string{o.Password, o.ClientSecret, "fake-at-", pin, "Bearer"} {
		assert.NotContains(t, logs, secret)
	}
}

func TestNewValidates(t *testing.T) {
	base := saltoks.Config{IdentityURL: "https://id.example", APIURL: "https://api.example", ClientID: "c", Username: "u", Password: "p"}
	cases := []struct {
		name string
		mod  func(*saltoks.Config)
		want string
	}{
		{"ok", func(*saltoks.Config) {}, ""},
		{"no api url", func(c *saltoks.Config) { c.APIURL = "" }, "required"},
		{"bad scheme", func(c *saltoks.Config) { c.APIURL = "ftp://x" }, "not an http"},
		{"no client", func(c *saltoks.Config) { c.ClientID = "" }, "client_id"},
		{"no password", func(c *saltoks.Config) { c.Password = "" }, "password"},
		{"refresh without token", func(c *saltoks.Config) { c.Grant = saltoks.GrantRefreshToken }, "refresh token"},
		{"client credentials without secret", func(c *saltoks.Config) { c.Grant = saltoks.GrantClientCredentials }, "client secret"},
		{"unknown grant", func(c *saltoks.Config) { c.Grant = "implicit" }, "not password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			_, err := saltoks.New(cfg)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "p\"")
		})
	}
}

func TestParseErrorBody(t *testing.T) {
	cases := []struct{ body, code, msg string }{
		{`{"ErrorCode":"2202","Message":"User not found"}`, "2202", "User not found"},
		{`{"ErrorCode":3102,"Message":"otp_invalid"}`, "3102", "otp_invalid"},
		{`{"ErrorCode":null,"Message":"x"}`, "", "x"},
		{`{"error":"invalid_grant","error_description":"bad"}`, "invalid_grant", "bad"},
		{`{"type":"about:blank","title":"Forbidden","status":403}`, "", "Forbidden"},
		{`<html>502</html>`, "", ""},
		{``, "", ""},
	}
	for _, tc := range cases {
		code, msg := saltoks.ParseErrorBody([]byte(tc.body))
		assert.Equal(t, tc.code, code, tc.body)
		assert.Equal(t, tc.msg, msg, tc.body)
	}
}

func TestParsePIN(t *testing.T) {
	cases := []struct {
		body, want string
		ok         bool
	}{
		{`"123456"`, "123456", true},
		{"\"0012345678\"\n", "0012345678", true},
		{`123456`, "123456", true},
		{`{"pin":"654321"}`, "654321", true},
		{`"12a456"`, "", false},
		{`""`, "", false},
		{`"123`, "", false},
		{`null`, "", false},
	}
	for _, tc := range cases {
		got, err := saltoks.ParsePIN([]byte(tc.body))
		if !tc.ok {
			assert.Error(t, err, tc.body)
			continue
		}
		require.NoError(t, err, tc.body)
		assert.Equal(t, tc.want, got)
	}
}

func TestDecodePage(t *testing.T) {
	p, err := saltoks.DecodePage([]byte(`{"items":[{"id":"a"}],"next_page_link":"http://x/?$skip=1","count":3}`))
	require.NoError(t, err)
	assert.Len(t, p.Items, 1)
	assert.Equal(t, 3, *p.Count)
	assert.False(t, p.Bare)
	p, err = saltoks.DecodePage([]byte(` [{"id":"a"},{"id":"b"}]`))
	require.NoError(t, err)
	assert.True(t, p.Bare)
	assert.Len(t, p.Items, 2)
	for _, bad := range []string{``, `{}`, `{"items":null}`, `"x"`, `{"items":[],"count":-1}`, `{"items":[],"count":"x"}`} {
		_, err := saltoks.DecodePage([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{`{"ErrorCode":"2202","Message":"x"}`, `{"ErrorCode":1.5e3}`, `{"error":"e"}`, `[]`, `{"ErrorCode":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg := saltoks.ParseErrorBody(b)
		if len(msg) > 310 {
			t.Fatalf("message not clipped: %d", len(msg))
		}
		_ = code
	})
}

func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{`{"items":[],"next_page_link":null,"count":null}`, `[1,2]`, `{"items":[{}],"count":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := saltoks.DecodePage(b)
		if err == nil && p.Count != nil && *p.Count < 0 {
			t.Fatal("negative count accepted")
		}
	})
}

func FuzzParsePIN(f *testing.F) {
	for _, s := range []string{`"123456"`, `123456`, `{"pin":"1"}`, `"\u0031\u0032\u0033\u0034"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pin, err := saltoks.ParsePIN(b)
		if err != nil {
			if strings.Contains(err.Error(), string(b)) && len(b) > 3 {
				t.Fatalf("error repeats the body: %v", err)
			}
			return
		}
		if len(pin) < 4 || len(pin) > 16 || strings.Trim(pin, "0123456789") != "" {
			t.Fatalf("bad PIN accepted: %q", pin)
		}
	})
}
