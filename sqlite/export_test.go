package sqlite

import (
	"context"
	"log/slog"
)

// SetApplyHook installs a hook that runs inside ApplySnapshot's transaction
// after each table.
func SetApplyHook(db *DB, fn func(table string) error) { db.applyHook = fn }

// OpenAt opens a database migrated only up to version v.
func OpenAt(ctx context.Context, path string, v int) (*DB, error) {
	db := &DB{path: path, log: slog.New(slog.DiscardHandler)}
	var err error
	db.w, err = openWriter(path)
	if err != nil {
		return nil, err
	}
	return db, db.migrate(ctx, v)
}

// CloseWriter closes a database made by OpenAt.
func CloseWriter(db *DB) error { return db.w.Close() }

// WriterPragma reads a PRAGMA on the writer connection.
func WriterPragma(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	err := db.w.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}
