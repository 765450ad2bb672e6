package agent

import (
	"context"
	"fmt"
)

// EnrolOutcome says how an armed enrolment ended.
type EnrolOutcome string

// Enrolment outcomes.
const (
	EnrolEnrolled EnrolOutcome = "enrolled" // the card was stored
	EnrolFailed   EnrolOutcome = "failed"   // the tap was not a UID/Wiegand card, or the store failed (Err)
	EnrolExpired  EnrolOutcome = "expired"  // no card within the enrolment timeout, or CancelEnrolment
	EnrolReplaced EnrolOutcome = "replaced" // a newer enrolment command took over
	EnrolStopped  EnrolOutcome = "stopped"  // the controller stopped
)

// EnrolResult is the outcome of an armed enrolment. TagNumber is in full
// (the operator asked for it); Credential is masked.
type EnrolResult struct {
	Outcome    EnrolOutcome
	TagNumber  string
	Kind       CredentialKind
	Credential string
	User       *UserRef // the tag's holder; nil when no user holds it yet
	Err        error
}

type enrolArm struct {
	cmd     EnrolCommand
	tag     string
	results chan EnrolResult
}

func (c *Controller) armEnrolment(ctx context.Context, cmd EnrolCommand) commandReply {
	if c.cfg.Enrolments == nil {
		return commandReply{res: c.reject(ctx, cmd.Command, CommandUnsupported, "this door has no enrolment store")}
	}
	tag, err := NormalizeTagNumber(cmd.TagNumber)
	if err != nil {
		return commandReply{res: c.reject(ctx, cmd.Command, CommandInvalid, err.Error())}
	}
	if c.enrol != nil {
		c.finishEnrolment(EnrolResult{Outcome: EnrolReplaced, TagNumber: c.enrol.tag})
	}
	arm := &enrolArm{cmd: cmd, tag: tag, results: make(chan EnrolResult, 1)}
	c.enrol = arm
	c.arm(timerEnrol, c.cfg.EnrolTimeout)
	what := fmt.Sprintf("the next card at this door becomes %s (expires in %s)", CardTagNumber(tag).Masked(), c.cfg.EnrolTimeout)
	c.emit(ctx, cmd.stamp(Event{Type: EventEnrolmentArmed, Detail: cmd.detail(what)}))
	return commandReply{res: accepted(what), enrol: arm.results}
}

// enrolTap consumes the tap for enrolment; it never opens the door.
func (c *Controller) enrolTap(ctx context.Context, p Presented) {
	arm := c.enrol
	res := EnrolResult{TagNumber: arm.tag, Kind: p.Kind, Credential: p.Masked()}
	fail := func(err error) {
		res.Outcome, res.Err = EnrolFailed, err
		c.show(fbDenied)
		c.emit(ctx, arm.cmd.stamp(Event{Type: EventEnrolmentFailed, Kind: p.Kind, Credential: p.Masked(), Detail: arm.cmd.detail(err.Error())}))
		c.finishEnrolment(res)
	}
	switch {
	case p.Kind == KindDESFire:
		fail(fmt.Errorf("a DESFire card carries its tag number in its identity file: issue it with `portier card issue` instead"))
		return
	case p.Kind != KindUID && p.Kind != KindWiegand:
		fail(fmt.Errorf("a %s cannot be enrolled: present a card read as a UID or Wiegand number", p.Kind))
		return
	case p.Card != nil && p.Card.Outcome != "" && p.Card.Outcome != CardOK:
		fail(fmt.Errorf("the card was not read to the end (%s): present it again", causeOr(p.Card.Cause, string(p.Card.Outcome))))
		return
	}
	key, err := p.Key(nil)
	if err != nil {
		fail(err)
		return
	}
	e := Enrolment{Key: key, TagNumber: arm.tag}
	if p.Card != nil {
		e.Fingerprint = p.Card.Fingerprint
	}
	user, err := c.cfg.Enrolments.Enrol(ctx, e)
	if err != nil {
		fail(fmt.Errorf("store enrolment: %w", err))
		return
	}
	res.Outcome, res.User = EnrolEnrolled, user
	what := "card stored as " + CardTagNumber(arm.tag).Masked()
	if e.Fingerprint != "" {
		what += ", with its fingerprint"
		if p.Card.Summary != "" {
			what += " (" + p.Card.Summary + ")"
		}
	}
	if user == nil {
		what += "; no user holds this tag number yet"
	}
	c.show(fbEnrolled)
	c.emit(ctx, arm.cmd.stamp(Event{Type: EventEnrolled, User: user, Kind: p.Kind, Credential: p.Masked(), Detail: arm.cmd.detail(what)}))
	c.finishEnrolment(res)
}

func (c *Controller) enrolmentExpired(ctx context.Context) {
	arm := c.enrol
	if arm == nil {
		return
	}
	c.emit(ctx, arm.cmd.stamp(Event{Type: EventEnrolmentExpired, Detail: arm.cmd.detail(fmt.Sprintf("no card within %s", c.cfg.EnrolTimeout))}))
	c.finishEnrolment(EnrolResult{Outcome: EnrolExpired, TagNumber: arm.tag})
}

// cancelEnrolment ends the arm cmd.ID made; another command's arm stays.
// It ends as an expiry does (enrolment_expired, EnrolExpired: no card was
// stored), so the MQTT contract's closed lists stay as they are.
func (c *Controller) cancelEnrolment(ctx context.Context, cmd CancelEnrolment) CommandResult {
	arm := c.enrol
	if arm == nil || arm.cmd.ID != cmd.ID {
		return accepted("no enrolment of this command is armed")
	}
	c.emit(ctx, arm.cmd.stamp(Event{Type: EventEnrolmentExpired, Detail: arm.cmd.detail("canceled before a card was tapped: whoever armed it stopped waiting")}))
	c.finishEnrolment(EnrolResult{Outcome: EnrolExpired, TagNumber: arm.tag})
	return accepted("enrolment canceled")
}

// finishEnrolment delivers the one result of the armed enrolment and disarms.
func (c *Controller) finishEnrolment(r EnrolResult) {
	arm := c.enrol
	c.enrol = nil
	c.disarm(timerEnrol)
	arm.results <- r
	close(arm.results)
}
