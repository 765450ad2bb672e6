// Package saltokstest is a fake Salto KS (identity server and Connect API) for
// tests and demos, built from what is known about the real service
// (docs/saltoks.md lists where it had to guess). It is seeded from a Portier
// snapshot file, keeps its own clock so tokens really expire, and can inject
// faults: 429 with Retry-After, 500s, slow or hanging answers, connections cut
// mid-body, malformed JSON, tokens that expire mid-sync and lists that change
// between pages.
//
// The production binary never imports this package.
package saltokstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
)

// Default test credentials.
const (
	DefaultClientID     = "portier-gateway"
	DefaultClientSecret = "fake-client-secret"
	DefaultUsername     = "gateway@example.com"
	DefaultPassword     = "fake-password"
)

// TokenLifetime is what the identity server answers in expires_in.
const TokenLifetime = 3600 * time.Second

// Options configure the fake. The zero value works.
type Options struct {
	ClientID, ClientSecret, Username, Password string
	// SeatLimit is the subscription's user_amount: once this many users are
	// subscribed, new users and guests are created suspended. 0: unlimited.
	SeatLimit int
	// Start is the fake clock's initial time (default 2026-06-01T08:00:00Z).
	// With RealTime the fake uses the wall clock instead.
	Start    time.Time
	RealTime bool
	// DefaultPageSize applies without $top (default 100); MaxPageSize caps
	// $top (default 1000). The real values are unknown.
	DefaultPageSize, MaxPageSize int
	PINLength                    int  // default 6
	PINAsText                    bool // serve the PIN as text/plain (a client quirk seen)
	NumericErrorCodes            bool // ErrorCode as a JSON number instead of a string
	AllowClientCredentials       bool
	// Latency delays every answer by this much real time, as the distance
	// to Salto's cloud does (for benchmarks; tests keep it 0).
	Latency time.Duration
	// CreateLag hides a user or guest created through the API from every
	// call naming it, and from the lists, for this long after its creation
	// (by the fake's clock): Salto KS was measured not to see a new guest for
	// about a minute (404 2202 / 403 2203). 0: visible at once.
	CreateLag time.Duration
	Logger    *slog.Logger
}

// Fake is the fake Salto KS. It is an http.Handler serving both the identity
// server (/connect/token) and the Connect API.
type Fake struct {
	opt Options
	log *slog.Logger
	mux *http.ServeMux
	srv *httptest.Server

	mu       sync.Mutex
	now      time.Time
	site     saltoks.Site
	locks    []saltoks.Lock // sorted by id
	users    []*user        // sorted by id
	byID     map[string]*user
	byPlat   map[string]*user
	groups   []*group // sorted by id
	groupIDs map[string]*group
	tokens   map[string]time.Time // access token → expiry
	refresh  map[string]bool
	faults   []*Fault
	hits     map[string]int
	seq      int
	pins     map[string]string // site-user id → last issued PIN (test accessor only)
	active   int               // requests being served
	peak     int               // the most requests served at once
}

type user struct {
	saltoks.SiteUser
	role      string
	visibleAt time.Time // zero: visible; else hidden before (CreateLag)
	enc, menc []byte    // cached JSON (see touch)
}

// idKey is how the fake looks ids up: Salto's ids are .NET Guids, which the
// real service matches without regard to case.
func idKey(id string) string { return strings.ToLower(id) }

// visible reports whether calls can see u yet (CreateLag).
func (k *Fake) visible(u *user) bool {
	return u.visibleAt.IsZero() || !k.clock().Before(u.visibleAt)
}

// PeakConcurrency is the largest number of requests the fake served at once.
func (k *Fake) PeakConcurrency() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.peak
}

type group struct {
	sitefile.AccessGroup
}

