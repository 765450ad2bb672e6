package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/control"
)

// The operator commands that talk to the running daemon over its control
// socket (package control).

// controlTimeout bounds a control command's wait for the daemon.
const controlTimeout = 15 * time.Second

func cmdStatus(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "status", "[--config FILE] [--json]", needControl)
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	st, err := s.control().Status(ctx)
	if err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	if *s.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return exitOK
	}
	printStatus(e.stdout, st, e.now())
	return exitOK
}

// printStatus writes the daemon's status for people (portier status, and
// status typed at portier run --sim-input -).
func printStatus(w io.Writer, st control.Status, now time.Time) {
	fmt.Fprintf(w, "portier %s on %s, up since %s (%s board)\n", st.Version, st.GatewayID, st.StartedAt.Local().Format("2006-01-02 15:04:05"), st.Driver)
	fmt.Fprintf(w, "site:   %s (%s), snapshot generation %d\n", st.Site.Name, st.Site.TimeZone, st.Generation)
	if st.Sync != nil {
		fmt.Fprint(w, "sync:   "+strings.TrimSpace(strings.ReplaceAll(st.Sync.Describe(now), "\n", "\n        "))+"\n")
	}
	clock := "trusted"
	if !st.Clock.Trusted {
		clock = "NOT trusted: " + st.Clock.Reason
	}
	fmt.Fprintf(w, "clock:  %s (policy %s)\n", clock, st.Clock.Policy)
	fmt.Fprintf(w, "outbox: %d events waiting (last seq %d)\n", st.Outbox.Depth, st.Outbox.LastSeq)
	if m := st.MQTT; m != nil {
		if m.Connected {
			fmt.Fprintf(w, "mqtt:   connected (%s), %d events published, %d reconnects\n", strings.Join(m.Brokers, ", "), m.Published, m.Reconnects)
		} else {
			fmt.Fprintf(w, "mqtt:   NOT connected to %s since %s: %s (retrying; events wait in the outbox)\n",
				strings.Join(m.Brokers, ", "), m.Since.Local().Format("2006-01-02 15:04:05"), m.LastError)
		}
	}
	if st.Storage != nil {
		fmt.Fprintf(w, "disk:   %s free of %s\n", formatMB(st.Storage.FreeMB), formatMB(st.Storage.TotalMB))
	}
	if st.EventsHeld > 0 || st.EventsLost > 0 {
		fmt.Fprintf(w, "        THE OUTBOX REFUSES EVENTS: %d held in memory, %d lost (see the log; is the disk full?)\n", st.EventsHeld, st.EventsLost)
	}
	for _, d := range st.Doors {
		fmt.Fprintf(w, "door %-10s %s\n", d.Door, describeDoor(d))
	}
	for _, r := range st.Readers {
		fmt.Fprintf(w, "reader %s/%s %s\n", r.Door, r.Reader, describeReader(r))
	}
}

// describeReader is a supervised reader for status: its condition, what it
// is, where, and how its link fares.
func describeReader(r agent.ReaderHealth) string {
	state := strings.ToUpper(string(r.State))
	switch {
	case r.State == agent.ReaderOnline && r.Plaintext:
		state = "online, PLAINTEXT (secure_channel: off)"
	case r.State == agent.ReaderOnline && r.DefaultKey:
		state = "online, secure under the install key"
	case r.State == agent.ReaderOnline:
		state = "online, secure channel"
	case r.Reason != "":
		state += " (" + r.Reason + ")"
	}
	if !r.Since.IsZero() {
		state += " since " + r.Since.Local().Format("2006-01-02 15:04:05")
	}
	parts := []string{state}
	if r.Tamper {
		parts = append(parts, "TAMPER")
	}
	if r.PowerFault {
		parts = append(parts, "POWER FAULT")
	}
	if id := r.Identity(); id != "" {
		parts = append(parts, id)
	}
	if r.Outputs > 0 {
		parts = append(parts, fmt.Sprintf("%d outputs", r.Outputs))
	}
	parts = append(parts, r.Connection, fmt.Sprintf("%d polls, %d timeouts, %d check errors, %d NAKs", r.Polls, r.Timeouts, r.BadFrames, r.NAKs))
	if r.SessionRestarts > 0 {
		parts = append(parts, fmt.Sprintf("%d secure sessions restarted after a lost reply", r.SessionRestarts))
	}
	if r.State != agent.ReaderOnline && r.Detail != "" {
		parts = append(parts, r.Detail)
	}
	return strings.Join(parts, "; ")
}

