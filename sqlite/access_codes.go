package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/portier-io/portier/agent"
)

const accessCodeCols = "id, door, name, status, step, salto_user_id, salto_platform_id, salto_group_id, credential_key, starts_at, ends_at, created_at, updated_at, error"

// SaveAccessCode writes an access code record and, in the same transaction,
// adds the local credential put (when not nil) and deletes the local
// credential dropKey (when not ""). So the record and the PIN hash never
// disagree, also across a crash.
func (db *DB) SaveAccessCode(ctx context.Context, ac agent.AccessCode, put *agent.Credential, dropKey string) error {
	if ac.ID == "" || ac.Door == "" || ac.Status == "" {
		return errors.New("sqlite: save access code: id, door and status are required")
	}
	if put != nil && (put.Key == "" || !put.Kind.Valid() || put.UserID == "") {
		return errors.New("sqlite: save access code: the credential needs key, kind and user")
	}
	if ac.CreatedAt.IsZero() {
		ac.CreatedAt = db.now()
	}
	if ac.UpdatedAt.IsZero() {
		ac.UpdatedAt = db.now()
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if dropKey != "" {
			if _, err := tx.ExecContext(ctx, "DELETE FROM credentials WHERE key = ? AND origin = 'local'", dropKey); err != nil {
				return fmt.Errorf("sqlite: save access code: %w", err)
			}
		}
		if put != nil {
			c := *put
			c.Origin = agent.OriginLocal
			if _, err := tx.ExecContext(ctx, upsertSQL(localCredsTable, append([]string{"key"}, credCols...)),
				c.Key, string(c.Kind), string(c.Origin), c.UserID, c.TagNumber, toUnix(c.StartsAt), toUnix(c.EndsAt), c.Label); err != nil {
				return fmt.Errorf("sqlite: save access code: %w", err)
			}
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO access_codes("+accessCodeCols+") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"+
			` ON CONFLICT(id) DO UPDATE SET door = excluded.door, name = excluded.name, status = excluded.status, step = excluded.step,
			salto_user_id = excluded.salto_user_id, salto_platform_id = excluded.salto_platform_id, salto_group_id = excluded.salto_group_id,
			credential_key = excluded.credential_key, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
			updated_at = excluded.updated_at, error = excluded.error`,
			ac.ID, ac.Door, ac.Name, string(ac.Status), ac.Step, ac.SaltoUserID, ac.SaltoPlatformID, ac.SaltoGroupID, ac.CredentialKey,
			toUnix(ac.StartsAt), toUnix(ac.EndsAt), ac.CreatedAt.Unix(), ac.UpdatedAt.Unix(), ac.Error)
		if err != nil {
			return fmt.Errorf("sqlite: save access code: %w", err)
		}
		return nil
	})
}

// AccessCode returns one access code record, or agent.ErrNotFound.
func (db *DB) AccessCode(ctx context.Context, id string) (agent.AccessCode, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+accessCodeCols+" FROM access_codes WHERE id = ?", id)
	if err != nil {
		return agent.AccessCode{}, db.explain(err)
	}
	list, err := scanAccessCodes(rows)
	if err != nil {
		return agent.AccessCode{}, db.explain(err)
	}
	if len(list) == 0 {
		return agent.AccessCode{}, fmt.Errorf("access code %q: %w", id, agent.ErrNotFound)
	}
	return list[0], nil
}

// AccessCodes lists every access code record, oldest first.
func (db *DB) AccessCodes(ctx context.Context) ([]agent.AccessCode, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+accessCodeCols+" FROM access_codes ORDER BY created_at, id")
	if err != nil {
		return nil, db.explain(err)
	}
	list, err := scanAccessCodes(rows)
	if err != nil {
		return nil, db.explain(err)
	}
	return list, nil
}

func scanAccessCodes(rows *sql.Rows) ([]agent.AccessCode, error) {
	defer rows.Close()
	var out []agent.AccessCode
	for rows.Next() {
		var ac agent.AccessCode
		var status string
		var starts, ends sql.NullInt64
		var created, updated int64
		if err := rows.Scan(&ac.ID, &ac.Door, &ac.Name, &status, &ac.Step, &ac.SaltoUserID, &ac.SaltoPlatformID, &ac.SaltoGroupID,
			&ac.CredentialKey, &starts, &ends, &created, &updated, &ac.Error); err != nil {
			return nil, err
		}
		ac.Status = agent.AccessCodeStatus(status)
		ac.StartsAt, ac.EndsAt = fromUnix(starts), fromUnix(ends)
		ac.CreatedAt, ac.UpdatedAt = fromUnix(sql.NullInt64{Int64: created, Valid: true}), fromUnix(sql.NullInt64{Int64: updated, Valid: true})
		out = append(out, ac)
	}
	return out, rows.Err()
}

// PruneAccessCodes deletes the records of access codes that are unset
// (deleted, expired, or never finished) and were last changed before before.
// Codes in any other state are kept whatever their age: they still hold, or
// are about to release, a Salto user and a credential.
func (db *DB) PruneAccessCodes(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM access_codes WHERE status = ? AND updated_at < ?", string(agent.AccessCodeUnset), before.Unix())
		if err != nil {
			return fmt.Errorf("sqlite: prune access codes: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
