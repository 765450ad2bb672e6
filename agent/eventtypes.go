package agent

// EventType names what happened. Event types are stable strings: dashboards
// key on them. This file lists every event type the gateway records, whoever
// records it (the doors, the event spool, the clock guard, the MQTT link, the
// daemon); nothing else defines one. docs/door-runtime.md says when each is
// recorded and with which fields, docs/mqtt.md on which topic it is published.
type EventType string

// Access decisions (the door controller).
const (
	EventAccessGranted EventType = "access_granted"
	EventAccessDenied  EventType = "access_denied"
	EventAwaitingPIN   EventType = "awaiting_pin" // card_and_pin: card accepted, PIN expected
)

// The door itself: contact, exit button, relay (the door controller).
const (
	EventDoorOpened  EventType = "door_opened"
	EventDoorClosed  EventType = "door_closed"
	EventExitPressed EventType = "exit_pressed"
	EventRelayOn     EventType = "relay_on"
	EventRelayOff    EventType = "relay_off"
	// EventControllerStarted: Run put the door in its safe state.
	EventControllerStarted EventType = "controller_started"
	// EventInputQueueOverflow: hardware inputs were refused while the
	// controller was busy; detail has the count.
	EventInputQueueOverflow EventType = "input_queue_overflow"
)

// Door alarms and wrong-PIN lockouts (the door controller).
const (
	EventForcedOpen        EventType = "forced_open"
	EventForcedOpenCleared EventType = "forced_open_cleared"
	EventHeldOpenPreAlarm  EventType = "held_open_prealarm"
	EventHeldOpen          EventType = "held_open"
	EventHeldOpenCleared   EventType = "held_open_cleared"
	EventTamper            EventType = "tamper"
	EventTamperCleared     EventType = "tamper_cleared"
	EventLockoutStarted    EventType = "lockout_started"
	EventLockoutEnded      EventType = "lockout_ended"
)

// Cards (the door controller, and the daemon for `portier card`).
const (
	// EventCardAlarm: a card was refused because it looks forged: an
	// enrolled UID on a chip that answers differently (card_mismatch), or
	// a DESFire answer that failed its MAC or a proof the card could not
	// complete (card_not_authenticated with cause integrity or card_auth).
	// Recorded right after its access_denied; Reason is the decision's.
	EventCardAlarm EventType = "card_alarm"
	// EventCardLearned: the door recorded a card's first fingerprint
	// (fingerprint policy learn) or a newer DESFire card generation, after
	// the access event of the tap that taught it (Reason is its decision's).
	EventCardLearned EventType = "card_learned"
	// EventCardIssued: `portier card issue` personalised a DESFire card at
	// the door's reader (tag number and generation in Detail).
	EventCardIssued EventType = "card_issued"
	// EventCardRekeyed: `portier card rekey` moved a card to a new site
	// key version.
	EventCardRekeyed EventType = "card_rekeyed"
	// EventCardOperationFailed: `portier card issue` or `rekey` failed or
	// was given up (CardFailure builds it; CommandID and Actor say who
	// asked): what was asked, the card and the tag number masked, and why.
	EventCardOperationFailed EventType = "card_operation_failed"
)

// Commands at a door and the overrides they set (the door controller).
const (
	EventRemoteUnlock      EventType = "remote_unlock"
	EventCommandRejected   EventType = "command_rejected"
	EventLockdownOn        EventType = "lockdown_on"
	EventLockdownOff       EventType = "lockdown_off"
	EventOfficeModeOn      EventType = "office_mode_on"
	EventOfficeModeStarted EventType = "office_mode_started"
	EventOfficeModeOff     EventType = "office_mode_off"
	EventEnrolmentArmed    EventType = "enrolment_armed"
	EventEnrolled          EventType = "enrolled"
	EventEnrolmentFailed   EventType = "enrolment_failed"
	EventEnrolmentExpired  EventType = "enrolment_expired"
)

// Remote commands as the MQTT link carried them out.
const (
	EventCommandSucceeded EventType = "command_succeeded" // a remote command was carried out
	EventCommandFailed    EventType = "command_failed"    // accepted, but the action failed or was refused
)

// The outbox, as the MQTT link measures it.
const (
	EventOutboxHighWater EventType = "outbox_high_water" // the outbox passed its high-water mark
	EventOutboxFull      EventType = "outbox_full"       // the outbox reached its limit (still recording)
	EventOutboxNormal    EventType = "outbox_normal"     // the outbox drained below its mark again
)

// The event spool (EventSpool).
const (
	// EventStoreFailed: the outbox refused an event; events are held in
	// memory from then on. Detail carries the error. Written first when the
	// outbox works again, with the time of the failure.
	EventStoreFailed EventType = "event_store_failed"
	// EventStoreRecovered: every held event was written. Detail says how
	// many and for how long the outbox failed.
	EventStoreRecovered EventType = "event_store_recovered"
)

// The clock guard (ClockGuard).
const (
	EventClockUnsynced EventType = "clock_unsynced"
	EventClockSynced   EventType = "clock_synced"
)

