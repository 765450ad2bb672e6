package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portier-io/portier/agent"
)

// publishStates publishes every door's retained state on connect and again
// whenever it changes (checked every StateInterval, and at once after an
// event of that door was delivered).
func (l *Link) publishStates(ctx context.Context, s *session) error {
	last := map[string][]byte{}
	publish := func(door string) error {
		st, ok := l.cfg.Doors.DoorStatus(door)
		if !ok {
			return nil
		}
		st.Door = door // a controller that has not run yet reports no id
		p := l.doorState(st, time.Time{})
		key, _ := json.Marshal(p) // without the time: a change, not a tick
		if bytes.Equal(last[door], key) {
			return nil
		}
		p.Time = l.cfg.Clock.Now().UTC()
		if err := l.publishJSON(ctx, s, l.cfg.Topics.DoorState(door), 1, true, p); err != nil {
			return err
		}
		last[door] = key
		return nil
	}
	all := func() error {
		for _, d := range l.cfg.Doors.DoorIDs() {
			if err := publish(d); err != nil {
				return err
			}
		}
		return nil
	}
	if err := all(); err != nil {
		return ctxOr(ctx, err)
	}
	due, stop := l.after(l.cfg.StateInterval)
	defer func() { stop() }()
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-l.kick:
			// Let a burst of events settle, then publish each changed door
			// once: a drain of thousands of events is not thousands of
			// state messages.
			settle, stopSettle := l.after(stateSettle)
			select {
			case <-settle:
			case <-ctx.Done():
				stopSettle()
				return nil
			}
			for _, d := range l.takeDirty() {
				if err = publish(d); err != nil {
					break
				}
			}
		case <-due:
			err = all()
			due, stop = l.after(l.cfg.StateInterval)
		}
		if err != nil {
			return ctxOr(ctx, err)
		}
	}
}

// stateSettle is how long door state publishing waits after an event so a
// burst of events costs one state message.
const stateSettle = 50 * time.Millisecond

