package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/config"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/sqlite"
)

func cmdEvents(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "events", "[--config FILE] [--follow] [--json] [--limit N] [--count N]", needConfig)
	flags := s.fs
	follow := flags.Bool("follow", false, "keep printing new events from the running agent as they are recorded (Ctrl-C stops)")
	asJSON := flags.Bool("json", false, "print one JSON object per line")
	limit := flags.Int("limit", 50, "how many of the latest events to print first")
	count := flags.Int("count", 0, "with --follow: stop after this many new events (0: never)")
	poll := flags.Duration("poll", control.EventsPollDefault, "with --follow: how often the agent looks for new events (at least 10ms)")
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if *limit < 0 || *count < 0 || *poll < control.EventsPollMin {
		return argsError(e, flags, "--limit and --count must not be negative, --poll at least %s", control.EventsPollMin)
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	cfg := s.cfg
	// The recorded events are read from the cache, read-only, so this also
	// works while the agent is stopped; --follow then asks the running agent.
	if _, err := os.Stat(cfg.Database); errors.Is(err, fs.ErrNotExist) {
		msg := fmt.Sprintf("no cache at %s yet: nothing has been recorded", cfg.Database)
		if *s.cfgPath == "" {
			// The same mix-up as "not running" (session.control).
			msg += "; without --config this is the embedded demo config's: for the installed service add --config " + config.PackagedPath
		}
		return fail(e, exitUsage, "%s", msg)
	}
	db, err := sqlite.Open(ctx, cfg.Database, sqlite.Options{ReadOnly: true})
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	defer db.Close()

	st, err := db.OutboxStats(ctx)
	if err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	after := max(st.LastSeq-int64(*limit), 0)
	print := func(evs []agent.Event) {
		for _, ev := range evs {
			if *asJSON {
				json.NewEncoder(e.stdout).Encode(ev)
			} else {
				fmt.Fprintln(e.stdout, formatEvent(ev))
			}
			after = ev.Seq
		}
	}
	evs, err := db.Events(ctx, after, *limit)
	if err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	print(evs)
	if !*follow {
		if len(evs) == 0 && !*asJSON {
			fmt.Fprintln(e.stderr, "no events recorded yet")
		}
		return exitOK
	}
	// New events come from the running agent over its control socket, so
	// a follower ends when the agent stops instead of watching a database
	// nobody writes any more.
	stream, err := s.control().Follow(ctx, after, *poll)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return fail(e, exitFailed, "--follow: %v", err)
	}
	defer stream.Close()
	for seen := 0; *count == 0 || seen < *count; seen++ {
		ev, err := stream.Next()
		if err != nil {
			if ctx.Err() != nil {
				return exitOK // Ctrl-C
			}
			return fail(e, exitFailed, "%v", err)
		}
		print([]agent.Event{ev})
	}
	return exitOK
}

// formatEvent is the one-line human form of an event.
func formatEvent(ev agent.Event) string {
	parts := []string{ev.Time.Local().Format("2006-01-02 15:04:05 MST"), fmt.Sprintf("#%d", ev.Seq), ev.Door, string(ev.Type)}
	if ev.Reason != "" && ev.Reason != agent.ReasonGranted {
		parts = append(parts, string(ev.Reason))
	}
	if ev.User != nil {
		parts = append(parts, ev.User.Name)
	}
	if ev.Credential != "" {
		parts = append(parts, ev.Credential)
	}
	if ev.Actor != "" {
		parts = append(parts, "by "+ev.Actor)
	}
	if ev.Detail != "" && ev.Type != agent.EventAccessGranted {
		parts = append(parts, "("+ev.Detail+")")
	}
	return strings.Join(parts, "  ")
}
