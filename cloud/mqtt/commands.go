package mqtt

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/portier-io/portier/agent"
)

// opensDoors names the commands that can let someone in; with an untrusted
// clock their expiry cannot be checked, so they are refused.
var opensDoors = map[string]bool{CmdUnlock: true, CmdOfficeMode: true, CmdLockdown: true, CmdAccessCodeCreate: true, CmdEnroll: true}

// onCommand handles one message on a command topic. Everything up to
// recording the id happens here, in paho's delivery order (the command
// subscription is QoS 0, see subscribeQoS); the action itself runs in its
// own goroutine.
func (l *Link) onCommand(c paho.Client, m paho.Message) {
	name := m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:]
	cmd, rej := DecodeCommand(name, m.Topic(), m.Payload(), l.cfg.CommandKey)
	if m.Retained() && (rej == nil || rej.Type != ErrOversized) {
		rej = reject(ErrRetained, "retained commands are never executed: clear the retained message")
	}
	if rej == nil {
		rej = l.checkTime(cmd)
	}
	if rej != nil {
		l.rejected(c, cmd, rej)
		return
	}
	l.run(c, cmd)
}

// run records a well-formed, timely command's id, checks its target and
// starts it: pending now, success or error when the action ends.
func (l *Link) run(c paho.Client, cmd Command) {
	ctx := l.runCtx
	fresh, err := l.cfg.CommandLog.ClaimCommand(ctx, cmd.ID, cmd.Name, cmd.ExpiresAt)
	switch {
	case err != nil:
		l.log.Error("mqtt: command id not recorded; command refused", "id", cmd.ID, "err", err)
		l.rejected(c, cmd, reject(ErrActionFailed, "the command could not be recorded, so it was not run"))
		return
	case !fresh:
		l.rejected(c, cmd, reject(ErrDuplicate, "command %s was already received; it is not run again", cmd.ID))
		return
	}
	if rej := l.checkTarget(cmd); rej != nil {
		l.finish(cmd, StatusError, rej.Type)
		l.rejected(c, cmd, rej)
		return
	}
	select {
	case l.work <- struct{}{}:
	default:
		l.finish(cmd, StatusError, ErrBusy)
		l.rejected(c, cmd, reject(ErrBusy, "too many commands are running; send it again with a new id"))
		return
	}
	l.respond(c, cmd, StatusPending, nil, nil)
	l.actions.Add(1)
	go func() {
		defer l.actions.Done()
		defer func() { <-l.work }()
		res, aerr := l.act(ctx, c, cmd)
		if aerr != nil {
			l.failed(c, cmd, aerr)
			return
		}
		l.finish(cmd, StatusSuccess, "")
		l.respond(c, cmd, StatusSuccess, res, nil)
		l.record(cmd, agent.Event{Type: agent.EventCommandSucceeded, Detail: cmd.Name + " succeeded"})
	}()
}

