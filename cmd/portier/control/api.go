// Package control is the contract between a running portier (the daemon) and
// the operator commands (status, unlock, lockdown, office-mode, enroll,
// card, reader install, sync-now, events --follow): HTTP over a unix socket
// that only the service user and its group may use. api.go is the contract (routes and wire
// types), server.go serves it from what the daemon offers (Daemon), and
// client.go is the typed client the commands use. docs/door-runtime.md
// describes it for people.
package control

import (
	"fmt"
	"net/url"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/saltoks/sitesync"
	"github.com/portier-io/portier/sqlite"
)

// The routes; the server registers them and the client builds its requests
// from them, nothing else knows them.
const (
	pathStatus = "/v1/status" // GET: Status
	pathSync   = "/v1/sync"   // POST: sync from Salto KS now
	// GET ?after=SEQ&follow=1&poll=250ms: recorded events as JSON lines.
	pathEvents = "/v1/events"
	pathDoors  = "/v1/doors/" // POST {door}/{action}, the actions below
)

// Door actions: POST /v1/doors/{door}/{action}.
const (
	actionUnlock     = "unlock"      // UnlockRequest → agent.CommandResult
	actionLockdown   = "lockdown"    // SwitchRequest → agent.CommandResult
	actionOfficeMode = "office_mode" // SwitchRequest → agent.CommandResult
	actionEnroll     = "enroll"      // EnrollRequest → EnrollResponse
	// actionReaderInstall moves the door's new OSDP reader to a key of its
	// own: no body; the answer streams InstallStep JSON lines.
	actionReaderInstall = "reader_install"
	// actionReaderAddress moves the door's OSDP reader to another address
	// (ReaderAddressRequest); the answer streams InstallStep JSON lines.
	actionReaderAddress = "reader_address"
	// actionReaderOutput drives one of the reader's outputs
	// (ReaderOutputRequest) and answers once the reader acknowledged it.
	actionReaderOutput = "reader_output"
	// CardRequest → CardProgress as JSON lines while the door's reader
	// works, the last one Done.
	actionCard = "card"
)

// doorRoute is the server's pattern of a door action.
func doorRoute(action string) string { return "POST " + pathDoors + "{door}/" + action }

// doorPath is the path of a door action at door.
func doorPath(door, action string) string { return pathDoors + url.PathEscape(door) + "/" + action }

// Event streams look for new events this often by default, and at most this
// often.
const (
	EventsPollDefault = 250 * time.Millisecond
	EventsPollMin     = 10 * time.Millisecond
)

// Status is what `portier status` shows.
type Status struct {
	GatewayID  string             `json:"gateway_id"`
	Version    string             `json:"version"`
	StartedAt  time.Time          `json:"started_at"`
	Driver     string             `json:"driver"`
	Site       agent.Site         `json:"site"`
	Generation int64              `json:"snapshot_generation"`
	Doors      []agent.DoorStatus `json:"doors"`
	Sync       *sitesync.State    `json:"sync,omitempty"`
	Clock      ClockStatus        `json:"clock"`
	Outbox     sqlite.OutboxStats `json:"outbox"`
	// EventsHeld counts events an outbox failure holds in memory (see
	// agent.EventSpool); EventsLost those lost at the spool's limit.
	EventsHeld int `json:"events_held,omitempty"`
	EventsLost int `json:"events_lost,omitempty"`
	// Storage is the filesystem that holds the database.
	Storage *mqtt.StoragePayload `json:"storage,omitempty"`
	// MQTT is the broker link; absent when no broker is configured.
	MQTT *MQTTStatus `json:"mqtt,omitempty"`
	// Readers are the supervised (OSDP) readers as the hardware sees them:
	// condition, identity, link counters.
	Readers []agent.ReaderHealth `json:"readers,omitempty"`
}

// MQTTStatus is the MQTT link's state with the brokers it uses.
type MQTTStatus struct {
	Brokers []string `json:"brokers"`
	mqtt.LinkStatus
}

// ClockStatus reports the clock guard.
type ClockStatus struct {
	Trusted bool   `json:"trusted"`
	Reason  string `json:"reason,omitempty"`
	Policy  string `json:"policy"`
}

// UnlockRequest is the body of an unlock.
type UnlockRequest struct {
	Duration string `json:"duration,omitempty"` // Go duration; empty: one access-time pulse
	Override bool   `json:"override,omitempty"` // needed during lockdown
}

// SwitchRequest turns lockdown or office mode on or off.
type SwitchRequest struct {
	On    bool      `json:"on"`
	Until time.Time `json:"until,omitzero"` // office mode only
}

// EnrollRequest arms "enrol the next tap" for a Salto tag number.
type EnrollRequest struct {
	TagNumber string `json:"tag_number"`
}

