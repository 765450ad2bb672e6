package sim

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wallclock"
)

// An OSDP bus marked real (osdp_buses[].real) runs on its serial port
// through the periph board's code (hal.OpenOSDPPorts, hal.OSDPRuntime) in
// real time, whatever the board's clock: its doors' readers are real
// (cards, keys, tamper, feedback, install, supervision) while their relays,
// contacts and exit buttons stay simulated. It lets an installer bench-test
// a reader on a laptop's USB RS-485 adapter, and an outside tester check
// Portier's OSDP against their own reader on a pseudo-terminal.

// realOSDP is the board's real OSDP buses.
type realOSDP struct {
	cfg     hal.Config // the whole hardware config, for config keys
	only    hal.Config // cfg with only the real buses
	doorIDs []string
	buses   []hal.OSDPBus
	opts    hal.OSDPOptions
	log     *slog.Logger
	rt      *hal.OSDPRuntime
	where   map[string]string // door → "bus NAME on PORT"
}

// splitBuses splits cfg into its simulated OSDP buses and its real ones.
func splitBuses(cfg hal.Config) (simulated, real hal.Config) {
	simulated, real = cfg, cfg
	simulated.OSDPBuses, real.OSDPBuses = nil, nil
	for _, b := range cfg.OSDPBuses {
		if b.Real {
			real.OSDPBuses = append(real.OSDPBuses, b)
		} else {
			simulated.OSDPBuses = append(simulated.OSDPBuses, b)
		}
	}
	return simulated, real
}

// newRealOSDP plans the real buses of cfg (only holds them). Their ports
// open when the buses first run, or before with open.
func newRealOSDP(cfg, only hal.Config, doorIDs []string, board Clock, log *slog.Logger) (*realOSDP, error) {
	buses, err := only.OSDPBusPlan(doorIDs)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	r := &realOSDP{cfg: cfg, only: only, doorIDs: doorIDs, buses: buses, log: log, where: map[string]string{},
		// Events carry the board's time; the line keeps real time.
		opts: hal.OSDPOptions{Clock: board, BusClock: wallclock.Clock{}, Logger: log}}
	for i := range r.buses {
		b := &r.buses[i]
		name, baud := b.Port, b.Baud
		b.Open = func() (hal.OSDPPort, error) { return osdp.OpenSerial(name, baud) }
		for _, rd := range b.Readers {
			r.where[rd.Door] = fmt.Sprintf("bus %s on %s", b.Name, b.Port)
		}
	}
	r.rt = hal.NewOSDPRuntime(r.buses, r.opts)
	return r, nil
}

// open opens the real buses' ports now; it must run before the board runs.
func (r *realOSDP) open() error {
	buses := make([]hal.OSDPBus, len(r.buses))
	copy(buses, r.buses)
	if problems := hal.OpenOSDPPorts(r.cfg, buses); len(problems) > 0 {
		hal.CloseOSDPPorts(buses)
		return fmt.Errorf("sim: the real OSDP buses' ports do not open:\n  %s", strings.Join(problems, "\n  "))
	}
	// A runtime takes its lines as they are when it is made.
	if err := r.rt.Close(); err != nil {
		r.log.Warn("osdp: closing a port", "err", err)
	}
	r.rt = hal.NewOSDPRuntime(buses, r.opts)
	return nil
}

// simulate fails for a door whose reader is real: nothing simulated stands
// at it.
func (r *realOSDP) simulate(door string) error {
	if where, ok := r.where[door]; ok {
		return fmt.Errorf("sim: door %s's OSDP reader is real (%s, real: true): present cards, type keys and unplug it at the reader itself; `portier status` shows it", door, where)
	}
	return nil
}

// selfTest is doctor's check of the real buses, the periph board's: each
// port opens, then each reader answers at its address over its channel.
// The ports must be free: lines the board opened and never ran are closed
// first (a later Run opens them again).
func (r *realOSDP) selfTest(ctx context.Context) []hal.Check {
	if len(r.buses) == 0 {
		return nil
	}
	if err := r.rt.Close(); err != nil {
		r.log.Warn("osdp: closing a port", "err", err)
	}
	return hal.OSDPSelfTest(ctx, r.only, r.doorIDs, r.log)
}

// OpenPorts opens the serial ports of the real OSDP buses (real: true) now,
// exclusively, so a missing adapter or a port another program holds stops
// `portier run` at start with its fix, as on the periph board; without it
// Run opens them and retries while they fail. Call it before Run.
func (b *Board) OpenPorts() error { return b.osdp.real.open() }
