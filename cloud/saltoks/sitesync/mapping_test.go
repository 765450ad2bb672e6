package sitesync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

func str(s string) *string { return &s }

// allLocks is a door every generated group covers, so a sync keeps every
// group, as an import of the whole site does.
func allLocks() agent.Door {
	d := agent.Door{ID: "all", Mode: agent.ModeCardOrPIN}
	for i := range shape.Locks {
		d.LockIDs = append(d.LockIDs, saltokstest.LockID(i))
	}
	return d
}

// importFile imports the fake's site, as a snapshot file, into a new cache
// and returns that cache's path.
func importFile(t *testing.T, f *sitefile.File) (string, error) {
	t.Helper()
	raw, err := json.Marshal(f)
	require.NoError(t, err)
	snap, err := sitefile.Read(bytes.NewReader(raw), nil)
	if err != nil {
		return "", err
	}
	path := filepath.Join(t.TempDir(), "imported.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ApplySnapshot(context.Background(), snap, sqlite.ApplyOptions{})
	require.NoError(t, err)
	return path, nil
}

// TestSyncAndImportLandTheSameCache pins the "one Salto model and one
// mapping" defect: the same site, synced from Salto KS or imported as a
// snapshot file, is the same cache. Before, a user without subscription_state
// was suspended by the sync and subscribed by the import. The site also holds
// the forms both must normalise alike: a tag number without its leading zero,
// an expiry without offset, ids in upper case, use_pin off.
func TestSyncAndImportLandTheSameCache(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(c *sitesync.Config) { c.Doors = []agent.Door{allLocks()} })
	e.fake.UpdateUser(saltokstest.UserID(3), func(u *saltoks.SiteUser) { u.SubscriptionState = "" })
	e.fake.UpdateUser(saltokstest.UserID(5), func(u *saltoks.SiteUser) { u.User.TagNumber = str(strings.TrimLeft(saltokstest.TagNumber(5), "0")) })
	e.fake.UpdateUser(saltokstest.UserID(6), func(u *saltoks.SiteUser) { u.ExpiresAt = str("2027-01-01T00:00:00") })
	e.fake.UpdateUser(saltokstest.UserID(7), func(u *saltoks.SiteUser) { u.UsePIN = new(bool) })
	upper := saltokstest.Generate(saltokstest.SiteShape{Users: 1}).Users[0]
	upper.ID, upper.User.ID = "ABCDEF00-0000-4000-8000-000000000001", "ABCDEF00-0000-4000-8000-000000000002"
	upper.User.TagNumber = str("09999999")
	e.fake.AddUser(upper)
	require.True(t, e.fake.SetGroupMembers(saltokstest.GroupID(0), append(e.fake.GroupMembers(saltokstest.GroupID(0)), upper.User.ID)))

	res, err := e.eng.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Empty(t, res.Warnings)
	imported, err := importFile(t, e.fake.File())
	require.NoError(t, err)
	assert.Equal(t, dump(t, e.path), dump(t, imported), "the sync and the import of the same site differ")

	monday := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC) // inside every generated schedule
	door := allLocks()
	assert.Equal(t, agent.ReasonGranted, decide(t, e.db, door, monday, saltokstest.TagNumber(3)), "no subscription_state: subscribed")
	assert.Equal(t, agent.ReasonGranted, decide(t, e.db, door, monday, saltokstest.TagNumber(5)))
	assert.Equal(t, agent.ReasonGranted, decide(t, e.db, door, monday, "09999999"), "upper-case member id matches its user")
}

// TestBadTagNumberIsReportedBothWays pins the other half of that defect: the
// sync dropped a malformed tag number silently. Now both ways report the same
// problem: the sync keeps the user without the tag and warns, the import
// refuses the file naming the user (its operator can fix it).
func TestBadTagNumberIsReportedBothWays(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.UpdateUser(saltokstest.UserID(8), func(u *saltoks.SiteUser) { u.User.TagNumber = str("23x00008") })
	res, err := e.eng.SyncOnce(context.Background())
	require.NoError(t, err)
	const msg = "user.tag_number: invalid credential: tag number must be 1–8 digits"
	assert.Equal(t, []string{"user " + saltokstest.UserID(8) + ": " + msg + " (the user keeps no tag credential)"}, res.Warnings)
	assert.Equal(t, 60, res.Users, "the user stays")
	assert.Equal(t, 59, res.Credentials)
	sunday := time.Date(2026, 6, 7, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, agent.ReasonGranted, decide(t, e.db, doors[0], sunday, saltokstest.TagNumber(0)))

	_, err = importFile(t, e.fake.File())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "users[8] ("+saltokstest.UserID(8)+"): "+msg)
	assert.NotContains(t, err.Error(), "23x00008")
}

// recorder is an agent.EventSink that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	events []agent.Event
}

func (r *recorder) Record(_ context.Context, e agent.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Type)+" "+e.Door)
	}
	return out
}

