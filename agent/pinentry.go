package agent

import "context"

// onKey collects a PIN: digits append, '*' clears, '#' submits; a pause of
// PINTimeout clears. Keys never reach a log or an event. At a card-only door
// the keypad is ignored.
func (c *Controller) onKey(ctx context.Context, key rune) {
	if c.door.Mode == ModeCard {
		return
	}
	switch {
	case key >= '0' && key <= '9':
		if c.lockdown || c.lockedOut() {
			// Digits are not kept while PIN entry is blocked; the attempt
			// is still answered (and recorded) when '#' submits it.
			clear(c.pin)
			c.pin = c.pin[:0]
			c.blockedDigits++
			c.arm(timerPIN, c.cfg.PINTimeout)
			c.show(fbLockedOut)
			return
		}
		// One digit past the maximum is kept so that an over-long entry is
		// refused as invalid rather than truncated into a valid PIN.
		if len(c.pin) <= MaxPINLength {
			c.pin = append(c.pin, byte(key))
		}
		c.arm(timerPIN, c.cfg.PINTimeout)
		c.show(fbKey)
	case key == '*':
		c.clearPIN()
		c.show(fbKey)
	case key == '#':
		if len(c.pin) == 0 && c.blockedDigits == 0 {
			return
		}
		pin := KeypadPIN(string(c.pin))
		c.clearPIN()
		c.submitPIN(ctx, pin)
	}
}

// clearPIN wipes the typed digits.
func (c *Controller) clearPIN() {
	clear(c.pin)
	c.pin = c.pin[:0]
	c.blockedDigits = 0
	c.disarm(timerPIN)
}
