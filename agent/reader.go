package agent

import (
	"context"
	"slices"
	"time"
)

// ReaderState is a supervised reader's condition. OSDP readers are
// supervised (the gateway polls them and they report tamper and power);
// Wiegand and MFRC522 readers cannot tell, so they have none.
type ReaderState string

// Reader states.
const (
	ReaderStarting ReaderState = "starting" // not heard from yet
	ReaderOnline   ReaderState = "online"   // answering, over its secure channel unless configured without
	ReaderOffline  ReaderState = "offline"  // not answering, or its channel failed
	// ReaderRefused: the reader answers but is not used: it cannot do
	// Secure Channel where the config requires it, holds another key, or
	// has no key yet (it awaits `portier reader install`).
	ReaderRefused ReaderState = "refused"
)

// ReaderStatus is a supervised reader of a door as its driver last reported
// it: the controller turns changes into events and alarms, and the door's
// status lists it.
type ReaderStatus struct {
	Reader     string      `json:"reader"` // its name at the door, e.g. "osdp"
	State      ReaderState `json:"state"`
	Secure     bool        `json:"secure"`           // online over an encrypted, authenticated channel
	Reason     string      `json:"reason,omitempty"` // offline or refused: timeout, wrong_key, no_secure_channel, no_key, …
	Detail     string      `json:"detail,omitempty"` // what the driver saw, for people
	PowerFault bool        `json:"power_fault"`
	Tamper     bool        `json:"tamper"`
	Since      time.Time   `json:"since,omitzero"` // when State last changed
}

// ReaderHealth is a supervised reader as the hardware sees it, for status,
// telemetry and the installer's checks: its condition, what it is and how
// its link fares.
type ReaderHealth struct {
	Door string `json:"door"`
	ReaderStatus
	Connection string    `json:"connection"`            // e.g. "OSDP rs485-0 (/dev/ttyUSB0) address 1"
	DefaultKey bool      `json:"default_key,omitempty"` // the session runs under the published install key
	Plaintext  bool      `json:"plaintext,omitempty"`   // configured without Secure Channel
	Vendor     string    `json:"vendor,omitempty"`      // IEEE OUI, e.g. 00-06-8E
	Model      string    `json:"model,omitempty"`
	Serial     string    `json:"serial,omitempty"`
	Firmware   string    `json:"firmware,omitempty"`
	LastReply  time.Time `json:"last_reply,omitzero"`
	Polls      uint64    `json:"polls"`        // exchanges with a valid reply
	Timeouts   uint64    `json:"timeouts"`     // commands without a reply in time
	BadFrames  uint64    `json:"check_errors"` // garbled replies: CRC, checksum, framing
	NAKs       uint64    `json:"naks"`
	// SessionRestarts counts secure sessions set up again, without an
	// offline event, after the reader dropped one over a lost reply
	// (readers built on libosdp do).
	SessionRestarts uint64 `json:"session_restarts,omitempty"`
	// Outputs is how many outputs the reader says it has (OSDP PDCAP).
	Outputs int `json:"outputs,omitempty"`
	// LineBytes counts every byte heard on the reader's line, valid or
	// not: none at all means no reader answers there (A/B swapped, no
	// power, the wrong port).
	LineBytes uint64 `json:"line_bytes"`
}

// SetReader queues a supervised reader's report: its whole condition, sent
// on every change. It is never refused for a full queue.
func (c *Controller) SetReader(s ReaderStatus) error { return c.post(readerMsg{s}, false) }

// onReader records a reader's report and the events its changes are.
func (c *Controller) onReader(ctx context.Context, s ReaderStatus) {
	i := slices.IndexFunc(c.readers, func(r ReaderStatus) bool { return r.Reader == s.Reader })
	if i < 0 {
		c.readers = append(c.readers, ReaderStatus{Reader: s.Reader, State: ReaderStarting})
		i = len(c.readers) - 1
	}
	prev := c.readers[i]
	s.Since = prev.Since
	if s.State != prev.State {
		s.Since = c.clock.Now()
	}
	c.readers[i] = s
	detail := s.Reader + " reader"
	if s.Detail != "" {
		detail += ": " + s.Detail
	}
	if s.State != prev.State || (s.State != ReaderOnline && s.Reason != prev.Reason) {
		switch s.State {
		case ReaderOnline:
			c.emit(ctx, Event{Type: EventReaderOnline, Detail: detail})
		case ReaderOffline:
			c.emit(ctx, Event{Type: EventReaderOffline, Detail: detail})
		case ReaderRefused:
			c.emit(ctx, Event{Type: EventReaderRefused, Detail: detail})
		}
	}
	if s.PowerFault != prev.PowerFault {
		if s.PowerFault {
			c.emit(ctx, Event{Type: EventReaderPowerFault, Detail: s.Reader + " reader: it reports a power fault"})
		} else {
			c.emit(ctx, Event{Type: EventReaderPowerRestored, Detail: s.Reader + " reader: its power is back to normal"})
		}
	}
	if s.Tamper != prev.Tamper {
		c.setTamper(ctx, s.Reader, s.Tamper)
	}
}

// setTamper records one tamper source (source "" is the wired tamper input,
// others are readers' tamper switches); the door's tamper alarm stands while
// any source is active, so one clearing never hides another.
func (c *Controller) setTamper(ctx context.Context, source string, active bool) {
	if c.tampers[source] == active {
		return // a repeated level is not a change
	}
	if active {
		c.tampers[source] = true
	} else {
		delete(c.tampers, source)
	}
	what := "tamper input"
	if source != "" {
		what = source + " reader's tamper switch"
	}
	switch {
	case active && !c.tamper:
		c.tamper = true
		c.emit(ctx, Event{Type: EventTamper, Detail: what + " triggered"})
	case !active && c.tamper && len(c.tampers) == 0:
		c.tamper = false
		c.emit(ctx, Event{Type: EventTamperCleared, Detail: what + " restored"})
	}
}

// readerStatuses copies the readers for a status snapshot.
func (c *Controller) readerStatuses() []ReaderStatus { return slices.Clone(c.readers) }

// readerAlarms are the door's alarms from its readers.
func (c *Controller) readerAlarms() []EventType {
	var out []EventType
	for _, a := range []struct {
		t   EventType
		set func(ReaderStatus) bool
	}{
		{EventReaderOffline, func(r ReaderStatus) bool { return r.State == ReaderOffline }},
		{EventReaderRefused, func(r ReaderStatus) bool { return r.State == ReaderRefused }},
		{EventReaderPowerFault, func(r ReaderStatus) bool { return r.PowerFault }},
	} {
		if slices.ContainsFunc(c.readers, a.set) {
			out = append(out, a.t)
		}
	}
	return out
}
