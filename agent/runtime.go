package agent

import (
	"context"
	"time"
)

// Output is one door output: the relay (energised = strike released), an LED
// or the buzzer. Polarity and wiring are the hardware adapter's business.
type Output interface {
	Set(on bool) error
}

// EventSink receives every event of the door runtime. The SQLite outbox
// implements it and assigns ID and Seq; the controller fills in the rest.
type EventSink interface {
	Record(ctx context.Context, e Event) error
}

// Deciding answers access requests; *Decider implements it.
type Deciding interface {
	Decide(ctx context.Context, door Door, now time.Time, presented ...Presented) (Decision, error)
}

var _ Deciding = (*Decider)(nil)

// EnrolmentStore stores the pairing of a card with a Salto tag number and
// returns the tag's holder (nil when no user holds it yet).
type EnrolmentStore interface {
	Enrol(ctx context.Context, e Enrolment) (*UserRef, error)
}

// DoorInput names a door input. Active means door open, button pressed,
// tamper triggered; the strings match the hardware configuration.
type DoorInput string

// Door inputs.
const (
	DoorContact DoorInput = "door_contact"
	ExitButton  DoorInput = "exit_button"
	Tamper      DoorInput = "tamper"
)
