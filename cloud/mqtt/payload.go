package mqtt

import (
	"time"

	"github.com/portier-io/portier/agent"
)

// Schema is the version of every JSON payload. It changes only when a field
// changes meaning or goes away; new fields may appear without a bump.
const Schema = 1

// Gateway states on the status topic.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// StatusPayload is the retained gateway status. The offline form is also the
// Last Will, so it carries no time.
type StatusPayload struct {
	Schema    int       `json:"schema"`
	State     string    `json:"state"`
	SiteID    string    `json:"site_id"`
	GatewayID string    `json:"gateway_id"`
	Since     time.Time `json:"since,omitzero"`
	Version   string    `json:"version,omitempty"`
	Doors     []string  `json:"doors,omitempty"`
}

// EventPayload is one outbox event as published.
type EventPayload struct {
	Schema     int                  `json:"schema"`
	SiteID     string               `json:"site_id"`
	GatewayID  string               `json:"gateway_id"`
	EventID    string               `json:"event_id"`
	Seq        int64                `json:"seq"`
	Time       time.Time            `json:"ts"`
	Type       agent.EventType      `json:"type"`
	Category   string               `json:"category"`
	Door       string               `json:"door,omitempty"`
	Reason     agent.Reason         `json:"reason,omitempty"`
	User       *agent.UserRef       `json:"user,omitempty"`
	Group      *agent.GroupRef      `json:"group,omitempty"`
	Kind       agent.CredentialKind `json:"credential_kind,omitempty"`
	Credential string               `json:"credential,omitempty"` // masked by the agent
	Detail     string               `json:"detail,omitempty"`
	CommandID  string               `json:"command_id,omitempty"`
	Actor      string               `json:"actor,omitempty"`
	Count      int                  `json:"count,omitempty"`      // a summary (commands_refused): how many it stands for
	SampleIDs  []string             `json:"sample_ids,omitempty"` // a summary: some of their ids
}

func (l *Link) eventPayload(e agent.Event) EventPayload {
	return EventPayload{
		Schema: Schema, SiteID: l.cfg.Topics.Site, GatewayID: l.cfg.Topics.Gateway,
		EventID: e.ID, Seq: e.Seq, Time: e.Time.UTC(), Type: e.Type, Category: EventCategory(e.Type),
		Door: e.Door, Reason: e.Reason, User: e.User, Group: e.Group, Kind: e.Kind, Credential: e.Credential,
		Detail: e.Detail, CommandID: e.CommandID, Actor: e.Actor, Count: e.Count, SampleIDs: e.SampleIDs,
	}
}

// DoorStatePayload is the retained state of one door.
type DoorStatePayload struct {
	Schema         int               `json:"schema"`
	SiteID         string            `json:"site_id"`
	GatewayID      string            `json:"gateway_id"`
	Door           string            `json:"door"`
	Time           time.Time         `json:"ts"`
	Running        bool              `json:"running"`
	Locked         bool              `json:"locked"`
	DoorOpen       bool              `json:"door_open"`
	Override       agent.Override    `json:"override"`
	OfficeMode     agent.OfficeState `json:"office_mode"`
	UnlockedUntil  time.Time         `json:"unlocked_until,omitzero"`
	LockedOutUntil time.Time         `json:"locked_out_until,omitzero"`
	Alarms         []agent.EventType `json:"alarms"`
	EnrolmentArmed bool              `json:"enrolment_armed"`
	// Readers are the door's supervised (OSDP) readers; absent when it has
	// none.
	Readers []agent.ReaderStatus `json:"readers,omitempty"`
}

