package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/sqlite"
)

// largeCache builds the 1,000,000-credential cache once per test binary.
var largeCache = sync.OnceValues(func() (*agenttest.Generated, string) {
	gen := agenttest.Generate(agenttest.LargeSite())
	dir, err := os.MkdirTemp("", "portier-bench-")
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "large.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	if _, err := db.ApplySnapshot(context.Background(), gen.Snapshot, sqlite.ApplyOptions{}); err != nil {
		panic(err)
	}
	if err := db.Close(); err != nil {
		panic(err)
	}
	return gen, path
})

func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(float64(len(s)-1)*p)].Nanoseconds()) / 1e3
}

// BenchmarkDecideLargeCache measures the whole decision path (key, cache
// read, pure decision) against the 1M-credential cache, and beside it the
// physical floor: one prepared primary-key read of a credential row.
func BenchmarkDecideLargeCache(b *testing.B) {
	gen, path := largeCache()
	ctx := context.Background()

	// Open time: what a restart costs before the first tap can be decided.
	var opens []time.Duration
	var db *sqlite.DB
	for range 5 {
		start := time.Now()
		d, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(b, err)
		opens = append(opens, time.Since(start))
		if db != nil {
			db.Close()
		}
		db = d
	}
	defer db.Close()

	presented := append(slices.Clone(gen.Samples), gen.Unknown...)
	dc := &agent.Decider{Cache: db, PINKey: agenttest.PINKey()}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	keys := make([]string, len(presented))
	for i, p := range presented {
		keys[i], _ = p.Key(agenttest.PINKey())
	}

	raw, err := sql.Open("sqlite3", "file:"+path+"?_query_only=1&_cache_size=-8192")
	require.NoError(b, err)
	defer raw.Close()
	stmt, err := raw.PrepareContext(ctx, "SELECT kind, origin, user_id, tag_number, starts_at, ends_at, label FROM credentials WHERE key = ?")
	require.NoError(b, err)
	defer stmt.Close()

	// Warm both paths over the same keys so neither pays for cold pages.
	for i := range presented {
		dc.Decide(ctx, gen.Door, now, presented[i])
		rawLookup(b, stmt, keys[i])
	}
	b.ResetTimer()
	decide := make([]time.Duration, 0, len(presented))
	rawT := make([]time.Duration, 0, len(presented))
	granted := 0
	for range b.N {
		decide, rawT = decide[:0], rawT[:0]
		for i := range presented {
			start := time.Now()
			d, err := dc.Decide(ctx, gen.Door, now, presented[i])
			decide = append(decide, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if d.Granted {
				granted++
			}
			start = time.Now()
			rawLookup(b, stmt, keys[i])
			rawT = append(rawT, time.Since(start))
		}
	}
	b.StopTimer()
	if granted == 0 {
		b.Fatal("no decision was a grant: the benchmark measures nothing real")
	}
	st, err := os.Stat(path)
	require.NoError(b, err)
	p99, rawP99 := percentile(decide, 0.99), percentile(rawT, 0.99)
	b.ReportMetric(percentile(decide, 0.50), "decide_p50_us")
	b.ReportMetric(p99, "decide_p99_us")
	b.ReportMetric(rawP99, "raw_lookup_p99_us")
	b.ReportMetric(p99/rawP99, "decide_vs_raw_p99")
	b.ReportMetric(float64(slices.Min(opens).Microseconds())/1e3, "cache_open_ms")
	b.ReportMetric(float64(st.Size())/(1<<20), "cache_mb")
	b.ReportMetric(float64(len(presented)), "decisions")
}

func rawLookup(b *testing.B, stmt *sql.Stmt, key string) {
	var kind, origin, user, tag, label string
	var starts, ends sql.NullInt64
	err := stmt.QueryRow(key).Scan(&kind, &origin, &user, &tag, &starts, &ends, &label)
	if err != nil && err != sql.ErrNoRows {
		b.Fatal(err)
	}
}
