package mqtt

import (
	"context"
	"time"

	"github.com/portier-io/portier/agent"
)

// Outbox is the durable event outbox the sender drains; *sqlite.DB
// implements it. Pending returns undelivered events with seq > after,
// oldest first; AckThrough records that every event up to a seq was
// delivered (the sender passes the end of the contiguous prefix the broker
// PUBACKed); Appended wakes the sender after local appends.
type Outbox interface {
	Pending(ctx context.Context, after int64, limit int) ([]agent.Event, error)
	AckThrough(ctx context.Context, through int64) error
	Appended() <-chan struct{}
}

// OutboxMeter reports the outbox's depth and the time of its oldest event
// (zero when empty). With *sqlite.DB: OutboxStats' Depth and Oldest.
type OutboxMeter interface {
	OutboxDepth(ctx context.Context) (depth int, oldest time.Time, err error)
}

// CommandLog records processed command ids so nothing runs twice; *sqlite.DB
// implements it. ClaimCommand records id (with its command name and expiry)
// and reports false when it was already recorded; FinishCommand stores the
// outcome; PruneCommands forgets ids whose expiry is before the given time.
type CommandLog interface {
	ClaimCommand(ctx context.Context, id, name string, expires time.Time) (bool, error)
	FinishCommand(ctx context.Context, id, status, errorType string) error
	PruneCommands(ctx context.Context, before time.Time) (int, error)
}

// DiscoveryLog remembers which Home Assistant discovery configs the gateway
// announced (under a meta key), so that entities of a door, reader or
// option no longer configured are removed rather than left behind;
// *sqlite.DB implements it.
type DiscoveryLog interface {
	Meta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, kv map[string]string) error
}

// Doors runs door commands; *agent.Doors implements it over the gateway's
// door controllers. The CommandResult is the door's answer (refusals are
// results); the error only reports that the command did not reach the door.
type Doors interface {
	DoorIDs() []string
	DoorStatus(door string) (agent.DoorStatus, bool)
	Unlock(ctx context.Context, door string, cmd agent.RemoteUnlock) (agent.CommandResult, error)
	Lockdown(ctx context.Context, door string, cmd agent.LockdownCommand) (agent.CommandResult, error)
	OfficeMode(ctx context.Context, door string, cmd agent.OfficeModeCommand) (agent.CommandResult, error)
	ArmEnrolment(ctx context.Context, door string, cmd agent.EnrolCommand) (agent.CommandResult, <-chan agent.EnrolResult, error)
}

var _ Doors = (*agent.Doors)(nil)

// AccessCodeRequest asks for a new access code (a PIN for one door).
type AccessCodeRequest struct {
	Door     string
	Name     string
	StartsAt time.Time // zero: now
	EndsAt   time.Time // zero: ongoing
}

// AccessCodes programs access codes; an adapter over the access code service.
// Create returns the code and its PIN, which the link puts in the command's
// success response and nowhere else. Errors that carry a type for the
// response should be *ActionError.
type AccessCodes interface {
	CreateAccessCode(ctx context.Context, req AccessCodeRequest) (agent.AccessCode, string, error)
	DeleteAccessCode(ctx context.Context, id string) (agent.AccessCode, error)
	ListAccessCodes(ctx context.Context) ([]agent.AccessCode, error)
}

// Syncer runs one Salto KS sync now and returns when it landed or failed.
type Syncer interface {
	SyncNow(ctx context.Context) error
}

// ActionError is an action failure with a machine-readable type for the
// response (e.g. "salto_site_user_not_subscribed"). Adapters wrap their
// errors in it; any other error is reported as type "action_failed".
type ActionError struct {
	Type    string
	Message string
}

func (e *ActionError) Error() string { return e.Type + ": " + e.Message }

// Telemetry is what the gateway knows about itself; the link adds the
// outbox, connection and clock-independent figures.
type Telemetry struct {
	Version        string
	StartedAt      time.Time
	LastSyncAt     time.Time // zero: never synced
	LastSyncResult string    // e.g. "ok", "failed", "never"
	LastSyncError  string
	Cache          map[string]int // e.g. users, credentials, groups, access_codes
	ClockTrusted   bool           // false: expiry cannot be checked (see docs/mqtt.md)
	ClockStatus    string         // e.g. "synchronized", "unsynchronized", "went_backwards"
	// StorageFreeMB and StorageTotalMB describe the filesystem holding the
	// database (zero total: unknown). A full disk stops the outbox.
	StorageFreeMB, StorageTotalMB int64
	// Readers are the supervised (OSDP) readers: condition, identity and
	// link counters.
	Readers []agent.ReaderHealth
}

// ClockGuard says whether the gateway clock is untrusted (not synchronised,
// or it went backwards); *agent.ClockGuard implements it. The link asks it
// for every command, so it must be cheap.
type ClockGuard interface {
	Untrusted() bool
}

var _ ClockGuard = (*agent.ClockGuard)(nil)

// TelemetrySource reports the gateway's telemetry; it must not block for long.
type TelemetrySource interface {
	Telemetry(ctx context.Context) Telemetry
}
