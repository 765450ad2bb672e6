package accesscode_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

var shape = saltokstest.SiteShape{Users: 30, Groups: 3, Locks: 3}

var doors = []agent.Door{
	{ID: "kiosk", Mode: agent.ModePIN, GroupIDs: []string{saltokstest.GroupID(0)}}, // group 0: always
	{ID: "card-only", Mode: agent.ModeCard, GroupIDs: []string{saltokstest.GroupID(1)}},
	{ID: "by-lock", Mode: agent.ModeCardOrPIN, LockIDs: []string{saltokstest.LockID(2)}},
}

var pinKey = agent.PINKey("0123456789abcdef0123456789abcdef")

type env struct {
	fake   *saltokstest.Fake
	client *saltoks.Client
	path   string
	db     *sqlite.DB
	eng    *sitesync.Engine
	ids    int
}

func newEnv(t *testing.T, fopt saltokstest.Options) *env {
	t.Helper()
	fake, err := saltokstest.New(saltokstest.Generate(shape), fopt)
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)
	o := fake.Options()
	client, err := saltoks.New(saltoks.Config{IdentityURL: fake.URL(), APIURL: fake.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Username: o.Username, Password: o.Password, HTTPClient: fake.Client(), Now: fake.Now, MaxAttempts: 2,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	require.NoError(t, err)
	e := &env{fake: fake, client: client, path: filepath.Join(t.TempDir(), "cache.db")}
	e.open(t)
	return e
}

// open (re)opens the cache, as a restarted process would.
func (e *env) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if e.db != nil {
		require.NoError(t, e.db.Close())
	}
	db, err := sqlite.Open(ctx, e.path, sqlite.Options{Now: e.fake.Now})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.eng, err = sitesync.New(ctx, sitesync.Config{Source: e.client, SiteID: saltokstest.GeneratedSiteID, Doors: doors, Meta: db, Now: e.fake.Now,
		Apply: func(ctx context.Context, s *agent.Snapshot) (sitesync.Applied, error) {
			st, err := db.ApplySnapshot(ctx, s, sqlite.ApplyOptions{})
			return sitesync.Applied{Inserted: st.Inserted, Updated: st.Updated, Deleted: st.Deleted, Generation: st.Generation}, err
		}})
	require.NoError(t, err)
}

func (e *env) service(t *testing.T, store accesscode.Store, checkpoint func(string) error) *accesscode.Service {
	t.Helper()
	if store == nil {
		store = e.db
	}
	s, err := accesscode.New(accesscode.Config{Salto: e.client, Store: store, SiteID: saltokstest.GeneratedSiteID, Doors: doors,
		PINKey: pinKey, Now: e.fake.Now, Checkpoint: checkpoint,
		NewID: func() string { e.ids++; return fmt.Sprintf("ac_%d", e.ids) },
		Changed: func(ctx context.Context) error {
			_, err := e.eng.SyncOnce(ctx)
			return err
		}})
	require.NoError(t, err)
	return s
}

func (e *env) decide(t *testing.T, door string, at time.Time, pin string) agent.Reason {
	t.Helper()
	for _, d := range doors {
		if d.ID == door {
			dec, err := (&agent.Decider{Cache: e.db, PINKey: pinKey}).Decide(context.Background(), d, at, agent.KeypadPIN(pin))
			require.NoError(t, err)
			return dec.Reason
		}
	}
	t.Fatalf("no door %s", door)
	return ""
}

