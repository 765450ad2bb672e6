package osdp

import (
	"context"
	"errors"
	"fmt"
)

// Install moves one new reader from the default install key (SCBK-D) to
// key: it runs a bus with only the reader at addr, in install mode, waits
// for its Secure Channel under SCBK-D, sends the key with osdp_KEYSET and
// proves it by establishing a new session. cfg supplies the port, baud,
// direction, clock and logger; its Readers are ignored. ctx bounds the
// whole operation.
//
// Generate key with crypto/rand and store it (mode 0600) before calling:
// once the reader acknowledged KEYSET it answers only to the new key.
func Install(ctx context.Context, cfg Config, addr byte, key [16]byte) error {
	reports := make(chan Report, 16)
	cfg.Readers = []ReaderConfig{{Name: "install", Addr: addr, Install: true}}
	cfg.Report = func(r Report) {
		if r.Kind == ReportOnline || r.Kind == ReportOffline {
			select {
			case reports <- r:
			default:
			}
		}
	}
	b, err := NewBus(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	running := true
	defer func() {
		cancel()
		if running {
			<-ran
		}
	}()
	for {
		select {
		case r := <-reports:
			if r.Kind == ReportOffline {
				// Silence is worth waiting through; a refusal is final.
				if r.Reason != ReasonTimeout {
					return fmt.Errorf("osdp: install: reader %d under the default key: %s: %w", addr, r.Reason, r.Err)
				}
				continue
			}
			if !r.Secure {
				return errors.New("osdp: install: the reader came online without Secure Channel")
			}
			if err := b.Rekey(ctx, addr, key); err != nil {
				return fmt.Errorf("osdp: install: %w", err)
			}
			return nil
		case err := <-ran:
			running = false
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("osdp: install: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("osdp: install: waiting for reader %d: %w", addr, ctx.Err())
		}
	}
}
