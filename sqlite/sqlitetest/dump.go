// Package sqlitetest helps tests look at a Portier cache from outside.
package sqlitetest

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	_ "github.com/mattn/go-sqlite3" // the driver, as the sqlite package registers it
)

// Dump hashes every row of the cache at path, read through its own
// read-only connection: two equal dumps mean the same content. Left out are
// the access codes (the gateway's own state), the sync bookkeeping
// (meta keys sync.*) and the apply time, plus any meta keys in ignoreMeta.
func Dump(path string, ignoreMeta ...string) (string, error) {
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var tables []string
	trows, err := conn.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('access_codes') ORDER BY name")
	if err != nil {
		return "", err
	}
	for trows.Next() {
		var n string
		if err := trows.Scan(&n); err != nil {
			return "", err
		}
		tables = append(tables, n)
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return "", err
	}
	ignore := append([]string{"snapshot.applied_at"}, ignoreMeta...)
	h := sha256.New()
	for _, table := range tables {
		q, args := "SELECT * FROM "+table, []any(nil)
		if table == "meta" {
			q += " WHERE key NOT LIKE 'sync.%' AND key NOT IN (?" + strings.Repeat(", ?", len(ignore)-1) + ")"
			for _, k := range ignore {
				args = append(args, k)
			}
		}
		lines, err := rowsOf(conn, q, args...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", table, err)
		}
		fmt.Fprintf(h, "%s\n%s\n", table, strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DumpCache hashes the site snapshot in the cache at path — the locks,
// users, access groups, Salto credentials and site facts a sync writes, and
// nothing the gateway adds itself (events, commands, enrolments, access
// codes, bookkeeping) — read through its own connection: two equal dumps
// mean the same snapshot, whichever way it got there.
func DumpCache(path string) (string, error) {
	conn, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	h := sha256.New()
	for _, q := range []string{
		"SELECT * FROM locks",
		"SELECT * FROM users",
		"SELECT * FROM access_groups",
		"SELECT * FROM credentials WHERE origin = 'salto'",
		"SELECT * FROM meta WHERE key LIKE 'site.%'",
	} {
		lines, err := rowsOf(conn, q)
		if err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
		fmt.Fprintf(h, "%s\n%s\n", q, strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rowsOf prints every row q returns, sorted.
func rowsOf(conn *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := conn.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var lines []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("%v", vals))
	}
	sort.Strings(lines)
	return lines, rows.Err()
}