// checkTime applies the expiry policy. With a trusted clock: expired (past
// expires_at plus the allowed skew) and too-far (more than MaxCommandTTL
// ahead) commands are refused. With an untrusted clock expiry cannot be
// judged, so commands that can let someone in are refused (see
// checkTarget); the rest run, still de-duplicated by id.
func (l *Link) checkTime(cmd Command) *Rejection {
	if !l.clockTrusted() {
		return nil
	}
	now := l.cfg.Clock.Now()
	switch {
	case now.After(cmd.ExpiresAt.Add(l.cfg.ClockSkew)):
		return reject(ErrExpired, "expired at %s (gateway time %s)", cmd.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case cmd.ExpiresAt.After(now.Add(l.cfg.MaxCommandTTL + l.cfg.ClockSkew)):
		return reject(ErrExpiryTooFar, "expires_at may be at most %s ahead", l.cfg.MaxCommandTTL)
	}
	return nil
}

// clockTrusted asks the clock guard, else the telemetry source; with
// neither the clock is trusted.
func (l *Link) clockTrusted() bool {
	switch {
	case l.cfg.ClockGuard != nil:
		return !l.cfg.ClockGuard.Untrusted()
	case l.cfg.Telemetry != nil:
		return l.cfg.Telemetry.Telemetry(l.runCtx).ClockTrusted
	}
	return true
}

// checkTarget refuses commands for doors the gateway does not have, services
// it does not run, and door-opening commands while the clock is untrusted.
func (l *Link) checkTarget(cmd Command) *Rejection {
	if cmd.Door != "" {
		if _, ok := l.cfg.Doors.DoorStatus(cmd.Door); !ok {
			return reject(ErrUnknownDoor, "no door %q on this gateway (doors: %s)", cmd.Door, strings.Join(l.cfg.Doors.DoorIDs(), ", "))
		}
	}
	if opensDoors[cmd.Name] && !l.clockTrusted() {
		// lockdown on only makes things safer; everything else here can open a door.
		if !(cmd.Name == CmdLockdown && *cmd.On) && !(cmd.Name == CmdOfficeMode && !*cmd.On) {
			return reject(ErrClockNotTrusted, "the gateway clock is not trusted (not synchronised, or behind the last good time), so the command's expiry cannot be checked")
		}
	}
	switch {
	case strings.HasPrefix(cmd.Name, "access_code_") && l.cfg.AccessCodes == nil:
		return reject(ErrUnavailable, "this gateway does not manage access codes (no Salto KS connection)")
	case cmd.Name == CmdSync && l.cfg.Syncer == nil:
		return reject(ErrUnavailable, "this gateway does not sync (no Salto KS connection)")
	}
	return nil
}

// act runs an accepted command and returns its success result.
func (l *Link) act(ctx context.Context, c paho.Client, cmd Command) (any, error) {
	ac := agent.Command{ID: cmd.ID, Actor: cmd.Actor}
	switch cmd.Name {
	case CmdUnlock:
		var d time.Duration
		if cmd.DurationS != nil {
			d = time.Duration(*cmd.DurationS) * time.Second
		}
		r, err := l.cfg.Doors.Unlock(ctx, cmd.Door, agent.RemoteUnlock{Command: ac, Duration: d, Override: cmd.Override})
		return doorResult(cmd.Door, r, err)
	case CmdLockdown:
		return l.eachDoor(cmd.Door, func(door string) (agent.CommandResult, error) {
			return l.cfg.Doors.Lockdown(ctx, door, agent.LockdownCommand{Command: ac, On: *cmd.On})
		})
	case CmdOfficeMode:
		var until time.Time
		if cmd.Until != nil {
			until = *cmd.Until
		}
		return l.eachDoor(cmd.Door, func(door string) (agent.CommandResult, error) {
			return l.cfg.Doors.OfficeMode(ctx, door, agent.OfficeModeCommand{Command: ac, On: *cmd.On, Until: until})
		})
	case CmdEnroll:
		r, ch, err := l.cfg.Doors.ArmEnrolment(ctx, cmd.Door, agent.EnrolCommand{Command: ac, TagNumber: cmd.TagNumber})
		if _, err := doorResult(cmd.Door, r, err); err != nil {
			return nil, err
		}
		select {
		case res := <-ch:
			if res.Outcome != agent.EnrolEnrolled {
				msg := "enrolment " + string(res.Outcome)
				if res.Err != nil {
					msg += ": " + res.Err.Error()
				}
				return nil, &ActionError{Type: ErrEnrolment + string(res.Outcome), Message: msg}
			}
			return map[string]any{"door": cmd.Door, "tag_number": res.TagNumber, "credential_kind": res.Kind, "credential": res.Credential, "user": res.User}, nil
		case <-ctx.Done():
			return nil, &ActionError{Type: ErrActionFailed, Message: "the gateway is shutting down"}
		}
	case CmdSync:
		if !l.syncing.CompareAndSwap(false, true) {
			return nil, &ActionError{Type: ErrBusy, Message: "a sync is already running"}
		}
		defer l.syncing.Store(false)
		if err := l.cfg.Syncer.SyncNow(ctx); err != nil {
			return nil, err
		}
		return map[string]any{"synced": true}, nil
	case CmdAccessCodeCreate:
		req := AccessCodeRequest{Door: cmd.Door, Name: cmd.CodeName}
		if cmd.StartsAt != nil {
			req.StartsAt = *cmd.StartsAt
		}
		if cmd.EndsAt != nil {
			req.EndsAt = *cmd.EndsAt
		}
		code, pin, err := l.cfg.AccessCodes.CreateAccessCode(ctx, req)
		if err != nil {
			return nil, err
		}
		// The PIN leaves the gateway here, once, and nowhere else.
		return map[string]any{"access_code": accessCodeView(code), "pin": pin}, nil
	case CmdAccessCodeDelete:
		code, err := l.cfg.AccessCodes.DeleteAccessCode(ctx, cmd.AccessCodeID)
		if err != nil {
			return nil, err
		}
		return map[string]any{"access_code": accessCodeView(code)}, nil
	case CmdAccessCodeList:
		codes, err := l.cfg.AccessCodes.ListAccessCodes(ctx)
		if err != nil {
			return nil, err
		}
		views := make([]AccessCodeView, len(codes))
		for i, c := range codes {
			views[i] = accessCodeView(c)
		}
		return map[string]any{"access_codes": views}, nil
	}
	return nil, &ActionError{Type: ErrUnknownCommand, Message: cmd.Name}
}

// doorResult turns a door's answer into a result or an error: a refusal is
// a refusedByDoor, a door that could not be reached an ActionError.
func doorResult(door string, r agent.CommandResult, err error) (any, error) {
	if err != nil {
		return nil, &ActionError{Type: ErrActionFailed, Message: err.Error()}
	}
	if !r.Accepted {
		return nil, refusedByDoor{&ActionError{Type: string(r.Reason), Message: r.Detail}}
	}
	return map[string]any{"door": door, "detail": r.Detail}, nil
}

// refusedByDoor is a door's refusal of a command. The door records it
// itself (command_rejected, with the refusal as its reason: agent.Controller
// does for every command, local or remote), so the link answers it and
// records nothing more: one event per refusal.
type refusedByDoor struct{ *ActionError }

func (r refusedByDoor) Unwrap() error { return r.ActionError }

// eachDoor runs f on door, or on every door when door is "". A failure that
// is not a door's refusal wins over refusals, so it is recorded.
func (l *Link) eachDoor(door string, f func(string) (agent.CommandResult, error)) (any, error) {
	doors := []string{door}
	if door == "" {
		doors = l.cfg.Doors.DoorIDs()
	}
	out := make([]any, 0, len(doors))
	var firstRefusal, firstFailure error
	for _, d := range doors {
		r, err := f(d)
		res, err := doorResult(d, r, err)
		switch {
		case err == nil:
			out = append(out, res)
		case errors.As(err, new(refusedByDoor)):
			firstRefusal = cmp.Or(firstRefusal, err)
		default:
			firstFailure = cmp.Or(firstFailure, err)
		}
	}
	if err := cmp.Or(firstFailure, firstRefusal); err != nil {
		return nil, err
	}
	return map[string]any{"doors": out}, nil
}

// AccessCodeView is an access code as responses show it (never the PIN).
type AccessCodeView struct {
	ID        string                 `json:"id"`
	Door      string                 `json:"door"`
	Name      string                 `json:"name"`
	Status    agent.AccessCodeStatus `json:"status"`
	StartsAt  time.Time              `json:"starts_at,omitzero"`
	EndsAt    time.Time              `json:"ends_at,omitzero"`
	CreatedAt time.Time              `json:"created_at,omitzero"`
	Error     string                 `json:"error,omitempty"`
}

func accessCodeView(c agent.AccessCode) AccessCodeView {
	return AccessCodeView{ID: c.ID, Door: c.Door, Name: c.Name, Status: c.Status, StartsAt: c.StartsAt, EndsAt: c.EndsAt, CreatedAt: c.CreatedAt, Error: c.Error}
}

// rejected answers a refused command and records the attempt: on its own,
// or beyond the burst in its cause's next summary (refusals.go).
func (l *Link) rejected(c paho.Client, cmd Command, r *Rejection) {
	own := l.refused.admit(r.Type, cmd.ID)
	if own {
		l.log.Warn("mqtt: command rejected", "command", cmd.Name, "id", cmd.ID, "actor", cmd.Actor, "type", r.Type, "why", r.Message)
	}
	l.respond(c, cmd, StatusError, nil, &ResponseError{Type: r.Type, Message: r.Message})
	if own {
		l.record(cmd, agent.Event{Type: agent.EventCommandRejected, Reason: agent.Reason(r.Type), Detail: cmd.Name + ": " + r.Message})
	}
}

// failed answers an accepted command whose action failed.
func (l *Link) failed(c paho.Client, cmd Command, err error) {
	re := &ResponseError{Type: ErrActionFailed, Message: err.Error()}
	var ae *ActionError
	if errors.As(err, &ae) {
		re = &ResponseError{Type: ae.Type, Message: ae.Message}
	}
	l.finish(cmd, StatusError, re.Type)
	l.respond(c, cmd, StatusError, nil, re)
	if errors.As(err, new(refusedByDoor)) {
		// The door recorded its refusal (command_rejected) already.
		l.log.Warn("mqtt: command refused by the door", "command", cmd.Name, "id", cmd.ID, "actor", cmd.Actor, "type", re.Type, "why", re.Message)
		return
	}
	l.log.Warn("mqtt: command failed", "command", cmd.Name, "id", cmd.ID, "actor", cmd.Actor, "type", re.Type, "why", re.Message)
	l.record(cmd, agent.Event{Type: agent.EventCommandFailed, Reason: agent.Reason(re.Type), Detail: cmd.Name + ": " + re.Message})
}

func (l *Link) finish(cmd Command, status, errType string) {
	if err := l.cfg.CommandLog.FinishCommand(context.WithoutCancel(l.runCtx), cmd.ID, status, errType); err != nil {
		l.log.Warn("mqtt: command outcome not recorded", "id", cmd.ID, "err", err)
	}
}

// record writes the attempt's event (never a PIN: commands carry none).
func (l *Link) record(cmd Command, e agent.Event) {
	e.Time = l.cfg.Clock.Now()
	e.Door, e.CommandID, e.Actor = cmd.Door, cmd.ID, cmd.Actor
	if err := l.cfg.Events.Record(context.WithoutCancel(l.runCtx), e); err != nil {
		l.log.Error("mqtt: command event not recorded", "id", cmd.ID, "err", err)
	}
}

// respond publishes a response at QoS 1 (not retained) without waiting: a
// response lost with the connection is not re-sent (a PIN is never stored).
func (l *Link) respond(c paho.Client, cmd Command, status string, result any, re *ResponseError) {
	p := ResponsePayload{Schema: Schema, SiteID: l.cfg.Topics.Site, GatewayID: l.cfg.Topics.Gateway, ID: cmd.ID, Command: cmd.Name,
		Status: status, Time: l.cfg.Clock.Now().UTC(), Result: result, Error: re}
	b, err := json.Marshal(p)
	if err != nil {
		l.log.Error("mqtt: response not encoded", "id", cmd.ID, "err", err)
		return
	}
	if s := l.cur.Load(); s != nil && status != StatusPending {
		c = s.client // a late answer goes out on the connection that is up now
	}
	c.Publish(l.cfg.Topics.Response(), 1, false, b)
}
