package agent

// Door runtime event types (access_granted and access_denied are in event.go).
// They are stable strings; docs/door-runtime.md lists each with its fields.
const (
	EventAwaitingPIN        EventType = "awaiting_pin" // card_and_pin: card accepted, PIN expected
	EventDoorOpened         EventType = "door_opened"
	EventDoorClosed         EventType = "door_closed"
	EventForcedOpen         EventType = "forced_open"
	EventForcedOpenCleared  EventType = "forced_open_cleared"
	EventHeldOpenPreAlarm   EventType = "held_open_prealarm"
	EventHeldOpen           EventType = "held_open"
	EventHeldOpenCleared    EventType = "held_open_cleared"
	EventExitPressed        EventType = "exit_pressed"
	EventTamper             EventType = "tamper"
	EventTamperCleared      EventType = "tamper_cleared"
	EventRemoteUnlock       EventType = "remote_unlock"
	EventCommandRejected    EventType = "command_rejected"
	EventLockdownOn         EventType = "lockdown_on"
	EventLockdownOff        EventType = "lockdown_off"
	EventOfficeModeOn       EventType = "office_mode_on"
	EventOfficeModeStarted  EventType = "office_mode_started"
	EventOfficeModeOff      EventType = "office_mode_off"
	EventLockoutStarted     EventType = "lockout_started"
	EventLockoutEnded       EventType = "lockout_ended"
	EventEnrolmentArmed     EventType = "enrolment_armed"
	EventEnrolled           EventType = "enrolled"
	EventEnrolmentFailed    EventType = "enrolment_failed"
	EventEnrolmentExpired   EventType = "enrolment_expired"
	EventRelayOn            EventType = "relay_on"
	EventRelayOff           EventType = "relay_off"
	EventControllerStarted  EventType = "controller_started"
	EventInputQueueOverflow EventType = "input_queue_overflow"
)

// DoorEventTypes lists every event type the door runtime emits, in
// documentation order.
var DoorEventTypes = []EventType{
	EventAccessGranted, EventAccessDenied, EventAwaitingPIN,
	EventDoorOpened, EventDoorClosed, EventForcedOpen, EventForcedOpenCleared,
	EventHeldOpenPreAlarm, EventHeldOpen, EventHeldOpenCleared,
	EventExitPressed, EventTamper, EventTamperCleared,
	EventRemoteUnlock, EventCommandRejected, EventLockdownOn, EventLockdownOff,
	EventOfficeModeOn, EventOfficeModeStarted, EventOfficeModeOff,
	EventLockoutStarted, EventLockoutEnded,
	EventEnrolmentArmed, EventEnrolled, EventEnrolmentFailed, EventEnrolmentExpired,
	EventRelayOn, EventRelayOff, EventControllerStarted, EventInputQueueOverflow,
}
