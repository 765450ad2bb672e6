package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	_ "time/tzdata"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/sqlite"
)

var ctx = context.Background()

func openDB(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{Now: func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) }})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db, path
}

func apply(t *testing.T, db *sqlite.DB, s *agent.Snapshot, opt sqlite.ApplyOptions) sqlite.ApplyStats {
	t.Helper()
	st, err := db.ApplySnapshot(ctx, s, opt)
	require.NoError(t, err)
	return st
}

func TestCacheContract(t *testing.T) {
	agenttest.TestCredentialCache(t, func(t *testing.T, snap *agent.Snapshot) agent.CredentialCache {
		db, _ := openDB(t)
		apply(t, db, snap, sqlite.ApplyOptions{})
		return db
	})
}

func TestCardStoreContract(t *testing.T) {
	agenttest.TestCardStore(t, func(t *testing.T, snap *agent.Snapshot) agenttest.CardCache {
		db, _ := openDB(t)
		apply(t, db, snap, sqlite.ApplyOptions{})
		return db
	})
}

func TestCardRecordsSurviveSnapshots(t *testing.T) {
	db, _ := openDB(t)
	site := agenttest.Site()
	apply(t, db, site, sqlite.ApplyOptions{})
	_, err := db.Enrol(ctx, agent.Enrolment{Key: "uid:11223344", TagNumber: "2", Fingerprint: "fp1;uid=11223344"})
	require.NoError(t, err)
	require.NoError(t, db.LearnCard(ctx, agent.CardLearning{Key: "tag:00000077", Card: agent.CardRecord{Generation: 2}}))
	site.Groups[0].Name = "Residents (renamed)"
	apply(t, db, site, sqlite.ApplyOptions{ReplaceLocal: true})
	f, _, err := db.Lookup(ctx, "uid:11223344")
	require.NoError(t, err)
	assert.Equal(t, "fp1;uid=11223344", f.Card.Fingerprint)
	// A tag nobody holds has no credential, but its generation is kept.
	rec, err := db.Card(ctx, "tag:00000077")
	require.NoError(t, err)
	assert.Equal(t, uint32(2), rec.Generation)
	rec, err = db.Card(ctx, "tag:00000078")
	require.NoError(t, err)
	assert.Zero(t, rec)
	assert.Error(t, db.LearnCard(ctx, agent.CardLearning{Key: "pin:abc", Card: agent.CardRecord{Fingerprint: "x"}}))
}

func TestEmptyCache(t *testing.T) {
	db, _ := openDB(t)
	f, _, err := db.Lookup(ctx, "tag:00000001")
	assert.ErrorIs(t, err, agent.ErrNoSnapshot)
	assert.Nil(t, f)
}

func TestApplyWritesOnlyChanges(t *testing.T) {
	db, _ := openDB(t)
	site := agenttest.Site()
	first := apply(t, db, site, sqlite.ApplyOptions{})
	assert.Positive(t, first.Inserted)
	assert.EqualValues(t, 1, first.Generation)

	again := apply(t, db, agenttest.Site(), sqlite.ApplyOptions{})
	assert.Zero(t, again.RowsWritten(), "an unchanged snapshot writes nothing")
	assert.EqualValues(t, 1, again.Generation)

	// Block bob, drop the lab group, move frank's tag, rename a lock.
	next := agenttest.Site()
	next.Users[1].Blocked = true
	next.Groups = next.Groups[:4]
	next.Users[5].TagNumber = "00000066"
	next.Locks[0].Name = "Front door"
	next.Credentials, _ = agent.TagCredentials(next.Users)
	st := apply(t, db, next, sqlite.ApplyOptions{})
	// users: bob (blocked, left the lab group) and frank (new tag) updated;
	// the lab group deleted; the lock renamed; tag:00000006 deleted and
	// tag:00000066 inserted.
	assert.EqualValues(t, 3, st.Updated, "bob, frank and the lock")
	assert.EqualValues(t, 1, st.Inserted, "frank's new tag")
	assert.EqualValues(t, 2, st.Deleted, "the lab group and frank's old tag")
	assert.EqualValues(t, 2, st.Generation)

	f, _, err := db.Lookup(ctx, "tag:00000002")
	require.NoError(t, err)
	assert.True(t, f.User.Blocked)
	assert.Equal(t, []string{agenttest.GroupFlex}, f.GroupIDs)
	f, _, err = db.Lookup(ctx, "tag:00000006")
	require.NoError(t, err)
	assert.Nil(t, f)
	f, _, err = db.Lookup(ctx, "tag:00000066")
	require.NoError(t, err)
	assert.Equal(t, "u-frank", f.User.ID)
	_, ok := db.View().Group(agenttest.GroupLab)
	assert.False(t, ok)
	raw, err := sql.Open("sqlite3", "file:"+db.Path()+"?mode=ro")
	require.NoError(t, err)
	defer raw.Close()
	var name string
	require.NoError(t, raw.QueryRow("SELECT name FROM locks WHERE id = ?", agenttest.LockFront).Scan(&name))
	assert.Equal(t, "Front door", name)
}

