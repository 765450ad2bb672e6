// Package sqlite is Portier's local cache: the site snapshot every access
// decision is made from, stored in SQLite (github.com/mattn/go-sqlite3). It
// implements agent.CredentialCache.
//
// One writer connection (immediate transactions, so a read-then-write never
// fails with "database is locked"), a pool of readers, WAL so readers keep
// seeing the previous snapshot while a new one is written, and embedded,
// versioned migrations.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/portier-io/portier/agent"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune Open. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // defaults to time.Now
	// ReadOnly opens without migrating or writing (operator tools that only look).
	ReadOnly bool
}

// DB is the cache.
type DB struct {
	path   string
	w      *sql.DB // single writer
	r      *sql.DB // readers
	lookup *sql.Stmt
	log    *slog.Logger
	now    func() time.Time

	view     atomic.Pointer[agent.View]
	reloadMu sync.Mutex

	// appended is signalled (never blocking) after each outbox append, so an
	// in-process sender wakes without polling.
	appended chan struct{}

	// applyHook, when set (tests only, through export_test.go), runs inside
	// ApplySnapshot's transaction after each table; an error aborts the apply.
	applyHook func(table string) error
}

var (
	_ agent.CredentialCache = (*DB)(nil)
	_ agent.CardStore       = (*DB)(nil)
	_ agent.EnrolmentStore  = (*DB)(nil)
)

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// Open opens (creating if needed) the cache at path and brings its schema up
// to date. A file that is not a SQLite database, a corrupt database, or one
// written by a newer Portier is refused with an error naming the file; Open
// never deletes or rewrites data to "fix" it.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil, errors.New("sqlite: a file path is required (an in-memory database would differ per connection)")
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	if !opt.ReadOnly {
		// The cache holds names and PIN hashes: create it private. SQLite
		// gives the -wal and -shm files the same mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		f.Close()
	}
	db := &DB{path: path, log: opt.Logger, now: opt.Now, appended: make(chan struct{}, 1)}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	var err error
	if !opt.ReadOnly {
		if db.w, err = openWriter(path); err != nil {
			return nil, err
		}
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "5000")
	rq.Set("_query_only", "1")
	rq.Set("_cache_size", "-8192") // 8 MiB page cache per reader
	if opt.ReadOnly {
		rq.Set("mode", "ro")
	}
	if db.r, err = sql.Open("sqlite3", "file:"+escapePath(path)+"?"+rq.Encode()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.r.SetMaxOpenConns(4)
	db.r.SetMaxIdleConns(4)
	db.r.SetConnMaxLifetime(0)

	if !opt.ReadOnly {
		if err := db.migrate(ctx, len(migrations())); err != nil {
			db.Close()
			return nil, err
		}
	} else if err := db.checkVersion(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.lookup, err = db.r.PrepareContext(ctx, lookupSQL); err != nil {
		db.Close()
		return nil, db.explain(err)
	}
	if _, err := db.loadView(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openWriter opens the single writer connection: WAL, immediate transactions
// (a read-then-write never fails with "database is locked"), a busy timeout
// that covers an installer's sqlite3 shell, and synchronous=FULL: a gateway
// loses power without warning, and with NORMAL the last commits of the
// outbox (audit records) could vanish with it (powerfs shows it: committed
// rows lost at a cut with NORMAL, none with FULL). FULL syncs the WAL on
// every commit, which on an SD card costs milliseconds: the agent's events
// reach the outbox through agent.EventSpool, which commits whatever waits in
// one transaction (RecordAll), one sync per batch.
func openWriter(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "on")
	w, err := sql.Open("sqlite3", "file:"+escapePath(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	return w, nil
}

// escapePath keeps '?' and '#' in file names from being read as URI syntax.
func escapePath(p string) string {
	return strings.NewReplacer("?", "%3f", "#", "%23").Replace(p)
}

// checkHeader refuses an existing non-empty file that is not SQLite before the
// driver gets a chance to treat it as one.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("sqlite: %s is a directory, not a database file", path)
	}
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // empty file: SQLite initialises it
	}
	if !bytes.Equal(head[:n], sqliteMagic) {
		return fmt.Errorf("sqlite: %s is not a SQLite database (wrong file? it was left untouched)", path)
	}
	return nil
}

// explain turns driver errors about damaged files into an operator message.
func (db *DB) explain(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB) {
		return fmt.Errorf("sqlite: %s is damaged (%v); it was left untouched: restore it from a backup, or move it away and run `portier sync` to rebuild the cache", db.path, err)
	}
	return fmt.Errorf("sqlite: %s: %w", db.path, err)
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database.
func (db *DB) Close() error {
	var errs []error
	if db.lookup != nil {
		errs = append(errs, db.lookup.Close())
	}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() []migration {
	entries, err := migrationFS.ReadDir("migrations")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	out := make([]migration, len(entries))
	for i, e := range entries {
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		out[i] = migration{version: i + 1, name: e.Name(), sql: string(b)}
	}
	return out
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations()) }

func (db *DB) schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, db.explain(err)
	}
	return v, nil
}

