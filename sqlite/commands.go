package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CommandReceived is the status of a command whose id was claimed and whose
// outcome is not recorded yet.
const CommandReceived = "received"

// ClaimCommand records a remote command's id before it acts. It reports false,
// without changing anything, when the id was already recorded: the command
// is a duplicate or a replay.
func (db *DB) ClaimCommand(ctx context.Context, id, name string, expires time.Time) (bool, error) {
	var n int64
	now := db.now().UnixMilli()
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO commands(id, name, received_at, expires_at, status, error_type, updated_at)
			VALUES(?, ?, ?, ?, ?, '', ?) ON CONFLICT(id) DO NOTHING`, id, name, now, expires.UnixMilli(), CommandReceived, now)
		if err != nil {
			return fmt.Errorf("sqlite: claim command: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// FinishCommand records a claimed command's outcome.
func (db *DB) FinishCommand(ctx context.Context, id, status, errorType string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE commands SET status = ?, error_type = ?, updated_at = ? WHERE id = ?",
			status, errorType, db.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("sqlite: finish command: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: finish command %s: not claimed", id)
		}
		return nil
	})
}

// CommandRecord is one recorded command.
type CommandRecord struct {
	ID         string
	Name       string
	ReceivedAt time.Time
	ExpiresAt  time.Time
	Status     string
	ErrorType  string
}

// Command returns a recorded command; ok is false when the id is unknown.
func (db *DB) Command(ctx context.Context, id string) (CommandRecord, bool, error) {
	var r CommandRecord
	var recv, exp int64
	err := db.r.QueryRowContext(ctx, "SELECT id, name, received_at, expires_at, status, error_type FROM commands WHERE id = ?", id).
		Scan(&r.ID, &r.Name, &recv, &exp, &r.Status, &r.ErrorType)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, db.explain(err)
	}
	r.ReceivedAt, r.ExpiresAt = time.UnixMilli(recv).UTC(), time.UnixMilli(exp).UTC()
	return r, true, nil
}

// PruneCommands forgets commands that expired before the given time and
// returns how many.
func (db *DB) PruneCommands(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM commands WHERE expires_at < ?", before.UnixMilli())
		if err != nil {
			return fmt.Errorf("sqlite: prune commands: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
