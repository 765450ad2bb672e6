package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
)

// ApplyOptions tune ApplySnapshot.
type ApplyOptions struct {
	// ReplaceLocal deletes local credentials (PINs, UIDs, access codes) that
	// the snapshot does not carry. Off by default: a Salto sync knows no PINs
	// and must not wipe them.
	ReplaceLocal bool
}

// ApplyStats says what an apply changed.
type ApplyStats struct {
	Inserted   int64
	Updated    int64
	Deleted    int64
	Generation int64 // snapshot generation after the apply
}

// RowsWritten is every row inserted, updated or deleted (meta included).
func (s ApplyStats) RowsWritten() int64 { return s.Inserted + s.Updated + s.Deleted }

// ApplySnapshot makes the cache hold snap, atomically: in one transaction that
// either commits whole or leaves the previous snapshot untouched (also when
// the process dies mid-way). Readers keep deciding from the previous snapshot
// until the commit. Only rows that differ are written, so applying an
// unchanged snapshot writes nothing.
//
// Salto data (site, locks, users with their memberships, groups, tag credentials) is
// replaced; local credentials in snap are added or updated (and others
// removed with ReplaceLocal); enrolments in snap are added; credentials
// derived from enrolments are recomputed against the new users.
func (db *DB) ApplySnapshot(ctx context.Context, snap *agent.Snapshot, opt ApplyOptions) (ApplyStats, error) {
	if err := snap.Validate(); err != nil {
		return ApplyStats{}, fmt.Errorf("sqlite: snapshot: %w", err)
	}
	var st ApplyStats
	err := db.write(ctx, func(tx *sql.Tx) error {
		a := &applier{ctx: ctx, tx: tx, st: &st, now: db.now().UTC(), hook: db.applyHook}
		a.site(snap.Site)
		a.diff(locksTable, locksSource(snap.Locks), true)
		a.diff(usersTable, usersSource(snap.Users, groupsByMember(snap.Groups)), true)
		a.diff(groupsTable, groupsSource(snap.Groups), true)
		var salto, local []agent.Credential
		for _, c := range snap.Credentials {
			if c.Origin == agent.OriginLocal {
				local = append(local, c)
			} else {
				salto = append(salto, c)
			}
		}
		a.diff(localCredsTable, credsSource(local), opt.ReplaceLocal)
		a.enrolments(snap.Enrolments)
		derived := a.derived(snap.Users)
		a.diff(saltoCredsTable, credsSource(append(salto, derived...)), true)
		if a.err != nil {
			return a.err
		}
		return a.bumpGeneration()
	})
	if err != nil {
		return ApplyStats{}, err
	}
	if _, err := db.reloadView(ctx, st.Generation); err != nil {
		return st, err
	}
	return st, nil
}

// table describes a snapshot table for the generic diff.
type table struct {
	name    string
	keyCols []string
	cols    []string // non-key columns
	where   string   // the subset of rows this diff manages
	guard   string   // extra condition for DO UPDATE (never overwrite rows outside the subset)
}

var (
	locksTable  = table{name: "locks", keyCols: []string{"id"}, cols: []string{"name"}}
	usersTable  = table{name: "users", keyCols: []string{"id"}, cols: []string{"platform_id", "tag_number", "facts"}}
	groupsTable = table{name: "access_groups", keyCols: []string{"id"}, cols: []string{"name", "locks", "schedules"}}
	credCols    = []string{"kind", "origin", "user_id", "tag_number", "starts_at", "ends_at", "label"}
	// Local credentials win over derived ones with the same key.
	localCredsTable = table{name: "credentials", keyCols: []string{"key"}, cols: credCols, where: "origin = 'local'"}
	saltoCredsTable = table{name: "credentials", keyCols: []string{"key"}, cols: credCols, where: "origin IN ('salto', 'enrolment')", guard: "credentials.origin <> 'local'"}
)

// source yields the desired rows of a table, sorted by key.
type source struct {
	n    int
	key  func(i int) string // key columns joined by \x00 (sorts like the tuple)
	keys func(i int) []any
	vals func(i int) []any
}

type applier struct {
	ctx  context.Context
	now  time.Time
	hook func(table string) error
	tx   *sql.Tx
	st   *ApplyStats
	err  error
}

func (a *applier) exec(q string, args ...any) int64 {
	if a.err != nil {
		return 0
	}
	res, err := a.tx.ExecContext(a.ctx, q, args...)
	if err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: %w", err)
		return 0
	}
	n, _ := res.RowsAffected()
	return n
}