func (db *DB) checkVersion(ctx context.Context) error {
	v, err := db.schemaVersion(ctx, db.r)
	if err != nil {
		return err
	}
	if v > SchemaVersion() {
		return db.newerError(v)
	}
	if v < SchemaVersion() {
		return fmt.Errorf("sqlite: %s has schema version %d, this portier needs %d: run `portier run` or `portier import` once to upgrade it", db.path, v, SchemaVersion())
	}
	return nil
}

func (db *DB) newerError(v int) error {
	return fmt.Errorf("sqlite: %s was written by a newer portier (schema version %d, this build knows up to %d); install that version again or restore an older backup — the file was left untouched", db.path, v, SchemaVersion())
}

// migrate applies migrations up to version target, each in its own transaction.
func (db *DB) migrate(ctx context.Context, target int) error {
	v, err := db.schemaVersion(ctx, db.w)
	if err != nil {
		return err
	}
	if v > SchemaVersion() {
		return db.newerError(v)
	}
	for _, m := range migrations()[v:target] {
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			return db.explain(err)
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %s: %w", m.name, db.explain(err))
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
			tx.Rollback()
			return db.explain(err)
		}
		if err := tx.Commit(); err != nil {
			return db.explain(err)
		}
		db.log.Info("cache schema migrated", "file", db.path, "version", m.version, "migration", m.name)
	}
	return nil
}

// Meta returns a value of the meta table.
func (db *DB) Meta(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := db.r.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, db.explain(err)
	}
	return v, true, nil
}

// MetaPrefix returns all meta entries whose key starts with prefix.
func (db *DB) MetaPrefix(ctx context.Context, prefix string) (map[string]string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT key, value FROM meta WHERE key >= ? AND key < ?", prefix, prefix+"\xff")
	if err != nil {
		return nil, db.explain(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, db.explain(err)
		}
		out[k] = v
	}
	return out, rows.Err()
}

// SetMeta writes meta entries in one transaction; an empty value deletes.
func (db *DB) SetMeta(ctx context.Context, kv map[string]string) error {
	if db.w == nil {
		return errors.New("sqlite: database opened read-only")
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for k, v := range kv {
			if err := setMeta(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func setMeta(ctx context.Context, tx *sql.Tx, k, v string) error {
	var err error
	if v == "" {
		_, err = tx.ExecContext(ctx, "DELETE FROM meta WHERE key = ?", k)
	} else {
		_, err = tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE value IS NOT excluded.value", k, v)
	}
	return err
}

// write runs fn in one immediate transaction on the writer.
func (db *DB) write(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.w == nil {
		return errors.New("sqlite: database opened read-only")
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.explain(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return db.explain(err)
	}
	return nil
}

// BindPINKey records the PIN key's fingerprint on first use and refuses a
// different key afterwards: with another key every stored PIN would silently
// become unknown.
func (db *DB) BindPINKey(ctx context.Context, fingerprint string) error {
	got, ok, err := db.Meta(ctx, metaPINKey)
	if err != nil {
		return err
	}
	if ok && got != fingerprint {
		return fmt.Errorf("sqlite: %s was built with a different PIN key (fingerprint %s, configured key %s): configure the original pin_key_file, or re-import the PINs", db.path, got, fingerprint)
	}
	if !ok && db.w != nil {
		return db.SetMeta(ctx, map[string]string{metaPINKey: fingerprint})
	}
	return nil
}

const (
	metaPINKey     = "pin_key_fingerprint"
	metaGeneration = "generation"
	metaSiteID     = "site.id"
	metaSiteUID    = "site.uid"
	metaSiteName   = "site.name"
	metaSiteZone   = "site.time_zone"
	metaAppliedAt  = "snapshot.applied_at"
)
