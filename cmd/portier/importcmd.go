package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/sqlite"
)

func cmdImport(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "import", "[--config FILE] [--replace-local] [--json] SNAPSHOT.json", needCache)
	fs := s.fs
	replace := fs.Bool("replace-local", false, "also delete local credentials (PINs, UIDs) that the file does not carry")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if code, ok := s.parse(args, 1); !ok {
		return code
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	cfg, db, key := s.cfg, s.db, s.key

	f, err := os.Open(fs.Arg(0))
	if errors.Is(err, os.ErrNotExist) {
		return fail(e, exitUsage, "%s: no such file: give the path of a site snapshot file (docs/snapshot-format.md)", fs.Arg(0))
	}
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	snap, err := sitefile.Read(f, key)
	f.Close()
	if err != nil {
		return fail(e, exitUsage, "%s: %v", fs.Arg(0), err)
	}
	st, err := db.ApplySnapshot(ctx, snap, sqlite.ApplyOptions{ReplaceLocal: *replace})
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	counts, err := db.Counts(ctx)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	warnings := unmappedDoors(cfg, snap)
	if warnings == nil {
		warnings = []string{} // [] in JSON, not null
	}
	if *asJSON {
		out := map[string]any{"site": snap.Site, "counts": counts, "rows_written": st.RowsWritten(), "generation": st.Generation, "warnings": warnings}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "imported site %q (%s) into %s\n", snap.Site.Name, snap.Site.TimeZone, db.Path())
	fmt.Fprintf(e.stdout, "  %d users, %d access groups, %d locks, %d credentials, %d enrolments\n",
		counts.Users, counts.Groups, counts.Locks, sum(counts.Credentials), counts.Enrolments)
	fmt.Fprintf(e.stdout, "  %d rows written (%d inserted, %d updated, %d deleted); snapshot generation %d\n",
		st.RowsWritten(), st.Inserted, st.Updated, st.Deleted, st.Generation)
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	return exitOK
}

// unmappedDoors warns about doors whose Salto mapping the snapshot cannot
// satisfy: nobody could open them.
func unmappedDoors(cfg *config.Config, snap *agent.Snapshot) []string {
	var out []string
	for _, dc := range cfg.Doors {
		d := dc.Door()
		covered := false
		for i := range snap.Groups {
			if d.CoveredBy(&snap.Groups[i]) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, fmt.Sprintf("door %q: no access group in the snapshot covers its locks %v / groups %v, so nobody can open it", d.ID, d.LockIDs, d.GroupIDs))
		}
	}
	slices.Sort(out)
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
