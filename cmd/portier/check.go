package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

func cmdCheck(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "check", "--door ID (--uid HEX | --wiegand FMT:FC:CN | --tag N) [--pin DIGITS | --pin-stdin] [--at TIME] [--json]", needCache)
	fs := s.fs
	door := fs.String("door", "", "door id from the config")
	uid := fs.String("uid", "", "card UID in hex, e.g. 04:A1:B2:C3")
	wiegand := fs.String("wiegand", "", "Wiegand card, e.g. H10301:12:3456 or raw:37:1A2B3C4D5")
	tag := fs.String("tag", "", "Salto tag number (8 digits)")
	pin := fs.String("pin", "", "PIN digits (visible to other users in the process list: prefer --pin-stdin)")
	pinStdin := fs.Bool("pin-stdin", false, "read the PIN from the first line of standard input")
	at := fs.String("at", "", "decide at this time instead of now: RFC 3339, or YYYY-MM-DDTHH:MM in the site's time zone")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if *door == "" {
		return argsError(e, fs, "--door is required")
	}
	if *pinStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return fail(e, exitUsage, "--pin-stdin: no PIN on standard input")
		}
		*pin = strings.TrimSpace(line)
	}
	presented, err := presentedFromFlags(*uid, *wiegand, *tag, *pin)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	d, err := s.cfg.Door(*door)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	db, key := s.db, s.key
	desfireNote := ""
	if d.RequiresDESFire() {
		// Only a DESFire card opens here: decide for --tag as for the
		// current card of that tag number, once it proved the site's key.
		for i, p := range presented {
			if p.Kind != agent.KindTagNumber {
				continue
			}
			n, err := agent.NormalizeTagNumber(p.TagNumber)
			if err != nil {
				return fail(e, exitUsage, "--tag: %v", err)
			}
			rec, err := db.Card(ctx, agent.TagKey(n))
			if err != nil {
				return fail(e, exitUsage, "%v", err)
			}
			presented[i] = agent.CardDESFire(nil, n, agent.CardCheck{Outcome: agent.CardOK, Generation: rec.Generation})
			desfireNote = "door " + d.ID + " requires DESFire cards: decided as for the current DESFire card of tag number " + n + ", once it proved the site's key"
		}
	}
	view := db.View()
	if view.Generation == 0 {
		return fail(e, exitUsage, "%v", agent.ErrNoSnapshot)
	}
	now := e.now()
	if *at != "" {
		if now, err = saltoks.ParseInstant(*at, view.Location); err != nil {
			return fail(e, exitUsage, "--at: %v", err)
		}
	}
	dc := &agent.Decider{Cache: db, PINKey: key}
	dec, err := dc.Decide(ctx, d, now, presented...)
	if err != nil {
		return fail(e, exitUsage, "%v", err)
	}
	if *asJSON {
		out := struct {
			agent.Decision
			At   time.Time `json:"at"`
			Site string    `json:"site_time_zone"`
		}{dec, now.UTC(), view.Site.TimeZone}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		printDecision(e, d, dec, now.In(view.Location))
		if desfireNote != "" {
			fmt.Fprintln(e.stdout, "  note:       "+desfireNote)
		}
	}
	if dec.Granted {
		return exitOK
	}
	return exitDenied
}

// presentedFromFlags builds the presented credentials: at most one card, and
// optionally a PIN (card and PIN together for card_and_pin doors).
func presentedFromFlags(uid, wiegand, tag, pin string) ([]agent.Presented, error) {
	var out []agent.Presented
	cards := 0
	if uid != "" {
		cards++
		b, err := agent.ParseUID(uid)
		if err != nil {
			return nil, fmt.Errorf("--uid: %w", err)
		}
		out = append(out, agent.CardUID(b))
	}
	if wiegand != "" {
		cards++
		w, err := agent.ParseWiegand(wiegand)
		if err != nil {
			return nil, fmt.Errorf("--wiegand: %w", err)
		}
		out = append(out, agent.CardWiegand(w))
	}
	if tag != "" {
		cards++
		out = append(out, agent.CardTagNumber(tag))
	}
	if cards > 1 {
		return nil, errors.New("give at most one of --uid, --wiegand and --tag")
	}
	if pin != "" {
		out = append(out, agent.KeypadPIN(pin))
	}
	if len(out) == 0 {
		return nil, errors.New("give a credential: --uid, --wiegand, --tag and/or --pin")
	}
	return out, nil
}

func printDecision(e *env, d agent.Door, dec agent.Decision, at time.Time) {
	name := d.ID
	if d.Name != "" {
		name = fmt.Sprintf("%q (%s)", d.Name, d.ID)
	}
	if dec.Granted {
		fmt.Fprintf(e.stdout, "GRANTED  %s opens %s\n", dec.User.Name, name)
	} else {
		fmt.Fprintf(e.stdout, "DENIED   %s stays locked\n", name)
	}
	fmt.Fprintf(e.stdout, "  reason:     %s", dec.Reason)
	if dec.Detail != "" && !dec.Granted {
		fmt.Fprintf(e.stdout, " (%s)", dec.Detail)
	}
	fmt.Fprintln(e.stdout)
	if dec.User != nil {
		fmt.Fprintf(e.stdout, "  user:       %s (site user %s)\n", dec.User.Name, dec.User.ID)
	}
	if dec.Group != nil {
		fmt.Fprintf(e.stdout, "  via:        access group %q\n", dec.Group.Name)
	}
	fmt.Fprintf(e.stdout, "  credential: %s\n", dec.Credential)
	fmt.Fprintf(e.stdout, "  at:         %s\n", at.Format("Mon 2006-01-02 15:04:05 MST"))
}
