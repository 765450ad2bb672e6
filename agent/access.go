package agent

import (
	"context"
	"fmt"
)

// pendingCard is a card accepted at a card_and_pin door, waiting for its PIN.
type pendingCard struct {
	card     Presented
	decision Decision
}

func (c *Controller) onCard(ctx context.Context, p Presented) {
	if p.Kind == KindPIN {
		c.clearPIN()
		c.submitPIN(ctx, p)
		return
	}
	if c.enrol != nil {
		c.enrolTap(ctx, p)
		return
	}
	if c.lockdown {
		c.denyLockdown(ctx, p)
		return
	}
	if c.door.Mode == ModeCardAndPIN {
		// A new card starts over: the PIN must belong to the last card.
		c.clearTwoFactor()
		c.clearPIN()
		d := c.decide(ctx, p)
		if d.Reason == ReasonSecondFactorRequired && d.User != nil {
			c.pending = &pendingCard{card: p, decision: d}
			c.arm(timerTwoFactor, c.cfg.TwoFactorWindow)
			c.show(fbAwaitPIN)
			c.emit(ctx, Event{Type: EventAwaitingPIN, Reason: d.Reason, User: d.User, Kind: d.Kind, Credential: d.Credential,
				Detail: fmt.Sprintf("card accepted; type the PIN within %s", c.cfg.TwoFactorWindow)})
			c.cardAftermath(ctx, d)
			return
		}
		c.conclude(ctx, d, false)
		return
	}
	c.conclude(ctx, c.decide(ctx, p), false)
}

// submitPIN decides a complete PIN. While locked out or in lockdown the cache
// is not consulted.
func (c *Controller) submitPIN(ctx context.Context, pin Presented) {
	if c.lockdown {
		c.clearTwoFactor()
		c.denyLockdown(ctx, pin)
		return
	}
	if c.lockedOut() {
		c.clearTwoFactor()
		c.deny(ctx, Decision{Door: c.door.ID, Reason: ReasonLockedOut, Kind: KindPIN, Credential: pin.Masked(),
			Detail: "too many wrong PINs at this door; PIN entry is blocked until " + c.lockout.until.UTC().Format("15:04:05 UTC")})
		return
	}
	var d Decision
	if c.pending != nil {
		card := c.pending.card
		c.clearTwoFactor()
		d = c.decide(ctx, card, pin)
	} else {
		d = c.decide(ctx, pin)
	}
	c.conclude(ctx, d, true)
}

// conclude acts on a final decision. pinUsed makes a wrong PIN count towards
// the lockout.
func (c *Controller) conclude(ctx context.Context, d Decision, pinUsed bool) {
	defer c.cardAftermath(ctx, d)
	if d.Granted {
		if pinUsed {
			c.lockout.succeeded()
		}
		c.grant(ctx, d)
		return
	}
	c.deny(ctx, d)
	if pinUsed && (d.Reason == ReasonUnknownCredential || d.Reason == ReasonCredentialMismatch) {
		c.pinFailed(ctx)
	}
}

// cardAftermath follows a decision's access event: the alarm of a card
// that looks forged, and what the tap taught about the card. Both come after
// the relay and the access event, so the member at the door never waits
// for them.
func (c *Controller) cardAftermath(ctx context.Context, d Decision) {
	if d.Alarm != "" {
		c.emit(ctx, Event{Type: EventCardAlarm, Reason: d.Reason, User: d.User, Kind: d.Kind, Credential: d.Credential, Detail: d.Alarm})
	}
	l := d.Learn
	if l == nil || c.cfg.Cards == nil {
		return
	}
	e := Event{Type: EventCardLearned, Door: c.door.ID, Time: c.clock.Now(), Reason: d.Reason, User: d.User, Kind: d.Kind,
		Credential: d.Credential, Detail: l.What}
	select {
	case c.learnq <- learning{l: *l, e: e}:
	default:
		c.log.Warn("card not learned: too many cards to learn at once; a later tap learns it", "credential", d.Credential)
	}
}

// learnQueue bounds the card records waiting to be stored.
const learnQueue = 256

// learning is a card record to store and its card_learned event, or a
// Flush marker (done) closed once everything queued before it is stored.
type learning struct {
	l    CardLearning
	e    Event
	done chan struct{}
}

// learn stores what taps teach about cards, in order, off the door's loop:
// a record waits for storage (an fsync, milliseconds on an SD card), and
// the next member at the door must not wait for the last one's. The
// card_learned event follows the stored record.
func (c *Controller) learn(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.learnq:
			if j.done != nil {
				close(j.done)
				continue
			}
			if err := c.cfg.Cards.LearnCard(ctx, j.l); err != nil {
				c.log.Error("card not learned", "credential", j.e.Credential, "err", err)
				continue
			}
			c.record(ctx, j.e)
		}
	}
}

// flushLearning closes done once the card records queued so far are
// stored (at once without a card store).
func (c *Controller) flushLearning(ctx context.Context, done chan struct{}) {
	if c.cfg.Cards == nil {
		close(done)
		return
	}
	select {
	case c.learnq <- learning{done: done}:
	case <-ctx.Done():
	}
}

// grant energises the relay first and records afterwards: the member at the
// door must not wait for the outbox.
func (c *Controller) grant(ctx context.Context, d Decision) {
	now := c.clock.Now()
	if err := c.strike.set(holdPulse, now.Add(c.cfg.AccessTime)); err != nil {
		c.log.Error("relay did not switch on for a grant", "err", err)
		d.Detail += "; relay fault: " + err.Error()
	}
	// A grant while the door stands open relocks when it closes.
	c.relockOnClose = c.doorOpen
	c.show(fbGranted)
	c.emit(ctx, AccessEvent(d, now))
	c.officeFirstEntry(ctx, d)
}

func (c *Controller) deny(ctx context.Context, d Decision) {
	if d.Reason == ReasonLockedOut {
		c.show(fbLockedOut)
	} else {
		c.show(fbDenied)
	}
	c.emit(ctx, AccessEvent(d, c.clock.Now()))
}

// denyLockdown refuses without asking the cache: lockdown denies everyone.
func (c *Controller) denyLockdown(ctx context.Context, p Presented) {
	c.deny(ctx, Decision{Door: c.door.ID, Reason: ReasonDoorLockdown, Kind: p.Kind, Credential: p.Masked(), Detail: "the door is in lockdown"})
}

func (c *Controller) twoFactorExpired(ctx context.Context) {
	p := c.pending
	c.clearTwoFactor()
	c.clearPIN()
	if p == nil {
		return
	}
	d := p.decision
	d.Granted, d.Reason, d.Group = false, ReasonSecondFactorRequired, nil
	d.Detail = fmt.Sprintf("no PIN within %s of the card", c.cfg.TwoFactorWindow)
	c.deny(ctx, d)
}

func (c *Controller) clearTwoFactor() {
	c.pending = nil
	c.disarm(timerTwoFactor)
}
