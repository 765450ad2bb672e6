package main

import (
	"context"
	"errors"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/cmd/portier/control"
)

// controlBackend is what the daemon offers the control socket (see package
// control for the contract).
type controlBackend struct{ d *daemon }

var _ control.Daemon = controlBackend{}

func (b controlBackend) Status(ctx context.Context) control.Status {
	d := b.d
	v := d.db.View()
	st := control.Status{GatewayID: d.cfg.GatewayID, Version: version, StartedAt: d.started, Driver: d.cfg.Hardware.Driver,
		Site: v.Site, Generation: v.Generation, Doors: d.doors.Statuses(),
		Clock: control.ClockStatus{Trusted: !d.guard.Untrusted(), Reason: d.guard.Reason(), Policy: d.cfg.ClockPolicyName()}}
	if d.engine != nil {
		if s, err := sitesync.ReadState(ctx, d.db); err == nil {
			st.Sync = &s
		}
	}
	if o, err := d.db.OutboxStats(ctx); err == nil {
		st.Outbox = o
	}
	st.EventsHeld, st.EventsLost = d.events.Held()
	st.Storage = storageOf(d.db.Path())
	if d.link != nil {
		st.MQTT = &control.MQTTStatus{Brokers: d.cfg.MQTT.URLs(), LinkStatus: d.link.Status()}
	}
	st.Readers = d.board.Readers()
	return st
}

func (b controlBackend) InstallReader(ctx context.Context, door string, cmd agent.Command, progress func(string)) error {
	return b.d.installReader(ctx, door, cmd, progress)
}

func (b controlBackend) SetReaderAddress(ctx context.Context, door string, cmd agent.Command, req control.ReaderAddressRequest, progress func(string)) error {
	return b.d.setReaderAddress(ctx, door, cmd, req, progress)
}

func (b controlBackend) ReaderOutput(ctx context.Context, door string, cmd agent.Command, req control.ReaderOutputRequest) error {
	return b.d.readerOutput(ctx, door, cmd, req)
}

func (b controlBackend) Doors() control.Doors { return b.d.doors }

func (b controlBackend) SyncNow() error {
	if b.d.engine == nil {
		return errors.New("this gateway has no salto: section, so there is nothing to sync from")
	}
	b.d.engine.Trigger()
	return nil
}

func (b controlBackend) Card(ctx context.Context, door string, cmd agent.Command, req control.CardRequest, progress func(string)) (control.CardReport, error) {
	return b.d.card(ctx, door, cmd, req, progress)
}

func (b controlBackend) Events(ctx context.Context, after int64, limit int) ([]agent.Event, error) {
	return b.d.db.Events(ctx, after, limit)
}