// New builds a fake holding the site of f.
func New(f *sitefile.File, opt Options) (*Fake, error) {
	if opt.ClientID == "" {
		opt.ClientID, opt.ClientSecret = DefaultClientID, DefaultClientSecret
	}
	if opt.Username == "" {
		opt.Username, opt.Password = DefaultUsername, DefaultPassword
	}
	if opt.DefaultPageSize <= 0 {
		opt.DefaultPageSize = 100
	}
	if opt.MaxPageSize <= 0 {
		opt.MaxPageSize = 1000
	}
	if opt.PINLength == 0 {
		opt.PINLength = 6
	}
	if opt.Start.IsZero() {
		opt.Start = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Fake{opt: opt, log: opt.Logger, now: opt.Start, site: f.Site,
		byID: map[string]*user{}, byPlat: map[string]*user{}, groupIDs: map[string]*group{},
		tokens: map[string]time.Time{}, refresh: map[string]bool{}, hits: map[string]int{}, pins: map[string]string{}}
	if k.site.ID == "" || k.site.TimeZone == "" {
		return nil, fmt.Errorf("saltokstest: the seed site needs an id and a time_zone")
	}
	k.locks = slices.Clone(f.Locks)
	slices.SortFunc(k.locks, func(a, b saltoks.Lock) int { return strings.Compare(a.ID, b.ID) })
	for _, u := range f.Users {
		if u.ID == "" || u.User.ID == "" {
			return nil, fmt.Errorf("saltokstest: a seed user lacks an id or user.id")
		}
		if k.byID[idKey(u.ID)] != nil || k.byPlat[idKey(u.User.ID)] != nil {
			return nil, fmt.Errorf("saltokstest: duplicate seed user %s", u.ID)
		}
		nu := &user{SiteUser: u, role: "site_user"}
		if nu.SubscriptionState == "" {
			nu.SubscriptionState = "subscribed"
		}
		k.byID[idKey(u.ID)], k.byPlat[idKey(u.User.ID)] = nu, nu
		k.users = append(k.users, nu)
	}
	k.sortUsers()
	for _, g := range f.AccessGroups {
		ng := &group{AccessGroup: g}
		ng.Users, ng.Locks = slices.Clone(g.Users), slices.Clone(g.Locks)
		ng.TimeSchedules = slices.Clone(g.TimeSchedules)
		for i := range ng.TimeSchedules {
			if ng.TimeSchedules[i].ID == "" {
				ng.TimeSchedules[i].ID = fmt.Sprintf("%s-ts%d", g.ID, i)
			}
		}
		k.groups = append(k.groups, ng)
		k.groupIDs[idKey(g.ID)] = ng
	}
	slices.SortFunc(k.groups, func(a, b *group) int { return strings.Compare(a.ID, b.ID) })
	k.routes()
	return k, nil
}

// Start serves the fake on a loopback port (httptest); Close stops it.
func (k *Fake) Start() *Fake {
	k.srv = httptest.NewServer(k)
	// Keep a connection per parallel request (the default keeps 2 per host).
	if tr, ok := k.srv.Client().Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = 64
	}
	return k
}

// URL is the base URL of a started fake: both the identity and the API URL.
func (k *Fake) URL() string { return k.srv.URL }

// Close stops a started fake.
func (k *Fake) Close() {
	if k.srv != nil {
		k.srv.CloseClientConnections()
		k.srv.Close()
	}
}

// Client is an HTTP client for the started fake.
func (k *Fake) Client() *http.Client { return k.srv.Client() }

// Options returns the options in effect (defaults filled in).
func (k *Fake) Options() Options { return k.opt }

// Now is the fake's clock.
func (k *Fake) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clock()
}

func (k *Fake) clock() time.Time {
	if k.opt.RealTime {
		return time.Now()
	}
	return k.now
}

// Advance moves the fake clock (tokens expire by it).
func (k *Fake) Advance(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.now = k.now.Add(d)
}

// ExpireTokens makes every issued access token expire now.
func (k *Fake) ExpireTokens() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for t := range k.tokens {
		k.tokens[t] = k.clock().Add(-time.Second)
	}
}

// WarmUp encodes every user's JSON now, so the first listing of a large site
// does not pay for it (benchmarks measure the client, not the fake).
func (k *Fake) WarmUp() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, u := range k.users {
		u.json()
		u.memberJSON()
	}
}

