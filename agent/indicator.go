package agent

// Signal is what a door shows the person at its reader, for readers that
// render it themselves: an OSDP reader runs its own LED and buzzer
// patterns, so it is told the door's state, not the levels of wired LEDs.
type Signal string

// Signals, from the door's state: a denial being shown wins, then an
// unlocked door, a card waiting for its PIN, an alarm.
const (
	SignalIdle     Signal = "idle"         // the resting state
	SignalGranted  Signal = "granted"      // unlocked: a grant, an exit, a remote unlock, office mode
	SignalDenied   Signal = "denied"       // a denial, a lock-out, a failed enrolment
	SignalAwaitPIN Signal = "awaiting_pin" // card_and_pin: card accepted, type the PIN
	SignalAlarm    Signal = "alarm"        // forced or held open, the held-open pre-alarm
)

// Indicator shows a door's signal on the readers that render it themselves.
// The controller calls Show when the signal changes (and Idle at start and
// shutdown); it must return quickly, and a reader that is away must get the
// last signal when it is back.
type Indicator interface {
	Show(Signal) error
}

// signal is the door's signal now.
func (c *Controller) signal() Signal {
	switch c.overlay {
	case fbDenied, fbLockedOut:
		return SignalDenied
	case fbGranted, fbEnrolled:
		return SignalGranted
	}
	switch {
	case c.strike.state().On:
		return SignalGranted
	case c.pending != nil:
		return SignalAwaitPIN
	case c.forced || c.heldAlarm || c.overlay == fbPreAlarm:
		return SignalAlarm
	}
	return SignalIdle
}

// indicate shows the signal when it changed (force: always).
func (c *Controller) indicate(s Signal, force bool) {
	if c.cfg.Indicator == nil || (!force && c.shown == s) {
		return
	}
	if err := c.cfg.Indicator.Show(s); err != nil {
		c.log.Warn("reader feedback failed", "signal", string(s), "err", err)
		c.shown = ""
		return
	}
	c.shown = s
}