func mustCounts(t *testing.T, db *sqlite.DB) sqlite.Counts {
	c, err := db.Counts(ctx)
	require.NoError(t, err)
	return c
}

func TestLocalCredentialsSurviveSnapshots(t *testing.T) {
	db, _ := openDB(t)
	apply(t, db, agenttest.Site(), sqlite.ApplyOptions{})
	pin := agenttest.PINKey().Key("111111")

	saltoOnly := agenttest.Site()
	saltoOnly.Credentials, _ = agent.TagCredentials(saltoOnly.Users)
	st := apply(t, db, saltoOnly, sqlite.ApplyOptions{})
	assert.Zero(t, st.RowsWritten(), "a Salto snapshot without PINs leaves them alone")
	f, _, err := db.Lookup(ctx, pin)
	require.NoError(t, err)
	require.NotNil(t, f)

	st = apply(t, db, saltoOnly, sqlite.ApplyOptions{ReplaceLocal: true})
	assert.EqualValues(t, 5, st.Deleted, "four PINs and the Wiegand fob")
	f, _, err = db.Lookup(ctx, pin)
	require.NoError(t, err)
	assert.Nil(t, f)
}

func TestPutAndDeleteCredential(t *testing.T) {
	db, _ := openDB(t)
	apply(t, db, agenttest.Site(), sqlite.ApplyOptions{})
	key := agenttest.PINKey().Key("555555")
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, db.PutCredential(ctx, agent.Credential{Key: key, Kind: agent.KindPIN, UserID: "u-hank", EndsAt: end, Label: "code"}))
	f, _, err := db.Lookup(ctx, key)
	require.NoError(t, err)
	require.NotNil(t, f)
	assert.Equal(t, agent.OriginLocal, f.Credential.Origin)
	assert.Equal(t, end, f.Credential.EndsAt)
	assert.Equal(t, "code", f.Credential.Label)

	ok, err := db.DeleteCredential(ctx, key)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = db.DeleteCredential(ctx, "tag:00000001")
	require.NoError(t, err)
	assert.False(t, ok, "Salto credentials are not deleted locally")
	assert.Error(t, db.PutCredential(ctx, agent.Credential{Key: key}))
}

func TestEnrol(t *testing.T) {
	db, _ := openDB(t)
	site := agenttest.Site()
	apply(t, db, site, sqlite.ApplyOptions{})

	holder, err := db.Enrol(ctx, agent.Enrolment{Key: "uid:11223344", TagNumber: "2"})
	require.NoError(t, err)
	require.NotNil(t, holder)
	assert.Equal(t, "u-bob", holder.ID)
	f, _, err := db.Lookup(ctx, "uid:11223344")
	require.NoError(t, err)
	assert.Equal(t, "u-bob", f.User.ID)

	// A tag nobody holds yet: recorded, opens after the sync that brings its holder.
	holder, err = db.Enrol(ctx, agent.Enrolment{Key: "wg:H10301:1:2", TagNumber: "00000077"})
	require.NoError(t, err)
	assert.Nil(t, holder)
	f, _, err = db.Lookup(ctx, "wg:H10301:1:2")
	require.NoError(t, err)
	assert.Nil(t, f)
	site.Users[7].TagNumber = "00000077" // hank gets the tag
	site.Credentials = nil
	tags, _ := agent.TagCredentials(site.Users)
	site.Credentials = tags
	apply(t, db, site, sqlite.ApplyOptions{})
	f, _, err = db.Lookup(ctx, "wg:H10301:1:2")
	require.NoError(t, err)
	require.NotNil(t, f)
	assert.Equal(t, "u-hank", f.User.ID)
	assert.Equal(t, agent.KindWiegand, f.Credential.Kind)

	// The tag moves to someone else: the card follows the tag.
	site.Users[7].TagNumber, site.Users[0].TagNumber = "", "00000077"
	site.Credentials, _ = agent.TagCredentials(site.Users)
	apply(t, db, site, sqlite.ApplyOptions{})
	f, _, err = db.Lookup(ctx, "wg:H10301:1:2")
	require.NoError(t, err)
	assert.Equal(t, "u-ada", f.User.ID)

	_, err = db.Enrol(ctx, agent.Enrolment{Key: "pin:abc", TagNumber: "1"})
	assert.Error(t, err)
	_, err = db.Enrol(ctx, agent.Enrolment{Key: "uid:11223344", TagNumber: "x"})
	assert.Error(t, err)
}

