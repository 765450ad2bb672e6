package hal

import (
	"context"
	"fmt"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/wiegand"
)

// Board is the door hardware of one gateway: the periph-backed board
// (OpenPeriph) and the simulated one (hal/sim) both implement it. The door
// runtime owns one and is its only user.
type Board interface {
	// Run operates every device until ctx ends and calls emit with each
	// event. emit calls are serialised and must return quickly (hand the
	// event to a channel); events of one door arrive in order. A failing
	// device is reported as an EventFault and restarted; Run returns nil
	// when ctx ends.
	Run(ctx context.Context, emit func(Event)) error
	// Set drives one output of a door; polarity is the board's business,
	// on means energised (relay: strike released).
	Set(door string, out Output, on bool) error
	// Signal shows a door's signal on its readers that render feedback
	// themselves (OSDP); a door without one has nothing to show it on. It
	// does not wait for the reader, and a reader that is away gets the
	// signal when it is back.
	Signal(door string, s agent.Signal) error
	// Readers reports the supervised readers (OSDP), for status, telemetry
	// and doctor.
	Readers() []agent.ReaderHealth
	// InstallReader moves a door's new OSDP reader from the default install
	// key to key and proves it by a new secure session; the caller stores
	// key before calling (osdp.Bus.Install).
	InstallReader(ctx context.Context, door string, key [16]byte) error
	// SetReaderAddress moves a door's OSDP reader to another address
	// (osdp_COMSET) and proves it answers there (OSDPRuntime).
	SetReaderAddress(ctx context.Context, door string, addr, baud int) (ReaderMove, error)
	// ReaderOutput drives an output of a door's OSDP reader (osdp_OUT),
	// for the installer's test (OSDPRuntime).
	ReaderOutput(ctx context.Context, door string, n int, action osdp.OutputAction, pulse time.Duration) error
	// Halt puts every output of every door in its safe state.
	Halt() error
	// Close halts the outputs and releases the hardware.
	Close() error
}

// Output names a door output.
type Output string

// Door outputs.
const (
	Relay    Output = "relay"
	GreenLED Output = "green_led"
	RedLED   Output = "red_led"
	Buzzer   Output = "buzzer"
)

// Outputs lists the outputs in a fixed order.
func Outputs() []Output { return []Output{Relay, GreenLED, RedLED, Buzzer} }

// Input names a door input.
type Input string

// Door inputs. Active means: door open, button pressed, tamper triggered.
const (
	DoorContact Input = "door_contact"
	ExitButton  Input = "exit_button"
	Tamper      Input = "tamper"
)

// Inputs lists the inputs in a fixed order.
func Inputs() []Input { return []Input{DoorContact, ExitButton, Tamper} }

// EventKind says what happened at a door.
type EventKind uint8

// Event kinds.
const (
	EventCredential EventKind = iota + 1 // a card was presented
	EventKey                             // a keypad key was pressed
	EventInput                           // a debounced input changed
	EventFault                           // a device misbehaved; the door keeps running
	EventReader                          // a supervised reader's condition changed (Reader)
)

func (k EventKind) String() string {
	switch k {
	case EventCredential:
		return "credential"
	case EventKey:
		return "key"
	case EventInput:
		return "input"
	case EventFault:
		return "fault"
	case EventReader:
		return "reader"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing that happened at a door.
type Event struct {
	Door       string
	Kind       EventKind
	At         time.Time
	Credential agent.Presented // EventCredential: agent.CardUID or agent.CardWiegand
	Key        rune            // EventKey: '0'–'9', '*', '#' (and 'A'–'D' on 4×4 keypads)
	Input      Input           // EventInput
	Active     bool            // EventInput: door open / button pressed / tamper
	Device     string          // EventFault: e.g. "mfrc522", "wiegand", "osdp"
	Err        error           // EventFault: what went wrong (a rejected Wiegand frame, a chip error)
	// EventReader: the reader's whole condition (an OSDP reader: online,
	// offline or refused; tamper; power).
	Reader agent.ReaderStatus
}

// String renders the event for logs; credentials are masked.
func (e Event) String() string {
	switch e.Kind {
	case EventCredential:
		return fmt.Sprintf("%s: credential %s", e.Door, e.Credential)
	case EventKey:
		return fmt.Sprintf("%s: key %c", e.Door, e.Key)
	case EventInput:
		return fmt.Sprintf("%s: %s active=%v", e.Door, e.Input, e.Active)
	case EventFault:
		return fmt.Sprintf("%s: %s fault: %v", e.Door, e.Device, e.Err)
	case EventReader:
		r := e.Reader
		s := fmt.Sprintf("%s: reader %s %s", e.Door, r.Reader, r.State)
		if r.Reason != "" {
			s += " (" + r.Reason + ")"
		}
		return s + fmt.Sprintf(" secure=%v tamper=%v power_fault=%v", r.Secure, r.Tamper, r.PowerFault)
	}
	return fmt.Sprintf("%s: %s", e.Door, e.Kind)
}

// Decoder builds the Wiegand decoder the config asks for.
func (w WiegandConfig) Decoder() (wiegand.Decoder, error) {
	d := wiegand.NewDecoder()
	d.Raw = w.Raw
	if len(w.Formats) > 0 {
		d.Formats = nil
		for _, name := range w.Formats {
			f, ok := wiegand.FormatByName(name)
			if !ok {
				return d, fmt.Errorf("hal: unknown Wiegand format %q", name)
			}
			d.Formats = append(d.Formats, f)
		}
	}
	return d, nil
}

// WiegandEvent turns a Wiegand reading (or a rejected frame) into an event.
func WiegandEvent(door string, r wiegand.Reading, err error, at time.Time) Event {
	switch {
	case err != nil:
		return Event{Door: door, Kind: EventFault, At: at, Device: "wiegand", Err: err}
	case r.Kind == wiegand.KindKey:
		return Event{Door: door, Kind: EventKey, At: at, Key: r.Key}
	}
	return Event{Door: door, Kind: EventCredential, At: at, Credential: agent.CardWiegand(agent.Wiegand{
		Format: r.Format, Facility: r.Facility, Card: r.Card, Bits: r.Bits, Raw: r.Raw,
	})}
}

// CardEvent is a card UID read by an RFID reader.
func CardEvent(door string, uid []byte, at time.Time) Event {
	return Event{Door: door, Kind: EventCredential, At: at, Credential: agent.CardUID(append([]byte(nil), uid...))}
}

// Check is one line of a hardware self-test.
type Check struct {
	Name   string // what was checked, e.g. "front: MFRC522 on SPI0.0"
	OK     bool
	Warn   bool   // it works, but not as it should (with OK: a warning, and Fix says why)
	Detail string // what was found
	Fix    string // for a failure: what the installer should do
}