// EnrollResponse is the outcome of an enrolment: the door's answer to the
// command and, when it was accepted, what the tap did.
type EnrollResponse struct {
	Command    agent.CommandResult `json:"command"`
	Outcome    string              `json:"outcome,omitempty"`
	TagNumber  string              `json:"tag_number,omitempty"`
	Credential string              `json:"credential,omitempty"`
	User       *agent.UserRef      `json:"user,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// InstallStep is one line of a reader operation's answer (install, address
// change): a step as it is done, and at the end Done, with the Error if it
// failed.
type InstallStep struct {
	Step  string `json:"step,omitempty"`
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// ReaderAddressRequest moves a door's OSDP reader to another address.
type ReaderAddressRequest struct {
	Address int `json:"address"`        // 0–126
	Baud    int `json:"baud,omitempty"` // 0: the bus's rate (the only one taken)
}

// Reader output actions.
const (
	OutputOn    = "on"
	OutputOff   = "off"
	OutputPulse = "pulse" // on for Pulse, then back off
)

// ReaderOutputRequest drives one output of a door's OSDP reader.
type ReaderOutputRequest struct {
	Output int    `json:"output"` // from 0, as OSDP counts
	Action string `json:"action"` // OutputOn, OutputOff, OutputPulse
	Pulse  string `json:"pulse,omitempty"`
}

// PulseFor is the request's pulse length (OutputPulse only).
func (r ReaderOutputRequest) PulseFor() (time.Duration, error) {
	switch r.Action {
	case OutputOn, OutputOff:
		if r.Pulse != "" {
			return 0, fmt.Errorf("pulse %q only goes with the pulse action", r.Pulse)
		}
		return 0, nil
	case OutputPulse:
		d, err := time.ParseDuration(r.Pulse)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("pulse %q: want a positive Go duration like 500ms or 3s", r.Pulse)
		}
		return d, nil
	}
	return 0, fmt.Errorf("output action %q: want %s, %s or %s", r.Action, OutputOn, OutputOff, OutputPulse)
}

// CardOp is what `portier card` does with the next card presented at a
// door's reader; the daemon's reader loop does the card work.
type CardOp string

// Card operations.
const (
	CardInspect CardOp = "inspect" // say what the card is; change nothing
	CardIssue   CardOp = "issue"   // personalise a blank DESFire card for a tag number
	CardRekey   CardOp = "rekey"   // move an issued card to the newest site key version
)

// CardOps lists the operations.
var CardOps = []CardOp{CardInspect, CardIssue, CardRekey}

// CardRequest asks for a card operation at a door's reader.
type CardRequest struct {
	Op CardOp `json:"op"`
	// TagNumber (issue) is the Salto tag number the card will carry.
	TagNumber string `json:"tag_number,omitempty"`
	// Reissue (issue) replaces the site application of a card issued
	// before (its old identity stops opening anything); it needs UID.
	Reissue bool `json:"reissue,omitempty"`
	// UID (hex), when set, names the one card to work on: any other card
	// presented (a member tapping in the meantime) is left untouched and
	// the operation fails.
	UID string `json:"uid,omitempty"`
	// Wait is how long to wait for a card (Go duration); default
	// CardWaitDefault. Once the reader has the card, the operation runs
	// to its end (an issue cut short would leave a half-made card).
	Wait string `json:"wait,omitempty"`
}

// WaitFor is the request's wait for a card.
func (r CardRequest) WaitFor() (time.Duration, error) {
	if r.Wait == "" {
		return CardWaitDefault, nil
	}
	d, err := time.ParseDuration(r.Wait)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("wait %q: want a positive Go duration like 60s", r.Wait)
	}
	return d, nil
}

// CardWaitDefault is how long a card operation waits for a card by default.
const CardWaitDefault = time.Minute

// CardProgress is one line of a card operation's answer: a step as it
// starts, and at the end Done with the Report or the Error.
type CardProgress struct {
	Step   string      `json:"step,omitempty"`
	Done   bool        `json:"done,omitempty"`
	Error  string      `json:"error,omitempty"`
	Report *CardReport `json:"report,omitempty"`
}

// CardReport says what a card is and what was done to it, never a key.
type CardReport struct {
	Op   CardOp `json:"op"`
	Door string `json:"door"`
	// UID is the card's UID in hex (the card is in the operator's hand).
	UID     string `json:"uid"`
	ATQA    string `json:"atqa"`
	SAK     string `json:"sak"`
	ATS     string `json:"ats,omitempty"`
	Product string `json:"product"` // e.g. "DESFire EV2, originality signature verified"
	Version string `json:"version,omitempty"`
	// Originality names the key the originality signature verifies under.
	Originality string `json:"originality,omitempty"`
	// CardMasterKey is "factory default", "site key" or "unknown" (a
	// DESFire only).
	CardMasterKey string `json:"card_master_key,omitempty"`
	// Site is the site application: "issued" (then TagNumber, Generation
	// and KeyVersion), or why not (not_issued, wrong_key, not_desfire, …).
	Site       string         `json:"site"`
	TagNumber  string         `json:"tag_number,omitempty"`
	Generation uint32         `json:"generation,omitempty"`
	KeyVersion *int           `json:"key_version,omitempty"`
	User       *agent.UserRef `json:"user,omitempty"` // who holds the tag number
}

// errorBody is the body of every error answer (4xx, 5xx). A 404 with one
// is a door the daemon does not have (the client's error is then errors.Is
// agent.ErrUnknownDoor); a path the server does not serve has none.
type errorBody struct {
	Error string `json:"error"`
}