func describeDoor(d agent.DoorStatus) string {
	parts := []string{"locked"}
	if !d.Locked {
		parts[0] = "UNLOCKED"
		if !d.UnlockedUntil.IsZero() {
			parts[0] += " until " + d.UnlockedUntil.Local().Format("15:04:05")
		}
	}
	if d.DoorOpen {
		parts = append(parts, "open")
	} else {
		parts = append(parts, "closed")
	}
	if d.Override != "" && d.Override != "none" {
		parts = append(parts, "override "+string(d.Override))
	}
	if d.OfficeMode != "" && d.OfficeMode != "off" {
		parts = append(parts, "office mode "+string(d.OfficeMode))
	}
	if !d.LockedOutUntil.IsZero() {
		parts = append(parts, "PIN locked out until "+d.LockedOutUntil.Local().Format("15:04:05"))
	}
	for _, a := range d.Alarms {
		parts = append(parts, "ALARM "+string(a))
	}
	if d.EnrolmentArmed {
		parts = append(parts, "waiting for a card to enrol")
	}
	if !d.Running {
		parts = append(parts, "NOT RUNNING")
	}
	return strings.Join(parts, ", ")
}

func printCommandResult(e *env, what string, res agent.CommandResult, asJSON bool) int {
	if asJSON {
		json.NewEncoder(e.stdout).Encode(res)
	} else if res.Accepted {
		fmt.Fprintf(e.stdout, "%s: done", what)
		if res.Detail != "" {
			fmt.Fprintf(e.stdout, " (%s)", res.Detail)
		}
		fmt.Fprintln(e.stdout)
	} else {
		fmt.Fprintf(e.stderr, "%s: refused: %s", what, res.Reason)
		if res.Detail != "" {
			fmt.Fprintf(e.stderr, " (%s)", res.Detail)
		}
		fmt.Fprintln(e.stderr)
	}
	if res.Accepted {
		return exitOK
	}
	return exitDenied
}

func cmdUnlock(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "unlock", "DOOR [--duration D] [--override]", needControl)
	dur := s.fs.Duration("duration", 0, "hold the door unlocked this long, e.g. 30s or 10m (default: one access-time pulse that relocks when the door closes)")
	override := s.fs.Bool("override", false, "unlock even in lockdown")
	if code, ok := s.parse(args, 1); !ok {
		return code
	}
	if *dur < 0 {
		return argsError(e, s.fs, "--duration %s: want a positive duration such as 30s or 10m", *dur)
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	req := control.UnlockRequest{Override: *override}
	if *dur > 0 {
		req.Duration = dur.String()
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	res, err := s.control().Unlock(ctx, s.fs.Arg(0), req)
	if err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	return printCommandResult(e, "unlock "+s.fs.Arg(0), res, *s.asJSON)
}

// switchCommand sends a SwitchRequest to a door.
type switchCommand func(c *control.Client, ctx context.Context, door string, req control.SwitchRequest) (agent.CommandResult, error)

// cmdSwitch is lockdown or office-mode (withUntil: office mode may end at a
// given time).
func cmdSwitch(name, what string, send switchCommand, withUntil bool) func(ctx context.Context, e *env, args []string) int {
	return func(ctx context.Context, e *env, args []string) int {
		synopsis := "DOOR on|off"
		if withUntil {
			synopsis += " [--until TIME]"
		}
		s := newSession(e, name, synopsis, needControl)
		var until *string
		if withUntil {
			until = s.fs.String("until", "", "with on: end office mode at this time (RFC 3339)")
		}
		if code, ok := s.parse(args, 2); !ok {
			return code
		}
		if s.fs.Arg(1) != "on" && s.fs.Arg(1) != "off" {
			return argsError(e, s.fs, "%q: want on or off", s.fs.Arg(1))
		}
		if code, ok := s.open(ctx); !ok {
			return code
		}
		defer s.close()
		req := control.SwitchRequest{On: s.fs.Arg(1) == "on"}
		if until != nil && *until != "" {
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return fail(e, exitUsage, "--until %q: want an RFC 3339 time with its zone, e.g. %s", *until, e.now().Add(time.Hour).Truncate(time.Hour).Format(time.RFC3339))
			}
			req.Until = t
		}
		ctx, cancel := context.WithTimeout(ctx, controlTimeout)
		defer cancel()
		res, err := send(s.control(), ctx, s.fs.Arg(0), req)
		if err != nil {
			return fail(e, exitFailed, "%v", err)
		}
		return printCommandResult(e, what+" "+s.fs.Arg(1)+" at "+s.fs.Arg(0), res, *s.asJSON)
	}
}

