// Package control is the contract between a running portier (the daemon) and
// the operator commands (status, unlock, lockdown, office-mode, enroll,
// sync-now, events --follow, reader install): HTTP over a unix socket that only the service
// user and its group may use. api.go is the contract (routes and wire
// types), server.go serves it from what the daemon offers (Daemon), and
// client.go is the typed client the commands use. docs/door-runtime.md
// describes it for people.
package control

import (
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

// InstallStep is one line of a reader install's progress: a step done, then
// a last line with Done (success) or Error.
type InstallStep struct {
	Step  string `json:"step,omitempty"`
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// errorBody is the body of every error answer (4xx, 5xx).
type errorBody struct {
	Error string `json:"error"`
}