func (l *Link) doorState(s agent.DoorStatus, at time.Time) DoorStatePayload {
	alarms := s.Alarms
	if alarms == nil {
		alarms = []agent.EventType{}
	}
	return DoorStatePayload{
		Schema: Schema, SiteID: l.cfg.Topics.Site, GatewayID: l.cfg.Topics.Gateway, Door: s.Door, Time: at.UTC(),
		Running: s.Running, Locked: s.Locked, DoorOpen: s.DoorOpen, Override: s.Override, OfficeMode: s.OfficeMode,
		UnlockedUntil: s.UnlockedUntil, LockedOutUntil: s.LockedOutUntil, Alarms: alarms, EnrolmentArmed: s.EnrolmentArmed,
		Readers: s.Readers,
	}
}

// Outbox alarm states, as in telemetry's outbox.state.
const (
	OutboxNormal    = "normal"
	OutboxHighWater = "high_water"
	OutboxFullState = "full"
)

// TelemetryPayload is the periodic telemetry.
type TelemetryPayload struct {
	Schema    int       `json:"schema"`
	SiteID    string    `json:"site_id"`
	GatewayID string    `json:"gateway_id"`
	Time      time.Time `json:"ts"`
	Version   string    `json:"version"`
	UptimeS   int64     `json:"uptime_s"`
	Sync      struct {
		LastAt     time.Time `json:"last_at,omitzero"`
		AgeS       *int64    `json:"age_s"` // null: never synced
		LastResult string    `json:"last_result"`
		LastError  string    `json:"last_error,omitempty"`
	} `json:"sync"`
	Cache  map[string]int `json:"cache"`
	Outbox struct {
		Depth      int    `json:"depth"`
		OldestAgeS int64  `json:"oldest_age_s"`
		Limit      int    `json:"limit"`
		HighWater  int    `json:"high_water"`
		State      string `json:"state"`
	} `json:"outbox"`
	MQTT struct {
		Reconnects int64 `json:"reconnects"`
		Published  int64 `json:"events_published"`
	} `json:"mqtt"`
	Clock struct {
		Trusted bool   `json:"trusted"`
		Status  string `json:"status"`
	} `json:"clock"`
	Storage *StoragePayload `json:"storage,omitempty"` // absent when unknown
	// Readers are the supervised (OSDP) readers; absent when there are none.
	Readers []agent.ReaderHealth `json:"readers,omitempty"`
}

// StoragePayload is the filesystem that holds the gateway's database.
type StoragePayload struct {
	FreeMB  int64 `json:"free_mb"`
	TotalMB int64 `json:"total_mb"`
}

// Response statuses (Seam's action attempts).
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusError   = "error"
)

// ResponsePayload answers one command on the response topic.
type ResponsePayload struct {
	Schema    int            `json:"schema"`
	SiteID    string         `json:"site_id"`
	GatewayID string         `json:"gateway_id"`
	ID        string         `json:"id,omitempty"` // the command's id; absent when it could not be read
	Command   string         `json:"command"`
	Status    string         `json:"status"`
	Time      time.Time      `json:"ts"`
	Result    any            `json:"result,omitempty"`
	Error     *ResponseError `json:"error,omitempty"`
}

// ResponseError says why a command failed.
type ResponseError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// HAEventPayload is one door event as Home Assistant receives it on the
// door's event entities (access and command) and its last-access sensor:
// flat, so automations and templates reach every field directly. The user
// is as the gateway's cache knows them and the credential is masked, as in
// the event itself; door_name is the door's display name (its id when it
// has none).
type HAEventPayload struct {
	EventType  agent.EventType      `json:"event_type"`
	EventID    string               `json:"event_id"`
	Time       time.Time            `json:"ts"`
	Door       string               `json:"door"`
	DoorName   string               `json:"door_name"`
	Reason     agent.Reason         `json:"reason,omitempty"`
	UserID     string               `json:"user_id,omitempty"`
	UserName   string               `json:"user_name,omitempty"`
	Kind       agent.CredentialKind `json:"credential_kind,omitempty"`
	Credential string               `json:"credential,omitempty"`
	Detail     string               `json:"detail,omitempty"`
	CommandID  string               `json:"command_id,omitempty"`
	Actor      string               `json:"actor,omitempty"`
}