func TestApplyIsAtomic(t *testing.T) {
	db, _ := openDB(t)
	apply(t, db, agenttest.Site(), sqlite.ApplyOptions{})
	before := mustCounts(t, db)

	next := agenttest.Site()
	next.Users = next.Users[:2] // drop most users…
	next.Groups = []agent.AccessGroup{next.Groups[1]}
	next.Credentials, _ = agent.TagCredentials(next.Users)
	next.Credentials = append(next.Credentials, agent.Credential{Key: agenttest.PINKey().Key("333333"), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: "u-ada"})

	for _, table := range []string{"locks", "users", "access_groups", "credentials"} {
		t.Run("fails after "+table, func(t *testing.T) {
			var sawOld bool
			sqlite.SetApplyHook(db, func(tb string) error {
				// Mid-transaction, a reader still decides from the old snapshot.
				f, _, err := db.Lookup(ctx, "tag:00000003")
				require.NoError(t, err)
				sawOld = f != nil && f.User.ID == "u-carol"
				if tb == table {
					return errors.New("power cut")
				}
				return nil
			})
			_, err := db.ApplySnapshot(ctx, next, sqlite.ApplyOptions{ReplaceLocal: true})
			sqlite.SetApplyHook(db, nil)
			require.ErrorContains(t, err, "power cut")
			assert.True(t, sawOld, "readers see the old snapshot during the apply")
			assert.Equal(t, before, mustCounts(t, db), "the old snapshot is whole")
			assert.EqualValues(t, 1, db.View().Generation)
			f, _, err := db.Lookup(ctx, agenttest.PINKey().Key("111111"))
			require.NoError(t, err)
			assert.NotNil(t, f)
		})
	}
	st := apply(t, db, next, sqlite.ApplyOptions{ReplaceLocal: true})
	assert.EqualValues(t, 2, st.Generation)
	assert.Equal(t, 2, mustCounts(t, db).Users)
}

func TestInvalidSnapshotIsRefused(t *testing.T) {
	db, _ := openDB(t)
	s := agenttest.Site()
	s.Groups[0].Members = append(s.Groups[0].Members, "p-nobody")
	_, err := db.ApplySnapshot(ctx, s, sqlite.ApplyOptions{})
	assert.ErrorContains(t, err, `member "p-nobody" is not a user's platform id`)
}

func TestSecondHandleSeesNewSnapshot(t *testing.T) {
	a, path := openDB(t)
	apply(t, a, agenttest.Site(), sqlite.ApplyOptions{})
	b, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	defer b.Close()

	next := agenttest.Site()
	next.Groups[1].Name = "Flex (renamed)"
	apply(t, b, next, sqlite.ApplyOptions{})

	// a's in-memory view is old; its next lookup notices the new generation.
	f, v, err := a.Lookup(ctx, "tag:00000002")
	require.NoError(t, err)
	require.NotNil(t, f)
	assert.EqualValues(t, 2, v.Generation)
	g, _ := v.Group(agenttest.GroupFlex)
	assert.Equal(t, "Flex (renamed)", g.Name)
}

// oldCache makes a cache at schema version v, written by rows (SQL), and
// returns its path and a raw connection to it.
func oldCache(t *testing.T, v int, rows string) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sqlite.OpenAt(ctx, path, v)
	require.NoError(t, err)
	require.NoError(t, sqlite.CloseWriter(old))
	raw, err := sql.Open("sqlite3", "file:"+path)
	require.NoError(t, err)
	_, err = raw.Exec(rows)
	require.NoError(t, err)
	return path, raw
}

func TestMigrationFromOlderSchema(t *testing.T) {
	path, raw := oldCache(t, 1, `INSERT INTO meta(key, value) VALUES ('generation', '7'), ('site.id', 's'), ('site.time_zone', 'Europe/Berlin');
		INSERT INTO users VALUES ('u1', 'p1', '00000042', '1'||char(31)||'p1'||char(31)||'Old'||char(31)||'User'||char(31)||char(31)||char(31)||'00000042'||char(31)||'0'||char(31)||'subscribed'||char(31)||char(31)||'1'||char(31));
		INSERT INTO credentials VALUES ('tag:00000042', 'tag_number', 'salto', 'u1', '00000042', NULL, NULL, '')`)
	var v int
	require.NoError(t, raw.QueryRow("PRAGMA user_version").Scan(&v))
	assert.Equal(t, 1, v)
	raw.Close()

	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	defer db.Close()
	f, view, err := db.Lookup(ctx, "tag:00000042")
	require.NoError(t, err)
	assert.Equal(t, "Old", f.User.FirstName)
	assert.EqualValues(t, 7, view.Generation)
	_, err = db.Enrol(ctx, agent.Enrolment{Key: "uid:01020304", TagNumber: "42"})
	require.NoError(t, err, "the enrolments table arrived with migration 2")
}

