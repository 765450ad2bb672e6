package saltoks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

// TestCheckDoors pins the "every configured lock and access group is
// checked" defect: an id the site lacks is found (the sync used to say
// nothing about a lock), an existing id in upper case is not (the sync used
// to warn that such a group "does not exist"), and the close matches named
// are the site's objects a typo away or named like the door.
func TestCheckDoors(t *testing.T) {
	var locks []saltoks.Lock
	for i := range 50 {
		locks = append(locks, saltoks.Lock{ID: saltokstest.LockID(i), CustomerReference: fmt.Sprintf("Door %03d", i)})
	}
	locks = append(locks, saltoks.Lock{ID: "7c1e4a52-0000-4000-8000-0000000000aa", CustomerReference: "Front door"})
	var groups []saltoks.AccessGroup
	for i := range 20 {
		groups = append(groups, saltoks.AccessGroup{ID: saltokstest.GroupID(i), CustomerReference: fmt.Sprintf("Group %04d", i)})
	}
	typo := strings.Replace(saltokstest.LockID(7), "10c4", "10c5", 1)
	doors := []agent.Door{
		{ID: "front", Name: "Front door", LockIDs: []string{strings.ToUpper(saltokstest.LockID(3)), "0b5e0000-1111-4000-8000-000000000001"}},
		{ID: "lab", LockIDs: []string{typo}, GroupIDs: []string{strings.ToUpper(saltokstest.GroupID(2)), "a9000000-0000-4000-8000-000000000031"}},
	}
	got := saltoks.CheckDoors(doors, locks, groups)
	require.Len(t, got, 3, "%v", got)

	assert.Equal(t, "front", got[0].Door)
	assert.Equal(t, saltoks.KindLock, got[0].Kind)
	require.NotEmpty(t, got[0].Close)
	assert.Equal(t, "Front door", got[0].Close[0].Name, "a lock named like the door")

	assert.Equal(t, typo, got[1].ID)
	require.NotEmpty(t, got[1].Close)
	assert.Equal(t, saltokstest.LockID(7), got[1].Close[0].ID, "one slip away")
	assert.LessOrEqual(t, len(got[1].Close), 3)

	assert.Equal(t, saltoks.KindAccessGroup, got[2].Kind)
	require.NotEmpty(t, got[2].Close)
	assert.Contains(t, []string{saltokstest.GroupID(1), saltokstest.GroupID(3)}, got[2].Close[0].ID)
	assert.Equal(t, `door "lab": access group a9000000-0000-4000-8000-000000000031 (salto_access_groups) is not on the Salto KS site, so it opens the door for nobody; the site has `+got[2].Matches(), got[2].String())

	assert.Empty(t, saltoks.CheckDoors([]agent.Door{{ID: "x", LockIDs: []string{saltokstest.LockID(1)}}}, locks, nil))
	far := saltoks.CheckDoors([]agent.Door{{ID: "x", GroupIDs: []string{"ffffffff-ffff-ffff-ffff-ffffffffffff"}}}, nil, groups)
	require.Len(t, far, 1)
	assert.Empty(t, far[0].Close, "nothing looks like it")
	assert.NotContains(t, far[0].String(), "the site has")
}
