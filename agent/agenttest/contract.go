package agenttest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// TestCredentialCache is the contract every agent.CredentialCache must meet.
// open returns a cache holding snap.
func TestCredentialCache(t *testing.T, open func(t *testing.T, snap *agent.Snapshot) agent.CredentialCache) {
	ctx := context.Background()
	site := Site()
	c := open(t, site)
	key := PINKey()

	t.Run("tag credential with holder and groups", func(t *testing.T) {
		f, v, err := c.Lookup(ctx, "tag:00000001")
		require.NoError(t, err)
		require.NotNil(t, f)
		require.NotNil(t, f.User)
		assert.Equal(t, "u-ada", f.User.ID)
		assert.Equal(t, "p-ada", f.User.PlatformID)
		assert.Equal(t, agent.KindTagNumber, f.Credential.Kind)
		assert.Equal(t, agent.OriginSalto, f.Credential.Origin)
		assert.Equal(t, []string{GroupAll}, f.GroupIDs)
		require.NotNil(t, v)
		assert.Equal(t, "Europe/Berlin", v.Location.String())
		g, ok := v.Group(GroupFlex)
		require.True(t, ok)
		assert.Equal(t, "Flex", g.Name)
		assert.Len(t, g.Schedules, 1)
		assert.Equal(t, []string{LockFront}, g.Locks)
	})
	t.Run("groups are sorted", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, "tag:00000002")
		require.NoError(t, err)
		assert.Equal(t, []string{GroupFlex, GroupLab}, f.GroupIDs)
	})
	t.Run("PIN with its own window", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, key.Key("777777"))
		require.NoError(t, err)
		require.NotNil(t, f)
		assert.Equal(t, agent.KindPIN, f.Credential.Kind)
		assert.Equal(t, agent.OriginLocal, f.Credential.Origin)
		assert.Equal(t, "2026-11-23T07:00:00Z", f.Credential.StartsAt.UTC().Format("2006-01-02T15:04:05Z"))
		assert.Equal(t, "2026-11-23T17:00:00Z", f.Credential.EndsAt.UTC().Format("2006-01-02T15:04:05Z"))
	})
	t.Run("enrolled UID opens for the tag holder", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, "uid:04A1B2C3")
		require.NoError(t, err)
		require.NotNil(t, f)
		assert.Equal(t, "u-ada", f.User.ID)
		assert.Equal(t, agent.OriginEnrolment, f.Credential.Origin)
		assert.Equal(t, agent.KindUID, f.Credential.Kind)
		assert.Equal(t, "00000001", f.Credential.TagNumber)
	})
	t.Run("user state comes through", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, "tag:00000003")
		require.NoError(t, err)
		assert.True(t, f.User.Blocked)
		f, _, err = c.Lookup(ctx, "tag:00000004")
		require.NoError(t, err)
		assert.Equal(t, agent.Suspended, f.User.Subscription)
		f, _, err = c.Lookup(ctx, "tag:00000005")
		require.NoError(t, err)
		assert.Equal(t, "2026-01-01T00:00:00Z", f.User.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
		f, _, err = c.Lookup(ctx, key.Key("999999"))
		require.NoError(t, err)
		assert.False(t, f.User.UsePIN)
	})
	t.Run("user in no group", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, "tag:00000008")
		require.NoError(t, err)
		require.NotNil(t, f.User)
		assert.Empty(t, f.GroupIDs)
	})
	t.Run("unknown key", func(t *testing.T) {
		f, _, err := c.Lookup(ctx, "uid:DEADBEEF")
		require.NoError(t, err)
		assert.Nil(t, f)
	})
}

// CardCache is a cache that also stores enrolments and what doors learn
// about cards (the SQLite cache; Cache).
type CardCache interface {
	agent.CredentialCache
	agent.EnrolmentStore
	agent.CardStore
}

// TestCardStore is the contract of a cache's card records: an enrolment's
// fingerprint comes back with the credential, learning never overwrites a
// recorded fingerprint and never lowers a generation, a new enrolment
// replaces the card's fingerprint. open returns a cache holding snap.
func TestCardStore(t *testing.T, open func(t *testing.T, snap *agent.Snapshot) CardCache) {
	ctx := context.Background()
	c := open(t, Site())
	card := func(key string) agent.CardRecord {
		t.Helper()
		f, _, err := c.Lookup(ctx, key)
		require.NoError(t, err)
		require.NotNil(t, f, key)
		return f.Card
	}
	const fpA, fpB = "fp1;uid=04A1B2C3;sak=08", "fp1;uid=04A1B2C3;sak=20"

	t.Run("nothing recorded", func(t *testing.T) {
		assert.Zero(t, card("uid:04A1B2C3"))
		assert.Zero(t, card("tag:00000001"))
	})
	t.Run("learning a first fingerprint", func(t *testing.T) {
		require.NoError(t, c.LearnCard(ctx, agent.CardLearning{Key: "uid:04A1B2C3", Card: agent.CardRecord{Fingerprint: fpA}}))
		assert.Equal(t, fpA, card("uid:04A1B2C3").Fingerprint)
		require.NoError(t, c.LearnCard(ctx, agent.CardLearning{Key: "uid:04A1B2C3", Card: agent.CardRecord{Fingerprint: fpB}}))
		assert.Equal(t, fpA, card("uid:04A1B2C3").Fingerprint, "a recorded fingerprint is never overwritten by learning")
	})
	t.Run("enrolment records the fingerprint and replaces the old one", func(t *testing.T) {
		u, err := c.Enrol(ctx, agent.Enrolment{Key: "uid:04A1B2C3", TagNumber: "00000001", Fingerprint: fpB})
		require.NoError(t, err)
		require.NotNil(t, u)
		assert.Equal(t, fpB, card("uid:04A1B2C3").Fingerprint)
		_, err = c.Enrol(ctx, agent.Enrolment{Key: "uid:04A1B2C3", TagNumber: "00000001"})
		require.NoError(t, err)
		assert.Empty(t, card("uid:04A1B2C3").Fingerprint, "a card enrolled without a fingerprint has none")
	})
	t.Run("generations only rise", func(t *testing.T) {
		require.NoError(t, c.LearnCard(ctx, agent.CardLearning{Key: "tag:00000002", Card: agent.CardRecord{Generation: 3}}))
		assert.Equal(t, uint32(3), card("tag:00000002").Generation)
		require.NoError(t, c.LearnCard(ctx, agent.CardLearning{Key: "tag:00000002", Card: agent.CardRecord{Generation: 2}}))
		assert.Equal(t, uint32(3), card("tag:00000002").Generation)
		require.NoError(t, c.LearnCard(ctx, agent.CardLearning{Key: "tag:00000002", Card: agent.CardRecord{Generation: 4}}))
		assert.Equal(t, uint32(4), card("tag:00000002").Generation)
		assert.Empty(t, card("tag:00000002").Fingerprint)
	})
}
