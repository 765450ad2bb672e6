package agent

import "time"

// Override is the strongest override in force at a door.
type Override string

// Overrides, strongest first.
const (
	OverrideLockdown    Override = "lockdown"
	OverrideOffice      Override = "office_mode"
	OverrideUnlocked    Override = "unlocked" // remote unlock for a duration
	OverrideOfficeArmed Override = "office_mode_armed"
	OverrideNone        Override = "none"
)

// DoorStatus is a snapshot of one door for `portier status`.
type DoorStatus struct {
	Door           string      `json:"door"`
	Running        bool        `json:"running"`
	Locked         bool        `json:"locked"` // relay de-energised
	DoorOpen       bool        `json:"door_open"`
	Override       Override    `json:"override"`
	OfficeMode     OfficeState `json:"office_mode"`
	UnlockedUntil  time.Time   `json:"unlocked_until,omitzero"` // latest deadline of an energised relay
	LockedOutUntil time.Time   `json:"locked_out_until,omitzero"`
	// Alarms: forced_open, held_open_prealarm, held_open, tamper,
	// reader_offline, reader_refused, reader_power_fault.
	Alarms         []EventType    `json:"alarms,omitempty"`
	EnrolmentArmed bool           `json:"enrolment_armed"`
	Readers        []ReaderStatus `json:"readers,omitempty"` // supervised readers (OSDP)
	LastEvent      *Event         `json:"last_event,omitempty"`
}

// Status returns the door's current status; safe for concurrent use.
func (c *Controller) Status() DoorStatus {
	c.smu.Lock()
	s := c.status
	c.smu.Unlock()
	s.Alarms = append([]EventType(nil), s.Alarms...)
	s.Readers = append([]ReaderStatus(nil), s.Readers...)
	if s.LastEvent != nil {
		e := *s.LastEvent
		s.LastEvent = &e
	}
	if c.strike != nil {
		// The relay is read live: its deadline passes outside the loop.
		st := c.strike.state()
		s.Locked = !st.On
		s.UnlockedUntil = time.Time{}
		for k, active := range st.Active {
			if active && st.Until[k].After(s.UnlockedUntil) {
				s.UnlockedUntil = st.Until[k]
			}
		}
	}
	return s
}

// publishStatus copies the loop's state into the status snapshot.
func (c *Controller) publishStatus() {
	s := DoorStatus{
		Door:           c.door.ID,
		Running:        true,
		DoorOpen:       c.doorOpen,
		OfficeMode:     c.officeMode(),
		LockedOutUntil: c.lockout.until,
		EnrolmentArmed: c.enrol != nil,
		Readers:        c.readerStatuses(),
		LastEvent:      c.lastEvent,
	}
	st := c.strike.state()
	switch {
	case c.lockdown:
		s.Override = OverrideLockdown
	case c.office.mode == OfficeActive:
		s.Override = OverrideOffice
	case st.Active[holdRemote]:
		s.Override = OverrideUnlocked
	case c.office.mode == OfficeArmed:
		s.Override = OverrideOfficeArmed
	default:
		s.Override = OverrideNone
	}
	if c.forced {
		s.Alarms = append(s.Alarms, EventForcedOpen)
	}
	if c.preAlarm && !c.heldAlarm {
		s.Alarms = append(s.Alarms, EventHeldOpenPreAlarm)
	}
	if c.heldAlarm {
		s.Alarms = append(s.Alarms, EventHeldOpen)
	}
	if c.tamper {
		s.Alarms = append(s.Alarms, EventTamper)
	}
	s.Alarms = append(s.Alarms, c.readerAlarms()...)
	c.smu.Lock()
	c.status = s
	c.smu.Unlock()
}