func TestCreateAndDelete(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{})
	svc := e.service(t, nil, nil)
	now := e.fake.Now()
	starts, ends := now.Add(time.Hour), now.Add(48*time.Hour)
	ac, code, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "cleaner", StartsAt: starts, EndsAt: ends})
	require.NoError(t, err)
	assert.Len(t, code, 6)
	assert.Equal(t, agent.AccessCodeSet, ac.Status)
	assert.Equal(t, e.fake.LastPIN(ac.SaltoUserID), code, "the code is Salto's PIN")
	u, ok := e.fake.FindUser(ac.SaltoUserID)
	require.True(t, ok)
	assert.Equal(t, "portier-ac:ac_1", u.Alias)
	assert.Contains(t, e.fake.GroupMembers(saltokstest.GroupID(0)), u.User.ID)

	stored, err := e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeSet, stored.Status)
	assert.Equal(t, pinKey.Key(code), stored.CredentialKey, "only the keyed hash is kept")
	assert.True(t, stored.EndsAt.Equal(ends))

	assert.Equal(t, agent.ReasonNotYetValid, e.decide(t, "kiosk", now, code))
	assert.Equal(t, agent.ReasonGranted, e.decide(t, "kiosk", now.Add(2*time.Hour), code))
	assert.Equal(t, agent.ReasonExpired, e.decide(t, "kiosk", now.Add(49*time.Hour), code))
	assert.Equal(t, agent.ReasonNoAccessToDoor, e.decide(t, "by-lock", now.Add(2*time.Hour), code))

	ongoing, code2, err := svc.Create(ctx, accesscode.Request{Door: "kiosk"})
	require.NoError(t, err)
	assert.True(t, ongoing.EndsAt.IsZero())
	assert.Equal(t, agent.ReasonGranted, e.decide(t, "kiosk", now.Add(24*365*time.Hour), code2))

	del, err := svc.Delete(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeUnset, del.Status)
	_, ok = e.fake.FindUser(ac.SaltoUserID)
	assert.False(t, ok, "the Salto user is gone and its seat free")
	assert.Equal(t, agent.ReasonUnknownCredential, e.decide(t, "kiosk", now.Add(2*time.Hour), code))
	assert.Equal(t, agent.ReasonGranted, e.decide(t, "kiosk", now.Add(2*time.Hour), code2), "other codes stay")

	list, err := svc.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, agent.AccessCodeUnset, list[0].Status)
	assert.Equal(t, agent.AccessCodeSet, list[1].Status)

	_, err = svc.Delete(ctx, "nope")
	var ae *accesscode.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, accesscode.NotFound, ae.Type)
}

func TestSeatLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{SeatLimit: shape.Users})
	svc := e.service(t, nil, nil)
	before := e.fake.UserCount()
	ac, code, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "guest"})
	var ae *accesscode.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, accesscode.NotSubscribed, ae.Type)
	assert.Contains(t, err.Error(), "salto_site_user_not_subscribed")
	assert.Contains(t, err.Error(), "deleting access codes")
	assert.Contains(t, err.Error(), "subscription with more users")
	assert.Empty(t, code)
	assert.Equal(t, before, e.fake.UserCount(), "the suspended user was removed again")
	stored, err := e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeUnset, stored.Status)
	assert.Contains(t, stored.Error, "salto_site_user_not_subscribed")
	assert.Empty(t, stored.CredentialKey)
}

func TestInvalidRequests(t *testing.T) {
	e := newEnv(t, saltokstest.Options{})
	svc := e.service(t, nil, nil)
	now := e.fake.Now()
	for name, req := range map[string]accesscode.Request{
		"unknown door":       {Door: "nope"},
		"card-only door":     {Door: "card-only"},
		"door without group": {Door: "by-lock"},
		"ends before start":  {Door: "kiosk", StartsAt: now.Add(time.Hour), EndsAt: now},
		"ends in the past":   {Door: "kiosk", EndsAt: now.Add(-time.Hour)},
	} {
		_, _, err := svc.Create(context.Background(), req)
		var ae *accesscode.Error
		require.ErrorAs(t, err, &ae, name)
		assert.Equal(t, accesscode.InvalidInput, ae.Type, name)
		if name == "unknown door" {
			assert.Regexp(t, `no door "nope" \(doors: [a-z-]+(, [a-z-]+)*\) in the config`, ae.Message, "it names the doors there are")
		}
	}
	assert.Equal(t, shape.Users, e.fake.UserCount())
}

// failingStore fails every save from the first one at a given step on, as a
// dying disk or a killed process would.
type failingStore struct {
	*sqlite.DB
	at   string
	dead bool
}

func (f *failingStore) SaveAccessCode(ctx context.Context, ac agent.AccessCode, put *agent.Credential, drop string) error {
	if ac.Step == f.at {
		f.dead = true
	}
	if f.dead {
		return errors.New("disk gone")
	}
	return f.DB.SaveAccessCode(ctx, ac, put, drop)
}

func TestCrashDuringCreateIsRolledBackOnRestart(t *testing.T) {
	steps := []string{accesscode.StepRecorded, accesscode.StepUserCreated, accesscode.StepPINEnabled, accesscode.StepGroupAdded, accesscode.StepPINGenerated, "lost id"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, saltokstest.Options{})
			var store accesscode.Store
			var checkpoint func(string) error
			if step == "lost id" {
				// The guest exists in Salto, but its id never reached the disk.
				store = &failingStore{DB: e.db, at: accesscode.StepUserCreated}
			} else {
				checkpoint = func(s string) error {
					if s == step {
						return errors.New("killed")
					}
					return nil
				}
			}
			_, code, err := e.service(t, store, checkpoint).Create(ctx, accesscode.Request{Door: "kiosk", Name: "x"})
			require.Error(t, err)
			assert.Empty(t, code)
			list, err := e.db.AccessCodes(ctx)
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.Equal(t, agent.AccessCodeSetting, list[0].Status, "interrupted mid-way")

			e.open(t) // restart
			touched, err := e.service(t, nil, nil).Resume(ctx)
			require.NoError(t, err)
			require.Len(t, touched, 1)
			got, err := e.db.AccessCode(ctx, list[0].ID)
			require.NoError(t, err)
			assert.Equal(t, agent.AccessCodeUnset, got.Status)
			assert.Contains(t, got.Error, "interrupted")
			assert.Equal(t, shape.Users, e.fake.UserCount(), "no orphan Salto user holds a seat")
			assert.Len(t, e.fake.GroupMembers(saltokstest.GroupID(0)), shape.Users/shape.Groups)
			counts, err := e.db.Counts(ctx)
			require.NoError(t, err)
			assert.Zero(t, counts.Credentials["pin"], "no PIN credential left behind")

			touched, err = e.service(t, nil, nil).Resume(ctx)
			require.NoError(t, err)
			assert.Empty(t, touched, "resume is idempotent")
		})
	}
}