func (a *applier) site(s agent.Site) {
	for k, v := range map[string]string{metaSiteID: s.ID, metaSiteUID: s.UID, metaSiteName: s.Name, metaSiteZone: s.TimeZone} {
		if v == "" {
			a.st.Deleted += a.exec("DELETE FROM meta WHERE key = ?", k)
			continue
		}
		a.st.Updated += a.exec("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value", k, v)
	}
}

// diff merges the table's current rows (in key order) with the desired rows
// and writes only the differences. Writes are collected first and run after
// the read finishes, so the scan never sees its own changes.
func (a *applier) diff(t table, src source, deleteMissing bool) {
	if a.err != nil {
		return
	}
	all := append(slices.Clone(t.keyCols), t.cols...)
	q := "SELECT " + strings.Join(all, ", ") + " FROM " + t.name
	if t.where != "" {
		q += " WHERE " + t.where
	}
	q += " ORDER BY " + strings.Join(t.keyCols, ", ")
	rows, err := a.tx.QueryContext(a.ctx, q)
	if err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: read %s: %w", t.name, err)
		return
	}
	var deletes [][]any
	var upserts, inserts []int
	cur := make([]any, len(all))
	ptrs := make([]any, len(all))
	for i := range cur {
		ptrs[i] = &cur[i]
	}
	i := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			a.err = fmt.Errorf("sqlite: apply snapshot: read %s: %w", t.name, err)
			return
		}
		k := joinKey(cur[:len(t.keyCols)])
		for i < src.n && src.key(i) < k {
			inserts = append(inserts, i)
			i++
		}
		if i < src.n && src.key(i) == k {
			if !sameValues(cur[len(t.keyCols):], src.vals(i)) {
				upserts = append(upserts, i)
			}
			i++
			continue
		}
		if deleteMissing {
			deletes = append(deletes, slices.Clone(cur[:len(t.keyCols)]))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: read %s: %w", t.name, err)
		return
	}
	for ; i < src.n; i++ {
		inserts = append(inserts, i)
	}
	defer a.runHook(t.name)

	if len(deletes) > 0 {
		where := make([]string, len(t.keyCols))
		for j, c := range t.keyCols {
			where[j] = c + " = ?"
		}
		del, err := a.tx.PrepareContext(a.ctx, "DELETE FROM "+t.name+" WHERE "+strings.Join(where, " AND "))
		if err != nil {
			a.err = fmt.Errorf("sqlite: apply snapshot: %w", err)
			return
		}
		for _, k := range deletes {
			a.st.Deleted += a.count(del.ExecContext(a.ctx, k...))
		}
		del.Close()
	}
	if len(inserts)+len(upserts) == 0 || a.err != nil {
		return
	}
	ins, err := a.tx.PrepareContext(a.ctx, upsertSQL(t, all))
	if err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: %w", err)
		return
	}
	defer ins.Close()
	args := make([]any, 0, len(all))
	for _, batch := range []struct {
		idx     []int
		counter *int64
	}{{inserts, &a.st.Inserted}, {upserts, &a.st.Updated}} {
		for _, j := range batch.idx {
			args = append(append(args[:0], src.keys(j)...), src.vals(j)...)
			*batch.counter += a.count(ins.ExecContext(a.ctx, args...))
			if a.err != nil {
				return
			}
		}
	}
}

func (a *applier) runHook(table string) {
	if a.hook != nil && a.err == nil {
		a.err = a.hook(table)
	}
}

func (a *applier) count(res sql.Result, err error) int64 {
	if err != nil {
		if a.err == nil {
			a.err = fmt.Errorf("sqlite: apply snapshot: %w", err)
		}
		return 0
	}
	n, _ := res.RowsAffected()
	return n
}

func upsertSQL(t table, all []string) string {
	q := "INSERT INTO " + t.name + "(" + strings.Join(all, ", ") + ") VALUES(" + strings.TrimSuffix(strings.Repeat("?, ", len(all)), ", ") + ")"
	q += " ON CONFLICT(" + strings.Join(t.keyCols, ", ") + ") DO "
	if len(t.cols) == 0 {
		return q + "NOTHING"
	}
	set := make([]string, len(t.cols))
	for i, c := range t.cols {
		set[i] = c + " = excluded." + c
	}
	q += "UPDATE SET " + strings.Join(set, ", ")
	if t.guard != "" {
		q += " WHERE " + t.guard
	}
	return q
}

