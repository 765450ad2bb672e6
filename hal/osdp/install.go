package osdp

import (
	"context"
	"errors"
	"fmt"
)

// ErrHasKey is Install's error for a reader that is online under a key of
// its own: it would refuse the default key (Rekey changes its key).
var ErrHasKey = errors.New("osdp: reader already has a key of its own")

// Install moves the reader at addr, configured on this running bus, from the
// default install key (SCBK-D) to key, the installer's operation for a new
// reader: the bus restarts the reader's link under SCBK-D, sends key with
// osdp_KEYSET over that session and proves it by establishing a new session
// with it. It returns nil once the new session is up; the reader is then
// online under key (ReportOnline). While it runs, the reader is not online
// for anyone else: cards read under the published key are dropped.
//
// A reader that refuses SCBK-D (it holds another key) fails the install and
// goes back to its configured key; a silent one is waited for until ctx
// ends. Generate key with crypto/rand and store it (mode 0600) before
// calling: once the reader acknowledged KEYSET it answers only to key, even
// if the proof then fails (ErrKeyNotProven).
func (b *Bus) Install(ctx context.Context, addr byte, key [16]byte) error {
	b.mu.Lock()
	r, o, err := b.keyset(addr, key)
	switch {
	case err != nil:
	case r.online && !r.st.DefaultKey:
		err = fmt.Errorf("%w: %s is online under it", ErrHasKey, r.cfg.Name)
	case r.installOp != nil || r.rekey != nil:
		err = fmt.Errorf("osdp: %s: a key change is already running", r.cfg.Name)
	}
	if err != nil {
		b.mu.Unlock()
		return err
	}
	r.installOp, r.installReq = o, o
	b.kick()
	b.mu.Unlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
	}
	b.mu.Lock()
	taken := r.installOp == o && r.installReq != o
	if r.installReq == o { // Run never began it
		r.installReq, r.installOp = nil, nil
	}
	if taken {
		r.installStop = true // Run puts the reader back on its configured key
		b.kick()
	}
	b.mu.Unlock()
	if taken {
		// Back only once the reader is, so a new install can begin.
		select {
		case <-o.done:
		case <-b.done:
		}
	}
	return fmt.Errorf("osdp: install %s: %w", r.cfg.Name, ctx.Err())
}

// takeInstall starts or ends an install Bus.Install asked for; Run calls it
// at the start of r's turn.
func (b *Bus) takeInstall(r *reader) {
	b.mu.Lock()
	req, stop := r.installReq, r.installStop
	r.installReq, r.installStop = nil, false
	b.mu.Unlock()
	if stop {
		if req != nil { // asked for and given up before it began
			r.installing, req = req, nil
		}
		if r.installing != nil && r.proving == nil {
			b.endInstall(r, errors.New("osdp: install stopped"))
			b.restart(r)
		}
	}
	if req != nil {
		r.installing, r.install = req, true
		b.restart(r)
	}
}

// restart begins r's link again at once (sequence 0, a new handshake).
func (b *Bus) restart(r *reader) {
	r.cur.finish(fmt.Errorf("%w: %s: link restarted", ErrOffline, r.cfg.Name))
	r.reset()
	r.next, r.lastOK = b.clock.Now(), b.clock.Now()
	r.probing, r.backoff = false, minBackoff
}

// endInstall finishes r's install with err; a failed one leaves the reader
// on its configured key.
func (b *Bus) endInstall(r *reader, err error) {
	o := r.installing
	r.installing = nil
	if err != nil {
		r.install = r.cfg.Install
	}
	b.mu.Lock()
	if r.installOp == o {
		r.installOp = nil
	}
	if r.rekey == o {
		r.rekey = nil
	}
	b.mu.Unlock()
	o.finish(err)
}

// Install moves one new reader from the default install key (SCBK-D) to
// key on a bus of its own: it runs a bus with only the reader at addr and
// calls Bus.Install. cfg supplies the port, baud, direction, clock and
// logger; its Readers and Report are ignored. ctx bounds the whole
// operation. It is for a port no running bus owns; on a running bus call
// Bus.Install.
func Install(ctx context.Context, cfg Config, addr byte, key [16]byte) error {
	cfg.Readers = []ReaderConfig{{Name: "install", Addr: addr, Uninstalled: true}}
	cfg.Report = nil
	b, err := NewBus(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	done := make(chan error, 1)
	go func() { done <- b.Install(ctx, addr, key) }()
	select {
	case err = <-done:
	case err = <-ran:
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("osdp: install: %w", err)
	}
	cancel()
	if rerr := <-ran; err == nil && rerr != nil {
		err = fmt.Errorf("osdp: install: %w", rerr)
	}
	return err
}
