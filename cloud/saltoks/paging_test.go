package saltoks_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

const usersPath = "/sites/" + saltokstest.GeneratedSiteID + "/users"

// readUsers lists every user id in the order the pages were handed over.
func readUsers(t *testing.T, h *harness) ([]string, error) {
	t.Helper()
	var ids []string
	err := h.client.Users(context.Background(), saltokstest.GeneratedSiteID, "", func(p []saltoks.SiteUser) error {
		for _, u := range p {
			ids = append(ids, u.ID)
		}
		return nil
	})
	return ids, err
}

// TestPagesAreReadSideBySide pins the "sync at internet latency" defect for
// lists: once the first page gave the count, the other pages are requested
// together. The fake holds user pages until four wait at once; a client that
// reads one page after the other never gets there and its single attempt
// times out.
func TestPagesAreReadSideBySide(t *testing.T) {
	h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) {
		c.MaxAttempts, c.RequestTimeout = 1, 5*time.Second
	})
	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.Hold, Path: usersPath, Skip: 1, Times: 4})
	ids, err := readUsers(t, h)
	require.NoError(t, err)
	require.Len(t, ids, small.Users)
	assert.True(t, slices.IsSorted(ids), "pages are handed over in list order")
	// 40 users, 7 a page overlapping by one: the first page and 6 more.
	assert.Equal(t, 7, h.fake.Hits("GET /v1.2"+usersPath))
}

// TestInFlightBound: however many pages there are, no more requests than the
// bound are open at once, and the bound is reached.
func TestInFlightBound(t *testing.T) {
	h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) {
		c.MaxAttempts, c.RequestTimeout, c.PageSize, c.MaxInFlight = 1, 5*time.Second, 2, 3
	})
	h.fake.Inject(saltokstest.Fault{Kind: saltokstest.Hold, Path: usersPath, Skip: 1, Times: 3})
	ids, err := readUsers(t, h)
	require.NoError(t, err)
	require.Len(t, ids, small.Users)
	assert.Equal(t, 3, h.fake.PeakConcurrency())
	assert.Equal(t, 3, h.client.MaxInFlight())
}

// TestListChangingWhilePagesAreInFlight: the torn-list checks hold when the
// pages are requested side by side, in whatever order they are served, and
// the list changes between two of them. (One request at a time, so the
// change surely falls between two pages.)
func TestListChangingWhilePagesAreInFlight(t *testing.T) {
	for _, skip := range []int{1, 3, 5} {
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.MaxInFlight = 1 })
		h.fake.Inject(saltokstest.Fault{Kind: saltokstest.After, Path: usersPath, Skip: skip, Do: func() { h.fake.RemoveUser(saltokstest.UserID(20)) }})
		_, err := readUsers(t, h)
		var ie *saltoks.InconsistentError
		require.ErrorAs(t, err, &ie, "change after request %d", skip+1)
	}
}
