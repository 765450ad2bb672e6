package main

import (
	"context"
	"errors"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks/accesscode"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// buildLink wires the MQTT link to the daemon: the outbox and command log
// (SQLite), the door controllers, access codes and the sync trigger.
func (d *daemon) buildLink() (*mqtt.Link, error) {
	lc, err := d.cfg.MQTT.LinkConfig(d.cfg)
	if err != nil {
		return nil, usageError{err}
	}
	lc.Outbox, lc.Meter, lc.Events, lc.CommandLog, lc.Discovery = d.db, outboxMeter{d.db, d.events}, d.events, d.db, d.db
	lc.Doors = d.doors
	lc.DoorNames = map[string]string{}
	for _, dc := range d.cfg.Doors {
		lc.DoorNames[dc.ID] = dc.Name
	}
	lc.Telemetry = telemetry{d}
	lc.ClockGuard = d.guard // per-command clock policy without a database read
	lc.Clock = agent.NewSystemClock()
	lc.Logger = d.log.With("component", "mqtt")
	if d.engine != nil {
		lc.Syncer = syncTrigger{d.engine}
	}
	if d.codes != nil {
		lc.AccessCodes = accessCodes{d.codes}
	}
	link, err := mqtt.New(lc)
	if err != nil {
		return nil, usageError{err}
	}
	return link, nil
}

// outboxMeter counts, as the outbox's depth, the events waiting in the
// database and those an outbox failure holds in memory.
type outboxMeter struct {
	db    *sqlite.DB
	spool *agent.EventSpool
}

func (m outboxMeter) OutboxDepth(ctx context.Context) (int, time.Time, error) {
	st, err := m.db.OutboxStats(ctx)
	held, _ := m.spool.Held()
	return st.Depth + held, st.Oldest, err
}

// syncTrigger runs a sync now and answers when it landed or failed (the
// engine runs one sync at a time, so this queues behind a running one).
type syncTrigger struct{ e *sitesync.Engine }

func (s syncTrigger) SyncNow(ctx context.Context) error {
	if _, err := s.e.SyncOnce(ctx); err != nil {
		return &mqtt.ActionError{Type: mqtt.ErrSyncFailed, Message: err.Error()}
	}
	return nil
}

type accessCodes struct{ s *accesscode.Service }

func (a accessCodes) CreateAccessCode(ctx context.Context, req mqtt.AccessCodeRequest) (agent.AccessCode, string, error) {
	c, pin, err := a.s.Create(ctx, accesscode.Request{Door: req.Door, Name: req.Name, StartsAt: req.StartsAt, EndsAt: req.EndsAt})
	return c, pin, typed(err)
}

func (a accessCodes) DeleteAccessCode(ctx context.Context, id string) (agent.AccessCode, error) {
	c, err := a.s.Delete(ctx, id)
	return c, typed(err)
}

func (a accessCodes) ListAccessCodes(ctx context.Context) ([]agent.AccessCode, error) {
	cs, err := a.s.List(ctx)
	return cs, typed(err)
}

// typed keeps an access code error's type (e.g. salto_site_user_not_subscribed)
// in the command's response, where dashboards key on it.
func typed(err error) error {
	var ae *accesscode.Error
	if errors.As(err, &ae) {
		return &mqtt.ActionError{Type: string(ae.Type), Message: ae.Message}
	}
	return err
}

// telemetry reports what the dashboards' telemetry shows.
type telemetry struct{ d *daemon }

func (t telemetry) Telemetry(ctx context.Context) mqtt.Telemetry {
	d := t.d
	tel := mqtt.Telemetry{Version: version, StartedAt: d.started, LastSyncResult: "never", ClockTrusted: !d.guard.Untrusted(), ClockStatus: "synchronized"}
	if !tel.ClockTrusted {
		tel.ClockStatus = "untrusted: " + d.guard.Reason()
	}
	if st, err := sitesync.ReadState(ctx, d.db); err == nil {
		tel.LastSyncAt = st.LastSuccess
		switch {
		case st.ConsecutiveFailures > 0:
			tel.LastSyncResult, tel.LastSyncError = "failed", st.LastError
		case !st.LastSuccess.IsZero():
			tel.LastSyncResult = "ok"
		}
	}
	if s := storageOf(d.db.Path()); s != nil {
		tel.StorageFreeMB, tel.StorageTotalMB = s.FreeMB, s.TotalMB
	}
	tel.Readers = d.board.Readers()
	if c, err := d.db.Counts(ctx); err == nil {
		tel.Cache = map[string]int{"users": c.Users, "access_groups": c.Groups, "locks": c.Locks, "enrolments": c.Enrolments}
		for k, n := range c.Credentials {
			tel.Cache["credentials_"+k] = n
		}
	}
	return tel
}