// TestUnknownDoorIDs pins the "every configured lock and access group is
// checked" defect: a lock the site lacks was not reported at all, and an
// existing access group written in upper case was reported missing. Now each
// unknown id is a warning naming the close matches, is kept in the sync
// state for status, and raises an alarm once (and a clearing event when it
// is fixed), also when a one-shot sync saw it first.
func TestUnknownDoorIDs(t *testing.T) {
	ctx := context.Background()
	typo := strings.Replace(saltokstest.LockID(0), "10c4", "10c5", 1)
	mapped := []agent.Door{
		{ID: "front", Mode: agent.ModeCard, LockIDs: []string{typo}},
		{ID: "lab", Mode: agent.ModeCard, GroupIDs: []string{strings.ToUpper(saltokstest.GroupID(1)), "a9000000-0000-4000-8000-0000000000ff"}},
	}
	e := newEnv(t, func(c *sitesync.Config) { c.Doors = mapped })
	res, err := e.eng.SyncOnce(ctx) // one-shot: no event sink
	require.NoError(t, err)
	require.Len(t, res.Unknown, 2)
	require.Len(t, res.Warnings, 2)
	assert.Contains(t, res.Warnings[0], `door "front": lock `+typo+` (salto_locks) is not on the Salto KS site, so it opens the door for nobody; the site has "Door 000" (`+saltokstest.LockID(0)+`)`)
	assert.Contains(t, res.Warnings[1], `door "lab": access group a9000000-0000-4000-8000-0000000000ff (salto_access_groups) is not on the Salto KS site`)
	assert.NotContains(t, strings.Join(res.Warnings, "\n"), "access group "+saltokstest.GroupID(1)+" (salto", "the group in upper case exists")
	assert.Equal(t, 1, res.Groups, "group 1 is read for door lab")

	st, err := sitesync.ReadState(ctx, e.db)
	require.NoError(t, err)
	assert.Equal(t, res.Warnings, st.ConfigMismatch)
	assert.Contains(t, st.Describe(e.fake.Now()), "warning: "+res.Warnings[0])

	engine := func(doors []agent.Door, sink agent.EventSink) *sitesync.Engine {
		eng, err := sitesync.New(ctx, sitesync.Config{Source: e.client, SiteID: saltokstest.GeneratedSiteID, Doors: doors, Meta: e.db,
			Apply: applyTo(e.db), Now: e.fake.Now, Events: sink})
		require.NoError(t, err)
		return eng
	}
	rec := &recorder{}
	daemon := engine(mapped, rec)
	_, err = daemon.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"salto_config_mismatch front", "salto_config_mismatch lab"}, rec.types(), "the daemon alarms what the one-shot sync saw")
	assert.Contains(t, rec.events[0].Detail, typo)
	_, err = daemon.SyncOnce(ctx)
	require.NoError(t, err)
	assert.Len(t, rec.types(), 2, "an alarm goes out once")

	fixed := []agent.Door{{ID: "front", Mode: agent.ModeCard, LockIDs: []string{saltokstest.LockID(0)}}, mapped[1]}
	res, err = engine(fixed, rec).SyncOnce(ctx)
	require.NoError(t, err)
	assert.Len(t, res.Unknown, 1)
	assert.Equal(t, []string{"salto_config_mismatch front", "salto_config_mismatch lab", "salto_config_mismatch_cleared front"}, rec.types())
	st, err = sitesync.ReadState(ctx, e.db)
	require.NoError(t, err)
	assert.Len(t, st.ConfigMismatch, 1)
}

// TestGroupDetailsAreReadSideBySide pins the "sync at internet latency"
// defect for access groups: once a group's lock list shows it covers a door,
// its members and its time schedules are requested together. The fake holds
// that group's requests until both wait at once; one after the other, the
// single attempt times out.
func TestGroupDetailsAreReadSideBySide(t *testing.T) {
	e := newEnv(t, nil)
	o := e.fake.Options()
	client, err := saltoks.New(saltoks.Config{IdentityURL: e.fake.URL(), APIURL: e.fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password, HTTPClient: e.fake.Client(), Now: e.fake.Now, MaxAttempts: 1, RequestTimeout: 5 * time.Second})
	require.NoError(t, err)
	eng, err := sitesync.New(context.Background(), sitesync.Config{Source: client, SiteID: saltokstest.GeneratedSiteID, Doors: doors,
		Meta: e.db, Apply: applyTo(e.db), Now: e.fake.Now})
	require.NoError(t, err)
	// Group 0 holds lock 0 (door front): its lock list first, then the rest.
	e.fake.Inject(saltokstest.Fault{Kind: saltokstest.Hold, Path: "/access_groups/" + saltokstest.GroupID(0) + "/", Skip: 1, Times: 2})
	res, err := eng.SyncOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, res.Groups)
}