func joinKey(vals []any) string {
	if len(vals) == 1 {
		return asString(vals[0])
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = asString(v)
	}
	return strings.Join(parts, "\x00")
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

// sameValues compares stored values (int64, string, []byte, nil) with desired
// ones (int64, string, nil).
func sameValues(cur, want []any) bool {
	for i := range cur {
		c := cur[i]
		if b, ok := c.([]byte); ok {
			c = string(b)
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

func keyed(n int, key func(int) string, keys func(int) []any, vals func(int) []any) source {
	return source{n: n, key: key, keys: keys, vals: vals}
}

func sortedBy[T any](in []T, key func(T) string) []T {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}

func locksSource(in []agent.Lock) source {
	ls := sortedBy(in, func(l agent.Lock) string { return l.ID })
	return keyed(len(ls), func(i int) string { return ls[i].ID },
		func(i int) []any { return []any{ls[i].ID} },
		func(i int) []any { return []any{ls[i].Name} })
}

func usersSource(in []agent.User, groupsOf map[string][]string) source {
	us := sortedBy(in, func(u agent.User) string { return u.ID })
	return keyed(len(us), func(i int) string { return us[i].ID },
		func(i int) []any { return []any{us[i].ID} },
		func(i int) []any {
			u := us[i]
			return []any{u.PlatformID, u.TagNumber, encodeFacts(u, groupsOf[u.PlatformID])}
		})
}

func groupsSource(in []agent.AccessGroup) source {
	gs := sortedBy(in, func(g agent.AccessGroup) string { return g.ID })
	return keyed(len(gs), func(i int) string { return gs[i].ID },
		func(i int) []any { return []any{gs[i].ID} },
		func(i int) []any {
			locks := slices.Clone(gs[i].Locks)
			slices.Sort(locks)
			if locks == nil {
				locks = []string{}
			}
			b, _ := json.Marshal(locks)
			return []any{gs[i].Name, string(b), encodeSchedules(gs[i].Schedules)}
		})
}

func credsSource(in []agent.Credential) source {
	cs := sortedBy(in, func(c agent.Credential) string { return c.Key })
	return keyed(len(cs), func(i int) string { return cs[i].Key },
		func(i int) []any { return []any{cs[i].Key} },
		func(i int) []any {
			c := cs[i]
			return []any{string(c.Kind), string(c.Origin), c.UserID, c.TagNumber, toUnix(c.StartsAt), toUnix(c.EndsAt), c.Label}
		})
}

// enrolments adds the snapshot's enrolments (an import can carry them).
func (a *applier) enrolments(es []agent.Enrolment) {
	for _, e := range es {
		n, _ := agent.NormalizeTagNumber(e.TagNumber) // validated
		a.st.Inserted += a.exec(`INSERT INTO enrolments(key, tag_number, enrolled_at) VALUES(?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET tag_number = excluded.tag_number, enrolled_at = excluded.enrolled_at
			WHERE tag_number <> excluded.tag_number`, e.Key, n, a.now.Unix())
	}
}

// derived computes the credentials implied by every enrolment: the enrolled
// card opens for whoever holds its tag number in the new snapshot.
func (a *applier) derived(users []agent.User) []agent.Credential {
	if a.err != nil {
		return nil
	}
	holder := make(map[string]string, len(users))
	for _, u := range users {
		if u.TagNumber != "" {
			holder[u.TagNumber] = u.ID
		}
	}
	rows, err := a.tx.QueryContext(a.ctx, "SELECT key, tag_number FROM enrolments")
	if err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: read enrolments: %w", err)
		return nil
	}
	defer rows.Close()
	var out []agent.Credential
	for rows.Next() {
		var key, tag string
		if err := rows.Scan(&key, &tag); err != nil {
			a.err = fmt.Errorf("sqlite: apply snapshot: read enrolments: %w", err)
			return nil
		}
		if uid, ok := holder[tag]; ok {
			out = append(out, derivedCredential(key, tag, uid))
		}
	}
	if err := rows.Err(); err != nil {
		a.err = fmt.Errorf("sqlite: apply snapshot: read enrolments: %w", err)
	}
	return out
}

func derivedCredential(key, tag, userID string) agent.Credential {
	kind := agent.KindUID
	if strings.HasPrefix(key, "wg:") {
		kind = agent.KindWiegand
	}
	return agent.Credential{Key: key, Kind: kind, Origin: agent.OriginEnrolment, UserID: userID, TagNumber: tag}
}

// bumpGeneration marks a new snapshot when anything changed, so readers (in
// this and other processes) reload their view. An unchanged apply writes
// nothing at all.
func (a *applier) bumpGeneration() error {
	var cur string
	err := a.tx.QueryRowContext(a.ctx, "SELECT value FROM meta WHERE key = ?", metaGeneration).Scan(&cur)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("sqlite: apply snapshot: %w", err)
	}
	gen, _ := strconv.ParseInt(cur, 10, 64)
	if a.st.RowsWritten() > 0 {
		gen++
		a.exec("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", metaGeneration, strconv.FormatInt(gen, 10))
		a.exec("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", metaAppliedAt, a.now.Format(time.RFC3339))
	}
	a.st.Generation = gen
	return a.err
}