// TestMigrationAddsCards: a cache from before card fingerprints keeps its
// enrolments, which come back without a fingerprint (the fingerprint
// policy decides their next tap), and learns them from then on.
func TestMigrationAddsCards(t *testing.T) {
	path, raw := oldCache(t, 7, `INSERT INTO meta(key, value) VALUES ('generation', '3'), ('site.time_zone', 'UTC');
		INSERT INTO users VALUES ('u1', 'p1', '00000042', '1'||char(31)||'p1'||char(31)||'Old'||char(31)||'User'||char(31)||char(31)||char(31)||'00000042'||char(31)||'0'||char(31)||'subscribed'||char(31)||char(31)||'1'||char(31));
		INSERT INTO enrolments VALUES ('uid:04A1B2C3D4E5F6', '00000042', 1700000000);
		INSERT INTO credentials VALUES ('uid:04A1B2C3D4E5F6', 'uid', 'enrolment', 'u1', '00000042', NULL, NULL, '')`)
	_, err := raw.Exec("SELECT 1 FROM cards")
	require.Error(t, err, "no cards table before migration 8")
	raw.Close()

	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	defer db.Close()
	f, _, err := db.Lookup(ctx, "uid:04A1B2C3D4E5F6")
	require.NoError(t, err)
	require.NotNil(t, f)
	assert.Equal(t, "Old", f.User.FirstName)
	assert.Zero(t, f.Card, "enrolled before fingerprints: nothing recorded")
	require.NoError(t, db.LearnCard(ctx, agent.CardLearning{Key: "uid:04A1B2C3D4E5F6", Card: agent.CardRecord{Fingerprint: "fp1;uid=04A1B2C3D4E5F6"}}))
	f, _, err = db.Lookup(ctx, "uid:04A1B2C3D4E5F6")
	require.NoError(t, err)
	assert.Equal(t, "fp1;uid=04A1B2C3D4E5F6", f.Card.Fingerprint)
	assert.Equal(t, 8, sqlite.SchemaVersion())
}

func TestOpenRefusesWithoutTouching(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	newer := filepath.Join(dir, "newer.db")
	db, err := sqlite.Open(ctx, newer, sqlite.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	raw, err := sql.Open("sqlite3", "file:"+newer)
	require.NoError(t, err)
	_, err = raw.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	raw.Close()

	corrupt := make([]byte, 8192)
	copy(corrupt, "SQLite format 3\x00")
	for i := 100; i < len(corrupt); i++ {
		corrupt[i] = byte(i * 7)
	}
	tests := []struct {
		name, path, want string
	}{
		{"not sqlite", write("notes.db", []byte("door codes, do not lose\n")), "is not a SQLite database"},
		{"damaged", write("damaged.db", corrupt), "is damaged"},
		{"newer schema", newer, "was written by a newer portier (schema version 99"},
		{"directory", dir, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if st, _ := os.Stat(tt.path); !st.IsDir() {
				before, _ = os.ReadFile(tt.path)
			}
			_, err := sqlite.Open(ctx, tt.path, sqlite.Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), tt.path, "the error names the file")
			if before != nil {
				after, _ := os.ReadFile(tt.path)
				assert.Equal(t, before, after, "the file was left untouched")
			}
		})
	}
	_, err = sqlite.Open(ctx, ":memory:", sqlite.Options{})
	assert.Error(t, err)
}

func TestFileIsPrivate(t *testing.T) {
	_, path := openDB(t)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestMetaAndPINKey(t *testing.T) {
	db, _ := openDB(t)
	require.NoError(t, db.SetMeta(ctx, map[string]string{"sync.last_attempt": "a", "sync.last_success": "b", "other": "c"}))
	v, ok, err := db.Meta(ctx, "sync.last_attempt")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "a", v)
	m, err := db.MetaPrefix(ctx, "sync.")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"sync.last_attempt": "a", "sync.last_success": "b"}, m)
	require.NoError(t, db.SetMeta(ctx, map[string]string{"other": ""}))
	_, ok, err = db.Meta(ctx, "other")
	require.NoError(t, err)
	assert.False(t, ok)

	require.NoError(t, db.BindPINKey(ctx, "aaaa"))
	require.NoError(t, db.BindPINKey(ctx, "aaaa"))
	assert.ErrorContains(t, db.BindPINKey(ctx, "bbbb"), "different PIN key")
}

func TestReadOnlyOpen(t *testing.T) {
	db, path := openDB(t)
	apply(t, db, agenttest.Site(), sqlite.ApplyOptions{})
	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	f, _, err := ro.Lookup(ctx, "tag:00000001")
	require.NoError(t, err)
	assert.NotNil(t, f)
	assert.Error(t, ro.SetMeta(ctx, map[string]string{"x": "y"}))
}
