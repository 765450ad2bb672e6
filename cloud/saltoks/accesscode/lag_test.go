package accesscode_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

// clocked is a service whose waits move the fake's clock instead of sleeping.
type clocked struct {
	svc      *accesscode.Service
	waited   time.Duration
	progress []accesscode.Progress
}

func (e *env) clockedService(t *testing.T) *clocked {
	t.Helper()
	c := &clocked{}
	var err error
	c.svc, err = accesscode.New(accesscode.Config{Salto: e.client, Store: e.db, SiteID: saltokstest.GeneratedSiteID, Doors: doors,
		PINKey: pinKey, Now: e.fake.Now,
		NewID: func() string { e.ids++; return fmt.Sprintf("ac_%d", e.ids) },
		Changed: func(ctx context.Context) error {
			_, err := e.eng.SyncOnce(ctx)
			return err
		},
		Progress: func(p accesscode.Progress) { c.progress = append(c.progress, p) },
		Sleep: func(ctx context.Context, d time.Duration) error {
			c.waited += d
			e.fake.Advance(d)
			return ctx.Err()
		}})
	require.NoError(t, err)
	return c
}

// TestCreateRidesOutSaltoLag pins the "access codes give up during Salto's
// eventual consistency" defect: Salto KS does not see a new guest for about a
// minute (404 2202, 403 2203), and creation used to fail at once and roll
// back. Now the steps after the guest's creation wait it out, saying so.
func TestCreateRidesOutSaltoLag(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{CreateLag: time.Minute})
	c := e.clockedService(t)
	ac, code, err := c.svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "cleaner"})
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeSet, ac.Status)
	assert.GreaterOrEqual(t, c.waited, time.Minute)
	assert.Less(t, c.waited, accesscode.DefaultConsistencyWait)
	require.NotEmpty(t, c.progress)
	assert.Contains(t, c.progress[0].String(), "Salto KS does not see the new guest yet (enable PIN use for the Salto guest:")
	assert.Contains(t, c.progress[0].String(), "error 2202")
	assert.Equal(t, accesscode.DefaultConsistencyWait, c.progress[0].Limit)
	assert.Contains(t, e.fake.GroupMembers(saltokstest.GroupID(0)), ac.SaltoPlatformID)
	assert.Equal(t, agent.ReasonGranted, e.decide(t, "kiosk", e.fake.Now().Add(time.Minute), code))
}

// TestCreateGivesUpAfterTheWait: when Salto still does not see the guest after
// the wait, the code is rolled back as any failure is; its guest, which
// Salto cannot delete before it sees it, is removed by a later Resume, so no
// seat is left taken.
func TestCreateGivesUpAfterTheWait(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{CreateLag: 10 * time.Minute})
	c := e.clockedService(t)
	ac, code, err := c.svc.Create(ctx, accesscode.Request{Door: "kiosk"})
	var ae *accesscode.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, accesscode.SaltoFailed, ae.Type)
	assert.Contains(t, err.Error(), "Salto KS still did not see the new guest 1m30s after its creation")
	assert.Empty(t, code)
	assert.Equal(t, accesscode.DefaultConsistencyWait, c.waited, "the wait is bounded")
	got, err := e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeRemoving, got.Status, "Salto cannot delete the guest it does not see yet")
	assert.Empty(t, got.CredentialKey)
	assert.Equal(t, shape.Users+1, e.fake.UserCount())

	touched, err := c.svc.Resume(ctx)
	require.Error(t, err, "still too early")
	assert.Len(t, touched, 1)
	e.fake.Advance(10 * time.Minute)
	_, err = c.svc.Resume(ctx)
	require.NoError(t, err)
	got, err = e.db.AccessCode(ctx, ac.ID)
	require.NoError(t, err)
	assert.Equal(t, agent.AccessCodeUnset, got.Status)
	assert.Equal(t, shape.Users, e.fake.UserCount(), "no orphan guest holds a seat")
}

// TestUnsetCodesArePruned pins "failed codes pile up in access-code list as
// unset": a code that failed (or was deleted) stays listed for a day, with
// its reason, and is then pruned; working codes stay.
func TestUnsetCodesArePruned(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, saltokstest.Options{SeatLimit: shape.Users + 1})
	svc := e.service(t, nil, nil)
	kept, _, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "kept"})
	require.NoError(t, err)
	_, _, err = svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "no seat"})
	require.Error(t, err)
	failed, _, err := svc.Create(ctx, accesscode.Request{Door: "kiosk", Name: "no seat either"})
	require.Error(t, err)
	list, err := svc.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)

	e.fake.Advance(accesscode.UnsetRetention - time.Minute)
	_, err = svc.Expire(ctx)
	require.NoError(t, err)
	list, err = svc.List(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 3, "kept for a day, so the reason can be read")

	e.fake.Advance(2 * time.Minute)
	_, err = svc.Expire(ctx)
	require.NoError(t, err)
	list, err = svc.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, kept.ID, list[0].ID)
	_, err = e.db.AccessCode(ctx, failed.ID)
	assert.ErrorIs(t, err, agent.ErrNotFound)

	// Resume prunes too (every access-code command runs it).
	_, err = svc.Delete(ctx, kept.ID)
	require.NoError(t, err)
	e.fake.Advance(accesscode.UnsetRetention + time.Minute)
	_, err = svc.Resume(ctx)
	require.NoError(t, err)
	list, err = svc.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}