func cmdEnroll(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "enroll", "DOOR --tag-number N", needControl)
	tag := s.fs.String("tag-number", "", "the Salto tag number of the card that will be tapped next")
	wait := s.fs.Duration("timeout", 70*time.Second, "how long to wait for the tap")
	if code, ok := s.parse(args, 1); !ok {
		return code
	}
	if *tag == "" {
		return argsError(e, s.fs, "--tag-number is required: the Salto tag number the next card tapped becomes")
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	if _, err := agent.NormalizeTagNumber(*tag); err != nil {
		return fail(e, exitUsage, "--tag-number: %v", err)
	}
	if !*s.asJSON {
		fmt.Fprintf(e.stderr, "tap the card with tag number %s on door %s…\n", *tag, s.fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	res, err := s.control().Enroll(ctx, s.fs.Arg(0), control.EnrollRequest{TagNumber: *tag})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fail(e, exitFailed, "no card was tapped at door %s within %s: the enrolment is canceled, nothing was stored (--timeout waits longer)", s.fs.Arg(0), *wait)
	case errors.Is(err, context.Canceled):
		return fail(e, exitFailed, "interrupted: the enrolment at door %s is canceled, nothing was stored", s.fs.Arg(0))
	case err != nil:
		return fail(e, exitFailed, "%v", err)
	}
	if *s.asJSON {
		json.NewEncoder(e.stdout).Encode(res)
	}
	if !res.Command.Accepted {
		return printCommandResult(e, "enroll at "+s.fs.Arg(0), res.Command, false)
	}
	if res.Outcome != string(agent.EnrolEnrolled) {
		msg := res.Outcome
		if res.Error != "" {
			msg += ": " + res.Error
		}
		return fail(e, exitDenied, "enrolment %s", msg)
	}
	if !*s.asJSON {
		holder := "no user holds this tag number yet; the card opens once a sync brings its holder"
		if res.User != nil {
			holder = "it opens for " + res.User.Name
		}
		fmt.Fprintf(e.stdout, "enrolled %s as tag %s: %s\n", res.Credential, res.TagNumber, holder)
	}
	return exitOK
}

func cmdSyncNow(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "sync-now", "[--config FILE]", needControl)
	if code, ok := s.parse(args, 0); !ok {
		return code
	}
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	if err := s.control().SyncNow(ctx); err != nil {
		return fail(e, exitFailed, "%v", err)
	}
	fmt.Fprintln(e.stdout, "sync triggered; `portier status` shows its result")
	return exitOK
}

// formatMB prints a size given in MB for people.
func formatMB(mb int64) string {
	if mb >= 10*1024 {
		return fmt.Sprintf("%d GB", mb/1024)
	}
	if mb >= 1024 {
		return fmt.Sprintf("%.1f GB", float64(mb)/1024)
	}
	return fmt.Sprintf("%d MB", mb)
}