// Hits counts requests whose "METHOD /path" starts with prefix (e.g.
// "POST /connect/token", "GET /v1.2/sites/").
func (k *Fake) Hits(prefix string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for key, v := range k.hits {
		if strings.HasPrefix(key, prefix) {
			n += v
		}
	}
	return n
}

// LastPIN is the PIN last issued to a site user. Test accessor only: the
// real API never shows a PIN again.
func (k *Fake) LastPIN(siteUserID string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pins[siteUserID]
}

func (k *Fake) sortUsers() {
	slices.SortFunc(k.users, func(a, b *user) int { return strings.Compare(a.ID, b.ID) })
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID makes a random RFC 4122 version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (k *Fake) subscribedCount() int {
	n := 0
	for _, u := range k.users {
		if u.SubscriptionState == "subscribed" {
			n++
		}
	}
	return n
}

// --- state changes for tests ------------------------------------------------

// AddUser adds a site user (as if an admin created it in the web app).
func (k *Fake) AddUser(u saltoks.SiteUser) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if u.SubscriptionState == "" {
		u.SubscriptionState = "subscribed"
	}
	nu := &user{SiteUser: u, role: "site_user"}
	k.byID[idKey(u.ID)], k.byPlat[idKey(u.User.ID)] = nu, nu
	k.users = append(k.users, nu)
	k.sortUsers()
}

// UpdateUser changes a site user in place; it reports whether it exists.
func (k *Fake) UpdateUser(id string, fn func(*saltoks.SiteUser)) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	u := k.byID[idKey(id)]
	if u == nil {
		return false
	}
	fn(&u.SiteUser)
	u.touch()
	return true
}

// RemoveUser deletes a site user and its memberships.
func (k *Fake) RemoveUser(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.removeUser(id)
}

func (k *Fake) removeUser(id string) bool {
	u := k.byID[idKey(id)]
	if u == nil {
		return false
	}
	delete(k.byID, idKey(id))
	delete(k.byPlat, idKey(u.User.ID))
	delete(k.pins, u.ID)
	k.users = slices.DeleteFunc(k.users, func(x *user) bool { return x == u })
	for _, g := range k.groups {
		g.Users = slices.DeleteFunc(g.Users, func(p string) bool { return p == u.User.ID })
	}
	return true
}

// SetGroupMembers replaces an access group's members (platform user ids).
func (k *Fake) SetGroupMembers(groupID string, members []string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	g := k.groupIDs[idKey(groupID)]
	if g == nil {
		return false
	}
	g.Users = slices.Clone(members)
	return true
}

// File returns the fake's current state in the snapshot file format.
func (k *Fake) File() *sitefile.File {
	k.mu.Lock()
	defer k.mu.Unlock()
	f := &sitefile.File{Version: sitefile.FormatVersion, Site: k.site, Locks: slices.Clone(k.locks)}
	for _, u := range k.users {
		f.Users = append(f.Users, u.SiteUser)
	}
	for _, g := range k.groups {
		ag := g.AccessGroup
		ag.Users, ag.Locks, ag.TimeSchedules = slices.Clone(g.Users), slices.Clone(g.Locks), slices.Clone(g.TimeSchedules)
		f.AccessGroups = append(f.AccessGroups, ag)
	}
	return f
}

// GroupMembers lists an access group's members (platform user ids).
func (k *Fake) GroupMembers(groupID string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if g := k.groupIDs[idKey(groupID)]; g != nil {
		return slices.Clone(g.Users)
	}
	return nil
}

// FindUser returns a copy of a site user by site-user id.
func (k *Fake) FindUser(id string) (saltoks.SiteUser, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if u := k.byID[idKey(id)]; u != nil {
		return u.SiteUser, true
	}
	return saltoks.SiteUser{}, false
}

// UserCount is the number of site users.
func (k *Fake) UserCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.users)
}

func jsonMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return b
}