func TestCrashDuringDeleteIsFinishedOnRestart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{})
	ac, code, err := e.service(t, nil, nil).Create(ctx, accesscode.Request{Door: "kiosk"})
	require.NoError(t, err)
	later := e.fake.Now().Add(time.Hour)
	require.Equal(t, agent.ReasonGranted, e.decide(t, "kiosk", later, code))

	_, err = e.service(t, nil, func(s string) error {
		if s == accesscode.StepRevoked {
			return errors.New("killed")
		}
		return nil
	}).Delete(ctx, ac.ID)
	require.Error(t, err)
	got, err := e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeRemoving, got.Status)
	assert.Equal(t, agent.ReasonUnknownCredential, e.decide(t, "kiosk", later, code), "revoked locally before Salto is asked")

	e.open(t)
	_, err = e.service(t, nil, nil).Resume(ctx)
	require.NoError(t, err)
	got, err = e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeUnset, got.Status)
	_, ok := e.fake.FindUser(ac.SaltoUserID)
	assert.False(t, ok)
}

func TestDeleteWhileSaltoIsDown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{})
	svc := e.service(t, nil, nil)
	ac, code, err := svc.Create(ctx, accesscode.Request{Door: "kiosk"})
	require.NoError(t, err)
	e.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Method: "DELETE", Times: -1})
	_, err = svc.Delete(ctx, ac.ID)
	var ae *accesscode.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, accesscode.SaltoFailed, ae.Type)
	assert.Equal(t, agent.ReasonUnknownCredential, e.decide(t, "kiosk", e.fake.Now().Add(time.Hour), code))
	got, _ := e.db.AccessCode(ctx, ac.ID)
	assert.Equal(t, agent.AccessCodeRemoving, got.Status)

	e.fake.ClearFaults()
	_, err = svc.Resume(ctx)
	require.NoError(t, err)
	got, _ = e.db.AccessCode(ctx, ac.ID)
	assert.Equal(t, agent.AccessCodeUnset, got.Status)
	assert.Equal(t, shape.Users, e.fake.UserCount())
}

func TestSaltoFailureDuringCreateRollsBack(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{})
	e.fake.Inject(saltokstest.Fault{Kind: saltokstest.ServerError, Method: "PUT", Path: "/pin", Times: -1})
	ac, _, err := e.service(t, nil, nil).Create(ctx, accesscode.Request{Door: "kiosk"})
	var ae *accesscode.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, accesscode.SaltoFailed, ae.Type)
	got, _ := e.db.AccessCode(ctx, ac.ID)
	assert.Equal(t, agent.AccessCodeUnset, got.Status)
	assert.Equal(t, shape.Users, e.fake.UserCount())
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{})
	svc := e.service(t, nil, nil)
	now := e.fake.Now()
	short, _, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", EndsAt: now.Add(time.Hour)})
	require.NoError(t, err)
	long, _, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", EndsAt: now.Add(48 * time.Hour)})
	require.NoError(t, err)
	ongoing, _, err := svc.Create(ctx, accesscode.Request{Door: "kiosk"})
	require.NoError(t, err)

	done, err := svc.Expire(ctx)
	require.NoError(t, err)
	assert.Empty(t, done)

	e.fake.Advance(2 * time.Hour)
	done, err = svc.Expire(ctx)
	require.NoError(t, err)
	require.Len(t, done, 1)
	assert.Equal(t, short.ID, done[0].ID)
	for id, want := range map[string]agent.AccessCodeStatus{short.ID: agent.AccessCodeUnset, long.ID: agent.AccessCodeSet, ongoing.ID: agent.AccessCodeSet} {
		got, err := e.db.AccessCode(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got.Status, id)
	}
	_, ok := e.fake.FindUser(short.SaltoUserID)
	assert.False(t, ok, "the seat is free again")
}
