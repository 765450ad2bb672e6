package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/portier-io/portier/cloud/saltoks/sitesync"
)

func cmdSync(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "sync", "--config FILE [--status] [--json] [--verbose]", needCache|needSalto)
	status := s.fs.Bool("status", false, "only print the sync state recorded in the cache")
	asJSON := s.fs.Bool("json", false, "print the result as JSON")
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if *status {
		s.need &^= needSalto // the state is in the cache
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	cfg, db := s.cfg, s.db
	if *status {
		st, err := sitesync.ReadState(ctx, db)
		if err != nil {
			return fail(e, exitFailed, "%v", err)
		}
		printState(e, st, *asJSON)
		return exitOK
	}
	var progress func(sitesync.Progress)
	if isTerminal(e.stderr) {
		progress = progressLine(e)
	}
	eng, err := newSyncEngine(ctx, cfg, db, s.salto, s.log, progress, nil, nil)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	res, err := eng.SyncOnce(ctx)
	if progress != nil {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	st, serr := sitesync.ReadState(context.WithoutCancel(ctx), db)
	if err != nil {
		fmt.Fprintf(e.stderr, "portier: sync failed: %v\n", err)
		if db.View().Generation == 0 {
			fmt.Fprintln(e.stderr, "the cache holds no site yet: doors deny every credential until a sync succeeds (or `portier import` loads a snapshot file)")
		} else {
			fmt.Fprintln(e.stderr, "the cache still holds the previous snapshot; doors keep deciding from it")
		}
		if serr == nil {
			fmt.Fprint(e.stderr, st.Describe(e.now()))
		}
		return exitFailed
	}
	if *asJSON {
		out := map[string]any{"site": res.Site, "users": res.Users, "access_groups": res.Groups, "locks": res.Locks,
			"tag_credentials": res.Credentials, "inserted": res.Applied.Inserted, "updated": res.Applied.Updated,
			"deleted": res.Applied.Deleted, "rows_written": res.Applied.RowsWritten(), "generation": res.Applied.Generation,
			"pulls": res.Attempts, "duration_ms": res.Duration.Milliseconds(), "warnings": nonNil(res.Warnings)}
		if kib := peakRSSKiB(); kib > 0 {
			out["peak_rss_kib"] = kib
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "synced site %q (%s) into %s in %s\n", res.Site.Name, res.Site.TimeZone, db.Path(), res.Duration.Round(time.Millisecond))
	fmt.Fprintf(e.stdout, "  %d users, %d access groups for the configured doors, %d locks, %d tag credentials\n",
		res.Users, res.Groups, res.Locks, res.Credentials)
	fmt.Fprintf(e.stdout, "  %d rows written (%d inserted, %d updated, %d deleted); snapshot generation %d\n",
		res.Applied.RowsWritten(), res.Applied.Inserted, res.Applied.Updated, res.Applied.Deleted, res.Applied.Generation)
	if res.Attempts > 1 {
		fmt.Fprintf(e.stdout, "  Salto data changed while it was read: read %d times to get a consistent snapshot\n", res.Attempts)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	if serr == nil {
		fmt.Fprint(e.stdout, indent(st.Describe(e.now())))
	}
	return exitOK
}

// peakRSSKiB is this process's peak resident set (VmHWM), or 0 where /proc
// does not tell. Unlike getrusage's maxrss it is not inflated by the memory
// of the process that started us (Linux carries the parent's high-water mark
// over exec).
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

func printState(e *env, st sitesync.State, asJSON bool) {
	if !asJSON {
		fmt.Fprint(e.stdout, st.Describe(e.now()))
		return
	}
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	age := any(nil)
	if !st.LastSuccess.IsZero() {
		age = int64(e.now().Sub(st.LastSuccess).Seconds())
	}
	out := map[string]any{"last_attempt": ts(st.LastAttempt), "last_success": ts(st.LastSuccess), "cache_age_s": age,
		"last_error": st.LastError, "consecutive_failures": st.ConsecutiveFailures, "last_duration_ms": st.LastDuration.Milliseconds(),
		"users": st.Users, "access_groups": st.Groups, "locks": st.Locks, "tag_credentials": st.Credentials,
		"rows_written": st.RowsWritten, "warnings": st.Warnings, "config_mismatch": nonNil(st.ConfigMismatch)}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// progressLine redraws one status line on the terminal.
func progressLine(e *env) func(sitesync.Progress) {
	last := time.Time{}
	return func(p sitesync.Progress) {
		now := time.Now()
		if now.Sub(last) < 100*time.Millisecond && p.Done != p.Total {
			return
		}
		last = now
		switch {
		case p.Total > 0:
			fmt.Fprintf(e.stderr, "\r\033[Ksyncing: %s %d/%d", p.Phase, p.Done, p.Total)
		case p.Done > 0:
			fmt.Fprintf(e.stderr, "\r\033[Ksyncing: %s %d", p.Phase, p.Done)
		default:
			fmt.Fprintf(e.stderr, "\r\033[Ksyncing: %s…", p.Phase)
		}
	}
}
