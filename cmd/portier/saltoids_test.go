package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
)

// TestUpperCaseSaltoIDsOpenDoors pins the "Salto ids are GUIDs, compared as
// strings" defect end to end (config → sync → decision): a door whose
// salto_locks or salto_access_groups id is written in upper case used to open
// for nobody, and the sync warned that the existing group did not exist.
func TestUpperCaseSaltoIDsOpenDoors(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 40, Groups: 4, Locks: 2}, saltokstest.Options{})
	s := writeSaltoConfig(t, fake, 0o600, []string{strings.ToUpper(saltokstest.LockID(0))}, "")
	b, err := os.ReadFile(s.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(b), "salto_access_groups: ["+saltokstest.GroupID(1)+"]", "salto_access_groups: ["+strings.ToUpper(saltokstest.GroupID(1))+"]", 1)
	cfg = strings.Replace(cfg, "mode: pin", "mode: card_or_pin", 1)
	require.NotEqual(t, string(b), cfg)
	require.NoError(t, os.WriteFile(s.config, []byte(cfg), 0o644))

	out, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	assert.NotContains(t, errOut, "warning")
	assert.Contains(t, out, "40 users, 3 access groups for the configured doors")

	monday := "2026-06-01T10:00" // inside every generated schedule
	for _, tc := range []struct {
		door string
		user int
		code int
		want string
	}{
		{"front", 0, 0, "GRANTED"}, // group 0 holds lock 0
		{"front", 2, 0, "GRANTED"}, // so does group 2
		{"kiosk", 1, 0, "GRANTED"}, // group 1, mapped in upper case
		{"kiosk", 0, 1, "no_access_to_door"},
	} {
		out, errOut, code := runPortier(t, nil, "check", "--config", s.config, "--door", tc.door, "--tag", saltokstest.TagNumber(tc.user), "--at", monday)
		assert.Equal(t, tc.code, code, "%s user %d: %s%s", tc.door, tc.user, out, errOut)
		assert.Contains(t, out, tc.want, "%s user %d", tc.door, tc.user)
	}
}

// TestNotAUUIDIsAConfigError: a door's Salto id that is no GUID is refused
// where it is written, with its file and line.
func TestNotAUUIDIsAConfigError(t *testing.T) {
	path := writeConfig(t, "gateway_id: g\ndoors:\n  - id: front\n    mode: card\n    salto_locks:\n      - 0b5e0000-0000-4000-8000-000000000001\n      - not-a-uuid\n")
	_, errOut, code := runPortier(t, nil, "check-config", "--config", path)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+`:7: doors[0].salto_locks: "not-a-uuid" is not a Salto KS id`)
	_, errOut, code = runPortier(t, []string{"STATE_DIRECTORY=" + t.TempDir()}, "import", "--config", path, demoSite)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, path+`: line 7: doors[0].salto_locks: "not-a-uuid" is not a Salto KS id`)
}

// TestUnknownLockIsReportedBySyncAndStatus pins the unknown-id defect for
// the CLI: a lock id the site lacks (a typo) used to make the door open for
// nobody without a word. Now the sync warns, naming the lock the site has,
// and the recorded sync state (what status shows) keeps the warning.
func TestUnknownLockIsReportedBySyncAndStatus(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 10, Groups: 2, Locks: 3}, saltokstest.Options{})
	typo := strings.Replace(saltokstest.LockID(1), "10c4", "10c5", 1)
	s := writeSaltoConfig(t, fake, 0o600, []string{saltokstest.LockID(0), typo}, "")
	want := `door "front": lock ` + typo + ` (salto_locks) is not on the Salto KS site, so it opens the door for nobody; the site has "Door 001" (` + saltokstest.LockID(1) + `)`

	_, errOut, code := runPortier(t, nil, "sync", "--config", s.config)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "warning: "+want)

	out, _, code := runPortier(t, nil, "sync", "--config", s.config, "--status")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "warning: "+want)
	out, _, code = runPortier(t, nil, "sync", "--config", s.config, "--status", "--json")
	require.Equal(t, 0, code)
	var st struct {
		ConfigMismatch []string `json:"config_mismatch"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.ConfigMismatch, 1)
	assert.Contains(t, st.ConfigMismatch[0], want)
}

// TestInitCheckComparesIDsAsSaltoDoes pins the GUID defect for
// `init --check`, which refused an existing lock written in upper case with
// "site has no lock …", and the unknown-id defect: a typo is refused naming
// the lock the site has.
func TestInitCheckComparesIDsAsSaltoDoes(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 1, Groups: 2, Locks: 3}, saltokstest.Options{})
	s := newInitSetup(t)
	out, errOut, code := runPortier(t, saltoEnv(fake), s.saltoArgs(fake, "--check", "--salto-locks", strings.ToUpper(saltokstest.LockID(1)))...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Salto KS: the door's locks and access groups exist")

	typo := strings.Replace(saltokstest.LockID(2), "10c4", "10c5", 1)
	other := newInitSetup(t)
	_, errOut, code = runPortier(t, saltoEnv(fake), other.saltoArgs(fake, "--check", "--salto-locks", typo)...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "site "+saltokstest.GeneratedSiteID+" has no lock "+typo)
	assert.Contains(t, errOut, "for lock "+typo+` the site has "Door 002" (`+saltokstest.LockID(2)+`)`)
	assert.NoFileExists(t, other.config)
}

// TestDaemonAlarmsAnUnknownLock: the running gateway records a
// salto_config_mismatch alarm for a door mapped to a lock the site does not
// have, and `portier status` shows it.
func TestDaemonAlarmsAnUnknownLock(t *testing.T) {
	fake := startFake(t, saltokstest.SiteShape{Users: 10, Groups: 2, Locks: 2}, saltokstest.Options{})
	o := fake.Options()
	dir := t.TempDir()
	secret, password := filepath.Join(dir, "client.secret"), filepath.Join(dir, "salto.password")
	require.NoError(t, os.WriteFile(secret, []byte(o.ClientSecret+"\n"), 0o600))
	require.NoError(t, os.WriteFile(password, []byte(o.Password+"\n"), 0o600))
	// runConfig's door front is on the demo site's lock 7c1e…0001, which
	// the generated site does not have.
	g := newGateway(t, "300ms", fmt.Sprintf("clock_sync_check: \"off\"\nsalto:\n  identity_url: %s\n  api_url: %s\n  site_id: %s\n"+
		"  client_id: %s\n  client_secret_file: %s\n  username: %s\n  password_file: %s\n",
		fake.URL(), fake.URL(), saltokstest.GeneratedSiteID, o.ClientID, secret, o.Username, password))
	g.start()
	g.follow()
	e := g.waitEvent(agent.EventSaltoConfigMismatch)
	assert.Equal(t, "front", e.Door)
	assert.Contains(t, e.Detail, `door "front": lock 7c1e4a52-0000-4000-8000-000000000001 (salto_locks) is not on the Salto KS site`)

	out, errOut, code := runPortier(t, g.env, "status", "--config", g.cfg, "--json")
	require.Equal(t, 0, code, errOut)
	var st struct{ Sync *sitesync.State }
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.NotNil(t, st.Sync)
	require.Len(t, st.Sync.ConfigMismatch, 1)
	assert.Equal(t, e.Detail, st.Sync.ConfigMismatch[0])
	out, _, code = runPortier(t, g.env, "status", "--config", g.cfg)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "warning: "+e.Detail)
}
