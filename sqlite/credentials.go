package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/portier-io/portier/agent"
)

// PutCredential adds or replaces a local credential (an access code's PIN, an
// imported UID). Local credentials survive every snapshot.
func (db *DB) PutCredential(ctx context.Context, c agent.Credential) error {
	if c.Key == "" || !c.Kind.Valid() || c.UserID == "" {
		return errors.New("sqlite: put credential: key, kind and user are required")
	}
	c.Origin = agent.OriginLocal
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, upsertSQL(localCredsTable, append([]string{"key"}, credCols...)),
			c.Key, string(c.Kind), string(c.Origin), c.UserID, c.TagNumber, toUnix(c.StartsAt), toUnix(c.EndsAt), c.Label)
		if err != nil {
			return fmt.Errorf("sqlite: put credential: %w", err)
		}
		return nil
	})
}

// DeleteCredential removes a local credential; it reports whether one existed.
func (db *DB) DeleteCredential(ctx context.Context, key string) (bool, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM credentials WHERE key = ? AND origin = 'local'", key)
		if err != nil {
			return fmt.Errorf("sqlite: delete credential: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n > 0, err
}

// Enrol records that the card with key (uid:… or wg:…) carries tagNumber and
// derives its credential at once; the card's fingerprint (none for a
// Wiegand card) replaces any recorded under the key, in the same
// transaction. It returns the holder of the tag number, or nil when no user
// holds it yet (the card then opens after the sync that brings its holder).
func (db *DB) Enrol(ctx context.Context, e agent.Enrolment) (*agent.UserRef, error) {
	if !strings.HasPrefix(e.Key, "uid:") && !strings.HasPrefix(e.Key, "wg:") {
		return nil, fmt.Errorf("sqlite: enrol: %q is not a card UID or Wiegand key", e.Key)
	}
	tag, err := agent.NormalizeTagNumber(e.TagNumber)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrol: %w", err)
	}
	var holder *agent.UserRef
	err = db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO enrolments(key, tag_number, enrolled_at) VALUES(?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET tag_number = excluded.tag_number, enrolled_at = excluded.enrolled_at`,
			e.Key, tag, db.now().Unix()); err != nil {
			return fmt.Errorf("sqlite: enrol: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cards(key, fingerprint, updated_at) VALUES(?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`,
			e.Key, e.Fingerprint, db.now().Unix()); err != nil {
			return fmt.Errorf("sqlite: enrol: %w", err)
		}
		var id, facts string
		err := tx.QueryRowContext(ctx, "SELECT id, facts FROM users WHERE tag_number = ?", tag).Scan(&id, &facts)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, "DELETE FROM credentials WHERE key = ? AND origin = 'enrolment'", e.Key)
			return err
		}
		if err != nil {
			return fmt.Errorf("sqlite: enrol: %w", err)
		}
		u, _, err := decodeFacts(id, facts)
		if err != nil {
			return err
		}
		holder = u.Ref()
		c := derivedCredential(e.Key, tag, id)
		_, err = tx.ExecContext(ctx, upsertSQL(saltoCredsTable, append([]string{"key"}, credCols...)),
			c.Key, string(c.Kind), string(c.Origin), c.UserID, c.TagNumber, nil, nil, "")
		return err
	})
	return holder, err
}

// LearnCard implements agent.CardStore: it records a card's fingerprint
// where none is recorded, and raises the recorded DESFire generation.
func (db *DB) LearnCard(ctx context.Context, l agent.CardLearning) error {
	if !strings.HasPrefix(l.Key, "uid:") && !strings.HasPrefix(l.Key, "tag:") {
		return fmt.Errorf("sqlite: learn card: %q is not a card UID or tag number key", l.Key)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cards(key, fingerprint, generation, updated_at) VALUES(?, ?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET
				fingerprint = CASE WHEN cards.fingerprint = '' THEN excluded.fingerprint ELSE cards.fingerprint END,
				generation = max(cards.generation, excluded.generation),
				updated_at = excluded.updated_at`,
			l.Key, l.Card.Fingerprint, l.Card.Generation, db.now().Unix())
		if err != nil {
			return fmt.Errorf("sqlite: learn card: %w", err)
		}
		return nil
	})
}

// Card returns what is recorded about the card credential key, whether or
// not a credential exists for it (a tag number nobody holds yet).
func (db *DB) Card(ctx context.Context, key string) (agent.CardRecord, error) {
	var r agent.CardRecord
	err := db.r.QueryRowContext(ctx, "SELECT fingerprint, generation FROM cards WHERE key = ?", key).Scan(&r.Fingerprint, &r.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, db.explain(err)
	}
	return r, nil
}

// Counts summarises the cache.
type Counts struct {
	Locks       int            `json:"locks"`
	Users       int            `json:"users"`
	Groups      int            `json:"access_groups"`
	Credentials map[string]int `json:"credentials"` // by kind
	Enrolments  int            `json:"enrolments"`
}

// Counts counts what the cache holds.
func (db *DB) Counts(ctx context.Context) (Counts, error) {
	c := Counts{Credentials: map[string]int{}}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, db.explain(err)
	}
	defer tx.Rollback()
	for _, q := range []struct {
		sql string
		dst *int
	}{
		{"SELECT count(*) FROM locks", &c.Locks},
		{"SELECT count(*) FROM users", &c.Users},
		{"SELECT count(*) FROM access_groups", &c.Groups},
		{"SELECT count(*) FROM enrolments", &c.Enrolments},
	} {
		if err := tx.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return c, db.explain(err)
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT kind, count(*) FROM credentials GROUP BY kind")
	if err != nil {
		return c, db.explain(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return c, db.explain(err)
		}
		c.Credentials[k] = n
	}
	return c, rows.Err()
}
