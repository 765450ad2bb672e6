package agent

import "time"

// Event is one thing that happened at the gateway, as written to the outbox.
// Credentials are masked; PINs never appear.
type Event struct {
	// ID and Seq are assigned by the outbox; an event not recorded yet (a
	// door's last event in its status) has neither, and shows none.
	ID         string         `json:"id,omitempty"`  // unique, for consumer de-duplication
	Seq        int64          `json:"seq,omitempty"` // per-gateway monotonic sequence number
	Time       time.Time      `json:"time"`
	Type       EventType      `json:"type"`
	Door       string         `json:"door,omitempty"`
	Reason     Reason         `json:"reason,omitempty"`
	User       *UserRef       `json:"user,omitempty"`
	Group      *GroupRef      `json:"group,omitempty"`
	Kind       CredentialKind `json:"credential_kind,omitempty"`
	Credential string         `json:"credential,omitempty"` // masked
	Detail     string         `json:"detail,omitempty"`
	CommandID  string         `json:"command_id,omitempty"` // the remote or local command that caused it
	Actor      string         `json:"actor,omitempty"`      // who sent that command
	// A summary event (commands_refused) stands for Count happenings, of
	// which SampleIDs names a few.
	Count     int      `json:"count,omitempty"`
	SampleIDs []string `json:"sample_ids,omitempty"`
}

// AccessEvent turns a decision into its event (ID and Seq are assigned by the
// outbox).
func AccessEvent(d Decision, at time.Time) Event {
	t := EventAccessDenied
	if d.Granted {
		t = EventAccessGranted
	}
	return Event{Time: at, Type: t, Door: d.Door, Reason: d.Reason, User: d.User, Group: d.Group, Kind: d.Kind, Credential: d.Credential, Detail: d.Detail}
}