// Supervised readers (OSDP): the door controller records them from what the
// reader's driver reports. Detail names the reader and what was seen (the
// reason: timeout, wrong_key, mac_failure, no_secure_channel, no_key, …).
const (
	// EventReaderOnline: the reader answers, its secure channel established
	// (unless configured without); also the first time after start.
	EventReaderOnline EventType = "reader_online"
	// EventReaderOffline: the reader stopped answering (within the OSDP
	// limit of 8 s) or its channel failed.
	EventReaderOffline EventType = "reader_offline"
	// EventReaderRefused: the reader answers but is not used: no Secure
	// Channel where it is required, another key, or no key yet.
	EventReaderRefused       EventType = "reader_refused"
	EventReaderPowerFault    EventType = "reader_power_fault"
	EventReaderPowerRestored EventType = "reader_power_restored"
)

// An installer's actions on an OSDP reader through the daemon (`portier
// reader …`), for the audit trail: the daemon records them when the action
// ends (ReaderChange). Detail names the command, the reader (vendor, model,
// serial from its osdp_PDID, its bus and address) and what changed, never
// its key; CommandID and Actor say who asked.
const (
	// EventReaderInstalled: `portier reader install` moved the reader from
	// the install key to a key of its own, proven by a new secure session.
	EventReaderInstalled EventType = "reader_installed"
	// EventReaderAddressChanged: `portier reader set-address` moved the
	// reader to another address (old and new address, bus, baud rate).
	EventReaderAddressChanged EventType = "reader_address_changed"
	// EventReaderOutputTested: `portier reader output` switched one of the
	// reader's outputs (its number; on, off, or pulsed and for how long).
	EventReaderOutputTested EventType = "reader_output_tested"
	// EventReaderSetupFailed: one of them failed or was refused; detail
	// names the action (install, set-address, output) and says why, as
	// command_failed's names the command.
	EventReaderSetupFailed EventType = "reader_setup_failed"
)

// EventDeviceFault is recorded when a reader or input misbehaves (a rejected
// Wiegand frame, an MFRC522 error); the door keeps running. Detail names the
// device and the error.
const EventDeviceFault EventType = "device_fault"

// Alarms of the Salto sync (cloud/saltoks/sitesync): a door is mapped to a
// lock or access group the Salto site does not have, so it opens for nobody
// through it; and the clearing when that is fixed. Detail names the door's id,
// the missing id and the site's close matches.
const (
	EventSaltoConfigMismatch        EventType = "salto_config_mismatch"
	EventSaltoConfigMismatchCleared EventType = "salto_config_mismatch_cleared"
)

// Event types of the defences of the remote-command link (the MQTT link
// records them; docs/mqtt.md and docs/door-runtime.md describe them).
const (
	// EventCommandsRefused sums up the refused commands of one cause
	// (Reason: expired, malformed, signature_invalid, …) in one interval,
	// beyond the first few of the interval that were recorded one by one as
	// command_rejected: Count says how many, SampleIDs names some of them. A
	// flood of junk so costs a handful of events, not one each.
	EventCommandsRefused EventType = "commands_refused"
	// EventPacketRefused: the broker sent a packet larger than the link
	// takes (a command can be at most a few KiB); it was not read, the
	// connection was dropped and is made again after the usual backoff.
	EventPacketRefused EventType = "mqtt_packet_refused"
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []EventType{
	EventAccessGranted, EventAccessDenied, EventAwaitingPIN,
	EventDoorOpened, EventDoorClosed, EventForcedOpen, EventForcedOpenCleared,
	EventHeldOpenPreAlarm, EventHeldOpen, EventHeldOpenCleared,
	EventExitPressed, EventTamper, EventTamperCleared,
	EventRemoteUnlock, EventCommandRejected, EventLockdownOn, EventLockdownOff,
	EventOfficeModeOn, EventOfficeModeStarted, EventOfficeModeOff,
	EventLockoutStarted, EventLockoutEnded,
	EventCardAlarm, EventCardLearned, EventCardIssued, EventCardRekeyed, EventCardOperationFailed,
	EventEnrolmentArmed, EventEnrolled, EventEnrolmentFailed, EventEnrolmentExpired,
	EventRelayOn, EventRelayOff, EventControllerStarted, EventInputQueueOverflow,
	EventCommandSucceeded, EventCommandFailed,
	EventOutboxHighWater, EventOutboxFull, EventOutboxNormal,
	EventStoreFailed, EventStoreRecovered,
	EventClockUnsynced, EventClockSynced,
	EventReaderOnline, EventReaderOffline, EventReaderRefused, EventReaderPowerFault, EventReaderPowerRestored,
	EventReaderInstalled, EventReaderAddressChanged, EventReaderOutputTested, EventReaderSetupFailed,
	EventDeviceFault,
	EventSaltoConfigMismatch, EventSaltoConfigMismatchCleared,
	EventCommandsRefused, EventPacketRefused,
}
