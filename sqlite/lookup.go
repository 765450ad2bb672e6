package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
)

// lookupSQL is the whole cache read of a decision: the credential by primary
// key, its holder's packed facts, what is recorded about the card
// ("generation;fingerprint", both by primary key) and the snapshot
// generation — one statement, so all of it comes from the same committed
// snapshot. Scalar subqueries, not joins: measured on a 100,000-credential
// cache with a fingerprint for every UID (p50), the read without the card
// took 12 µs, with this subquery 18 µs, with a LEFT JOIN on cards 37 µs.
const lookupSQL = `
SELECT c.kind, c.origin, c.user_id, c.tag_number, c.starts_at, c.ends_at, c.label,
       (SELECT u.facts FROM users u WHERE u.id = c.user_id),
       (SELECT value FROM meta WHERE key = 'generation'),
       (SELECT k.generation || ';' || k.fingerprint FROM cards k WHERE k.key = c.key)
FROM credentials c
WHERE c.key = ?`

// Lookup implements agent.CredentialCache: the facts for one credential key
// (nil when unknown) and the view they belong to.
func (db *DB) Lookup(ctx context.Context, key string) (*agent.CredentialFacts, *agent.View, error) {
	for attempt := 0; ; attempt++ {
		f, gen, err := db.readFacts(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		v := db.view.Load()
		if f == nil || gen == v.Generation {
			if v.Generation == 0 {
				return nil, nil, agent.ErrNoSnapshot
			}
			return f, v, nil
		}
		// A snapshot landed since the view was loaded (perhaps by another
		// process): reload, and read again if yet another one landed meanwhile.
		if v, err = db.reloadView(ctx, gen); err != nil {
			return nil, nil, err
		}
		if v.Generation == gen || attempt == 2 {
			return f, v, nil
		}
	}
}

func (db *DB) readFacts(ctx context.Context, key string) (*agent.CredentialFacts, int64, error) {
	var (
		c              agent.Credential
		kind, origin   string
		cStart, cEnd   sql.NullInt64
		userFacts, gen sql.NullString
	)
	var card sql.NullString
	err := db.lookup.QueryRowContext(ctx, key).Scan(&kind, &origin, &c.UserID, &c.TagNumber, &cStart, &cEnd, &c.Label, &userFacts, &gen, &card)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, db.explain(err)
	}
	c.Key, c.Kind, c.Origin = key, agent.CredentialKind(kind), agent.Origin(origin)
	c.StartsAt, c.EndsAt = fromUnix(cStart), fromUnix(cEnd)
	f := &agent.CredentialFacts{Credential: c}
	if card.Valid {
		g, fp, _ := strings.Cut(card.String, ";")
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: card record of %s in %s: generation %q", key, db.path, g)
		}
		f.Card = agent.CardRecord{Fingerprint: fp, Generation: uint32(n)}
	}
	if userFacts.Valid {
		if f.User, f.GroupIDs, err = decodeFacts(c.UserID, userFacts.String); err != nil {
			return nil, 0, fmt.Errorf("%w of user %s in %s", err, c.UserID, db.path)
		}
	}
	g, _ := strconv.ParseInt(gen.String, 10, 64)
	return f, g, nil
}

// View returns the current in-memory view (site and access groups).
func (db *DB) View() *agent.View { return db.view.Load() }

// reloadView loads the view unless one at least as new as gen is in place.
func (db *DB) reloadView(ctx context.Context, gen int64) (*agent.View, error) {
	db.reloadMu.Lock()
	defer db.reloadMu.Unlock()
	if v := db.view.Load(); v != nil && v.Generation >= gen {
		return v, nil
	}
	return db.loadViewLocked(ctx)
}

func (db *DB) loadView(ctx context.Context) (*agent.View, error) {
	db.reloadMu.Lock()
	defer db.reloadMu.Unlock()
	return db.loadViewLocked(ctx)
}

// loadViewLocked reads site and groups in one read transaction and swaps the
// view in.
func (db *DB) loadViewLocked(ctx context.Context) (*agent.View, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, db.explain(err)
	}
	defer tx.Rollback()
	meta := map[string]string{}
	rows, err := tx.QueryContext(ctx, "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?, ?)",
		metaGeneration, metaSiteID, metaSiteUID, metaSiteName, metaSiteZone)
	if err != nil {
		return nil, db.explain(err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, db.explain(err)
		}
		meta[k] = v
	}
	rows.Close()
	v := &agent.View{Groups: map[string]*agent.AccessGroup{}, Location: time.UTC}
	v.Generation, _ = strconv.ParseInt(meta[metaGeneration], 10, 64)
	v.Site = agent.Site{ID: meta[metaSiteID], UID: meta[metaSiteUID], Name: meta[metaSiteName], TimeZone: meta[metaSiteZone]}
	if v.Site.TimeZone != "" {
		loc, err := v.Site.Location()
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", db.path, err)
		}
		v.Location = loc
	}
	grows, err := tx.QueryContext(ctx, "SELECT id, name, locks, schedules FROM access_groups")
	if err != nil {
		return nil, db.explain(err)
	}
	defer grows.Close()
	for grows.Next() {
		var g agent.AccessGroup
		var locks, scheds string
		if err := grows.Scan(&g.ID, &g.Name, &locks, &scheds); err != nil {
			return nil, db.explain(err)
		}
		if err := json.Unmarshal([]byte(locks), &g.Locks); err != nil {
			return nil, fmt.Errorf("sqlite: access group %s: locks: %w", g.ID, err)
		}
		if g.Schedules, err = decodeSchedules(scheds); err != nil {
			return nil, fmt.Errorf("sqlite: access group %s: %w", g.ID, err)
		}
		v.Groups[g.ID] = &g
	}
	if err := grows.Err(); err != nil {
		return nil, db.explain(err)
	}
	db.view.Store(v)
	return v, nil
}

func fromUnix(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(n.Int64, 0).UTC()
}

func toUnix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

// storedSchedule is the JSON form of a schedule in access_groups.schedules.
type storedSchedule struct {
	ID        string          `json:"id,omitempty"`
	Days      [7]bool         `json:"days"`
	Start     agent.TimeOfDay `json:"start"`
	End       agent.TimeOfDay `json:"end"`
	StartDate int64           `json:"start_date,omitempty"`
	EndDate   int64           `json:"end_date,omitempty"`
}

func encodeSchedules(ss []agent.Schedule) string {
	out := make([]storedSchedule, len(ss))
	for i, s := range ss {
		out[i] = storedSchedule{ID: s.ID, Days: s.Days, Start: s.Start, End: s.End, StartDate: int64(s.StartDate), EndDate: int64(s.EndDate)}
	}
	b, _ := json.Marshal(out) // plain values: cannot fail
	return string(b)
}

func decodeSchedules(s string) ([]agent.Schedule, error) {
	var in []storedSchedule
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	out := make([]agent.Schedule, len(in))
	for i, x := range in {
		out[i] = agent.Schedule{ID: x.ID, Days: x.Days, Start: x.Start, End: x.End, StartDate: agent.CivilTime(x.StartDate), EndDate: agent.CivilTime(x.EndDate)}
	}
	return out, nil
}
