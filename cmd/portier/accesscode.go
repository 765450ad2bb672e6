package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
)

func cmdAccessCode(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "delete" && args[0] != "list") {
		return opUsage(e, "access-code", args, "Usage: portier access-code create|delete|list --config FILE [flags]  (-h on each for its flags)\n")
	}
	sub := args[0]
	s := newSession(e, "access-code "+sub, map[string]string{
		"create": "--config FILE --door ID [--name TEXT] [--starts TIME] [--ends TIME] [--json]",
		"delete": "--config FILE --id ID [--json]",
		"list":   "--config FILE [--json]",
	}[sub], needCache|needSalto)
	fs := s.fs
	asJSON := fs.Bool("json", false, "print the result as JSON")
	var door, name, starts, ends, id *string
	switch sub {
	case "create":
		door = fs.String("door", "", "door id from the config (mode pin or card_or_pin, mapped to an access group)")
		name = fs.String("name", "", "a name for the code, e.g. who it is for")
		starts = fs.String("starts", "", "valid from: RFC 3339, or YYYY-MM-DDTHH:MM in the site's time zone (default now)")
		ends = fs.String("ends", "", "valid until (default: ongoing)")
	case "delete":
		id = fs.String("id", "", "access code id (see `portier access-code list`)")
	}
	if code, ok := s.parse(args[1:], 0); !ok {
		return code
	}
	switch {
	case sub == "create" && *door == "":
		return argsError(e, fs, "--door is required")
	case sub == "delete" && *id == "":
		return argsError(e, fs, "--id is required (`portier access-code list` shows the ids)")
	}
	if sub == "list" {
		s.need &^= needSalto // the list is in the cache
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	cfg, db, key := s.cfg, s.db, s.key
	if sub == "list" {
		if _, err := db.PruneAccessCodes(ctx, e.now().Add(-accesscode.UnsetRetention)); err != nil {
			return fail(e, exitFailed, "%v", err)
		}
		list, err := db.AccessCodes(ctx)
		if err != nil {
			return fail(e, exitFailed, "%v", err)
		}
		printAccessCodes(e.stdout, list, *asJSON)
		return exitOK
	}
	client, log := s.salto, s.log
	eng, err := newSyncEngine(ctx, cfg, db, client, log, nil, nil, nil)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	// A change is followed by a sync, so the code's Salto user (and its group
	// membership) is in the cache and the PIN opens the door at once.
	svc, err := newAccessCodes(cfg, db, key, client, log, func(ctx context.Context) error {
		_, err := eng.SyncOnce(ctx)
		return err
	}, func(p accesscode.Progress) { fmt.Fprintln(e.stderr, p) })
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	if touched, err := svc.Resume(ctx); err != nil {
		fmt.Fprintf(e.stderr, "warning: finishing interrupted access code operations: %v\n", err)
	} else if len(touched) > 0 {
		fmt.Fprintf(e.stderr, "finished %d interrupted access code operation(s)\n", len(touched))
	}
	if sub == "delete" {
		ac, err := svc.Delete(ctx, *id)
		if err != nil {
			return accessCodeFail(e, err)
		}
		if *asJSON {
			printAccessCodes(e.stdout, []agent.AccessCode{ac}, true)
			return exitOK
		}
		fmt.Fprintf(e.stdout, "access code %s deleted (status %s); its Salto user is removed\n", ac.ID, ac.Status)
		return exitOK
	}
	loc := time.UTC
	if v := db.View(); v.Location != nil {
		loc = v.Location
	}
	req := accesscode.Request{Door: *door, Name: *name}
	if *starts != "" {
		if req.StartsAt, err = saltoks.ParseInstant(*starts, loc); err != nil {
			return fail(e, exitUsage, "--starts: %v", err)
		}
	}
	if *ends != "" {
		if req.EndsAt, err = saltoks.ParseInstant(*ends, loc); err != nil {
			return fail(e, exitUsage, "--ends: %v", err)
		}
	}
	ac, code, err := svc.Create(ctx, req)
	if err != nil {
		return accessCodeFail(e, err)
	}
	if *asJSON {
		out := accessCodeJSON(ac)
		out["code"] = code
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "access code %s for door %s: %s\n", ac.ID, ac.Door, code)
	fmt.Fprintf(e.stdout, "  valid %s\n", validity(ac))
	fmt.Fprintln(e.stdout, "  this is the only time the code is shown: Salto cannot show it again and Portier keeps only a hash")
	return exitOK
}

func accessCodeFail(e *env, err error) int {
	var ae *accesscode.Error
	if errors.As(err, &ae) && ae.Type == accesscode.InvalidInput {
		return fail(e, exitUsage, "%v", err)
	}
	return fail(e, exitFailed, "%v", err)
}

func validity(ac agent.AccessCode) string {
	from, until := "now", "ongoing (no end)"
	if !ac.StartsAt.IsZero() {
		from = ac.StartsAt.Format(time.RFC3339)
	}
	if !ac.EndsAt.IsZero() {
		until = ac.EndsAt.Format(time.RFC3339)
	}
	return "from " + from + " until " + until
}

func accessCodeJSON(ac agent.AccessCode) map[string]any {
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	typ := "ongoing"
	if !ac.EndsAt.IsZero() {
		typ = "time_bound"
	}
	return map[string]any{"access_code_id": ac.ID, "door": ac.Door, "name": ac.Name, "status": ac.Status, "type": typ,
		"starts_at": ts(ac.StartsAt), "ends_at": ts(ac.EndsAt), "salto_user_id": ac.SaltoUserID, "salto_access_group_id": ac.SaltoGroupID,
		"created_at": ts(ac.CreatedAt), "updated_at": ts(ac.UpdatedAt), "error": ac.Error}
}

func printAccessCodes(w io.Writer, list []agent.AccessCode, asJSON bool) {
	if asJSON {
		out := make([]map[string]any, len(list))
		for i, ac := range list {
			out[i] = accessCodeJSON(ac)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no access codes")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDOOR\tNAME\tSTATUS\tVALID\tNOTE")
	for _, ac := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ac.ID, ac.Door, ac.Name, ac.Status, validity(ac), ac.Error)
	}
	tw.Flush()
}
