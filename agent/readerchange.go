package agent

import (
	"fmt"
	"time"
)

// ReaderOp names an installer's action on a door's OSDP reader (`portier
// reader …`); it leads a failure's detail, as a command's name leads
// command_failed's.
type ReaderOp string

// Installer actions on OSDP readers.
const (
	ReaderOpInstall    ReaderOp = "install"     // from the install key to a key of its own
	ReaderOpSetAddress ReaderOp = "set-address" // osdp_COMSET
	ReaderOpOutput     ReaderOp = "output"      // osdp_OUT, to test the wiring
)

// ReaderChange is one installer action on a door's OSDP reader as the daemon
// carried it out, for the audit trail (Event). It holds no key, by design:
// nothing of a reader's key can reach an event through it.
type ReaderChange struct {
	Command // who asked: the control socket's caller
	Op      ReaderOp
	// Reader is the reader as the board knew it when the action ended:
	// its door, identity (from osdp_PDID) and connection (bus, address).
	Reader ReaderHealth
	// Bus, From, To and Baud: the address change (ReaderOpSetAddress).
	Bus      string
	From, To int
	Baud     int
	// Output, Action ("on", "off" or "pulse") and Pulse: the output
	// test (ReaderOpOutput).
	Output int
	Action string
	Pulse  time.Duration
	// Err is why the action failed; nil when it succeeded.
	Err error
}

// Identity is what the reader said it is (osdp_PDID), or "" before it
// said anything.
func (h ReaderHealth) Identity() string {
	if h.Vendor == "" {
		return ""
	}
	return fmt.Sprintf("vendor %s model %s serial %s firmware %s", h.Vendor, h.Model, h.Serial, h.Firmware)
}

// Event is the change's audit event: reader_installed,
// reader_address_changed or reader_output_tested, or reader_setup_failed
// with the action and the error; its detail starts with the command, as
// every command's events do, so `portier events` shows who asked.
func (c ReaderChange) Event(at time.Time) Event {
	e := c.stamp(Event{Time: at, Door: c.Reader.Door})
	reader := "reader"
	if id := c.Reader.Identity(); id != "" {
		reader += " " + id
	}
	if c.Reader.Connection != "" {
		reader += " at " + c.Reader.Connection
	}
	output := fmt.Sprintf("output %d %s", c.Output, c.Action)
	if c.Action == "pulse" {
		output = fmt.Sprintf("output %d pulsed for %s", c.Output, c.Pulse)
	}
	switch {
	case c.Err != nil:
		// What was asked leads, then the reader and why it failed.
		asked := string(c.Op)
		switch c.Op {
		case ReaderOpSetAddress:
			asked = fmt.Sprintf("set-address to %d", c.To)
		case ReaderOpOutput:
			asked = "output: " + output
		}
		e.Type, e.Detail = EventReaderSetupFailed, fmt.Sprintf("%s: %s: %v", asked, reader, c.Err)
	case c.Op == ReaderOpInstall:
		e.Type, e.Detail = EventReaderInstalled, reader+": moved from the install key to a key of its own, proven by a new secure session"
	case c.Op == ReaderOpSetAddress:
		e.Type, e.Detail = EventReaderAddressChanged, fmt.Sprintf("%s: moved from address %d to %d on bus %s at %d baud", reader, c.From, c.To, c.Bus, c.Baud)
	case c.Op == ReaderOpOutput:
		e.Type, e.Detail = EventReaderOutputTested, reader+": "+output
	default:
		e.Type, e.Detail = EventReaderSetupFailed, fmt.Sprintf("%s: %s: not an action on a reader", c.Op, reader)
	}
	e.Detail = c.detail(e.Detail)
	return e
}