// markDoor notes that door's state may have changed.
func (l *Link) markDoor(door string) {
	l.dirtyMu.Lock()
	if l.dirty[door] {
		l.dirtyMu.Unlock()
		return
	}
	l.dirty[door] = true
	l.dirtyMu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// takeDirty returns and clears the doors marked since the last call.
func (l *Link) takeDirty() []string {
	l.dirtyMu.Lock()
	defer l.dirtyMu.Unlock()
	out := make([]string, 0, len(l.dirty))
	for d := range l.dirty {
		out = append(out, d)
	}
	clear(l.dirty)
	return out
}

// ctxOr hides errors caused by the session ending.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// publishTelemetry publishes telemetry on connect and every interval.
func (l *Link) publishTelemetry(ctx context.Context, s *session) error {
	for {
		if err := l.publishJSON(ctx, s, l.cfg.Topics.Telemetry(), 0, true, l.telemetry(ctx)); err != nil {
			return ctxOr(ctx, err)
		}
		if agent.Sleep(ctx, l.cfg.Clock, l.cfg.TelemetryInterval) != nil {
			return nil
		}
	}
}

// telemetry assembles one telemetry message.
func (l *Link) telemetry(ctx context.Context) TelemetryPayload {
	now := l.cfg.Clock.Now()
	var t Telemetry
	if l.cfg.Telemetry != nil {
		t = l.cfg.Telemetry.Telemetry(ctx)
	}
	p := TelemetryPayload{Schema: Schema, SiteID: l.cfg.Topics.Site, GatewayID: l.cfg.Topics.Gateway, Time: now.UTC(), Version: t.Version}
	start := t.StartedAt
	if start.IsZero() {
		start = l.started
	}
	p.UptimeS = int64(now.Sub(start) / time.Second)
	p.Sync.LastAt, p.Sync.LastResult, p.Sync.LastError = t.LastSyncAt, t.LastSyncResult, t.LastSyncError
	if p.Sync.LastResult == "" {
		p.Sync.LastResult = "never"
	}
	if !t.LastSyncAt.IsZero() {
		age := int64(now.Sub(t.LastSyncAt) / time.Second)
		p.Sync.AgeS = &age
	}
	p.Cache = t.Cache
	if p.Cache == nil {
		p.Cache = map[string]int{}
	}
	l.outboxMu.Lock()
	p.Outbox.Depth, p.Outbox.State = l.depth, l.outboxState
	if !l.oldest.IsZero() {
		p.Outbox.OldestAgeS = max(0, int64(now.Sub(l.oldest)/time.Second))
	}
	l.outboxMu.Unlock()
	p.Outbox.Limit, p.Outbox.HighWater = l.cfg.OutboxLimit, l.highWater()
	p.MQTT.Reconnects, p.MQTT.Published = l.reconnects.Load(), l.published.Load()
	p.Clock.Trusted, p.Clock.Status = t.ClockTrusted, t.ClockStatus
	if t.StorageTotalMB > 0 {
		p.Storage = &StoragePayload{FreeMB: t.StorageFreeMB, TotalMB: t.StorageTotalMB}
	}
	if l.cfg.Telemetry == nil {
		p.Clock.Status = "unknown"
	}
	p.Readers = t.Readers
	return p
}

func (l *Link) highWater() int { return max(1, int(float64(l.cfg.OutboxLimit)*l.cfg.HighWater)) }

// watchOutbox checks the outbox depth every OutboxCheck and records an alarm
// event when it crosses the high-water mark or the limit, and a recovery when
// it falls below 90 % of the mark. Nothing is ever deleted: at the limit the
// gateway keeps recording (disk permitting) and keeps raising outbox_full.
// It also prunes expired command ids, once an hour.
func (l *Link) watchOutbox(ctx context.Context) {
	var lastPrune time.Time
	check := func() {
		depth, oldest, err := l.cfg.Meter.OutboxDepth(ctx)
		if err != nil {
			l.log.Warn("mqtt: outbox depth unknown", "err", err)
			return
		}
		l.outboxMu.Lock()
		prev := l.outboxState
		next := prev
		hw := l.highWater()
		switch {
		case depth >= l.cfg.OutboxLimit:
			next = OutboxFullState
		case depth >= hw:
			if prev != OutboxFullState || depth < l.cfg.OutboxLimit*9/10 {
				next = OutboxHighWater
			}
		case depth < hw*9/10:
			next = OutboxNormal
		}
		l.depth, l.oldest, l.outboxState = depth, oldest, next
		l.outboxMu.Unlock()
		if next != prev {
			typ := map[string]agent.EventType{OutboxNormal: agent.EventOutboxNormal, OutboxHighWater: agent.EventOutboxHighWater, OutboxFullState: agent.EventOutboxFull}[next]
			e := agent.Event{Type: typ, Time: l.cfg.Clock.Now(), Detail: fmt.Sprintf("outbox depth %d (high water %d, limit %d); nothing is dropped", depth, hw, l.cfg.OutboxLimit)}
			if err := l.cfg.Events.Record(ctx, e); err != nil {
				l.log.Error("mqtt: outbox alarm not recorded", "err", err)
			}
			l.log.Warn("mqtt: outbox "+next, "depth", depth, "high_water", hw, "limit", l.cfg.OutboxLimit)
		}
		// Ids are pruned by the clock only while it is trusted: a clock that
		// jumped ahead would forget ids whose commands are still valid.
		if now := l.cfg.Clock.Now(); now.Sub(lastPrune) >= time.Hour && l.clockTrusted() {
			lastPrune = now
			if _, err := l.cfg.CommandLog.PruneCommands(ctx, now.Add(-l.cfg.ClockSkew)); err != nil {
				l.log.Warn("mqtt: command ids not pruned", "err", err)
			}
		}
	}
	check()
	tick(ctx, l.cfg.Clock, l.cfg.OutboxCheck, check)
}
