package mqtt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portier-io/portier/agent"
)

// Topics builds every topic of the link. All of them live under
// <prefix>/<site>/<gateway>, so a broker ACL can grant one gateway exactly
// its own subtree (mosquitto: pattern readwrite portier/+/%c/#).
type Topics struct {
	Prefix    string // e.g. "portier"; may contain '/' but no wildcards
	Site      string
	Gateway   string
	Discovery string // Home Assistant discovery prefix, e.g. "homeassistant"
}

// Base is <prefix>/<site>/<gateway>.
func (t Topics) Base() string { return t.Prefix + "/" + t.Site + "/" + t.Gateway }

// Status is the retained gateway status (online/offline, also the LWT).
func (t Topics) Status() string { return t.Base() + "/status" }

// DoorState is the retained state of one door.
func (t Topics) DoorState(door string) string { return t.Base() + "/door/" + door + "/state" }

// Event is where outbox events of one category are published.
func (t Topics) Event(category string) string { return t.Base() + "/event/" + category }

// Telemetry is the periodic, retained telemetry.
func (t Topics) Telemetry() string { return t.Base() + "/telemetry" }

// Command is the topic one command is sent to.
func (t Topics) Command(name string) string { return t.Base() + "/cmd/" + name }

// Commands is the filter the gateway subscribes to for commands.
func (t Topics) Commands() string { return t.Base() + "/cmd/+" }

// Response is where every command is answered.
func (t Topics) Response() string { return t.Base() + "/response" }

// HALock is Home Assistant's lock command topic for one door (subscribed only
// when home_assistant.allow_unlock is on).
func (t Topics) HALock(door string) string { return t.Base() + "/ha/" + door + "/lock/set" }

// HALocks is the filter for every door's Home Assistant lock command.
func (t Topics) HALocks() string { return t.Base() + "/ha/+/lock/set" }

// HALockdown is Home Assistant's lockdown switch command topic for one door
// (subscribed only when home_assistant.allow_lockdown is on).
func (t Topics) HALockdown(door string) string { return t.Base() + "/ha/" + door + "/lockdown/set" }

// HALockdowns is the filter for every door's Home Assistant lockdown switch.
func (t Topics) HALockdowns() string { return t.Base() + "/ha/+/lockdown/set" }

// HAOfficeMode is Home Assistant's office mode switch command topic for one
// door (subscribed only when home_assistant.allow_office_mode is on).
func (t Topics) HAOfficeMode(door string) string {
	return t.Base() + "/ha/" + door + "/office_mode/set"
}

// HAOfficeModes is the filter for every door's Home Assistant office mode
// switch.
func (t Topics) HAOfficeModes() string { return t.Base() + "/ha/+/office_mode/set" }

// HAAccess mirrors one door's access events for Home Assistant's event entity.
func (t Topics) HAAccess(door string) string { return t.Base() + "/ha/" + door + "/access" }

// HALastAccess holds one door's last access decision, retained, for Home
// Assistant's last-access sensor.
func (t Topics) HALastAccess(door string) string { return t.Base() + "/ha/" + door + "/last_access" }

// HACommandResult mirrors the outcome of every command at one door for Home
// Assistant's command event entity (so a refused UNLOCK is seen there).
func (t Topics) HACommandResult(door string) string { return t.Base() + "/ha/" + door + "/command" }

// HAStatus is Home Assistant's birth/will topic.
func (t Topics) HAStatus() string { return t.Discovery + "/status" }

// HAConfig is the discovery topic of one entity; its node level names the
// site and the gateway (HANode), so equal gateway ids on two sites never
// share a topic.
func (t Topics) HAConfig(component, objectID string) string {
	return t.Discovery + "/" + component + "/" + t.HANode() + "/" + objectID + "/config"
}

// HANode is the gateway's Home Assistant node id: the site id and the
// gateway id joined by "__", each with "_" written as "_-". Ids hold only
// [A-Za-z0-9_-], so an escaped id never contains "__" and the join is
// one-to-one: no two (site, gateway) pairs share a node id.
func (t Topics) HANode() string { return haJoin(t.Site, t.Gateway) }

// haJoin joins ids unambiguously (see HANode).
func haJoin(ids ...string) string {
	esc := make([]string, len(ids))
	for i, id := range ids {
		esc[i] = strings.ReplaceAll(id, "_", "_-")
	}
	return strings.Join(esc, "__")
}

// Event categories: the last level of an event topic.
const (
	CategoryAccess  = "access"  // access decisions
	CategoryAlarm   = "alarm"   // door alarms, lockouts, reader supervision, outbox alarms, Salto config mismatches
	CategoryDoor    = "door"    // contact, relay and exit button
	CategoryCommand = "command" // remote and local commands, the overrides they set, installers' card and reader actions
	CategorySystem  = "system"  // everything else (controller start, …)
)

// Categories lists the event categories in documentation order.
var Categories = []string{CategoryAccess, CategoryAlarm, CategoryDoor, CategoryCommand, CategorySystem}

// EventCategory says on which event topic an event type is published.
func EventCategory(t agent.EventType) string {
	switch t {
	case agent.EventAccessGranted, agent.EventAccessDenied, agent.EventAwaitingPIN, agent.EventCardLearned:
		return CategoryAccess
	case agent.EventForcedOpen, agent.EventForcedOpenCleared, agent.EventHeldOpenPreAlarm, agent.EventHeldOpen,
		agent.EventHeldOpenCleared, agent.EventTamper, agent.EventTamperCleared, agent.EventLockoutStarted,
		agent.EventLockoutEnded, agent.EventInputQueueOverflow,
		agent.EventOutboxHighWater, agent.EventOutboxFull, agent.EventOutboxNormal, agent.EventStoreFailed, agent.EventStoreRecovered,
		agent.EventSaltoConfigMismatch, agent.EventSaltoConfigMismatchCleared, agent.EventPacketRefused, agent.EventCardAlarm,
		agent.EventReaderOnline, agent.EventReaderOffline, agent.EventReaderRefused, agent.EventReaderPowerFault, agent.EventReaderPowerRestored:
		return CategoryAlarm
	case agent.EventDoorOpened, agent.EventDoorClosed, agent.EventExitPressed, agent.EventRelayOn, agent.EventRelayOff:
		return CategoryDoor
	case agent.EventRemoteUnlock, agent.EventCommandRejected, agent.EventLockdownOn, agent.EventLockdownOff,
		agent.EventOfficeModeOn, agent.EventOfficeModeStarted, agent.EventOfficeModeOff,
		agent.EventEnrolmentArmed, agent.EventEnrolled, agent.EventEnrolmentFailed, agent.EventEnrolmentExpired,
		agent.EventCardIssued, agent.EventCardRekeyed, agent.EventCardOperationFailed, agent.EventCommandSucceeded, agent.EventCommandFailed, agent.EventCommandsRefused,
		agent.EventReaderInstalled, agent.EventReaderAddressChanged, agent.EventReaderOutputTested, agent.EventReaderSetupFailed:
		return CategoryCommand
	}
	return CategorySystem
}

// TopicDoc describes one topic for the documentation check: Pattern uses
// {site}, {gateway}, {door}, {category}, {name} and {discovery} placeholders
// exactly as docs/mqtt.md and docs/asyncapi.yaml spell them.
type TopicDoc struct {
	Pattern  string
	Build    func(Topics) string // the topic the code uses, built with placeholder values
	Sub      bool                // the gateway subscribes (else it publishes)
	Retained bool
	QoS      byte
}

// placeholders is a Topics whose ids are the documentation placeholders.
var placeholders = Topics{Prefix: "{prefix}", Site: "{site}", Gateway: "{gateway}", Discovery: "{discovery}"}

// TopicTable lists every topic the link publishes or subscribes to. The
// documentation test walks it; add a row whenever code gains a topic.
func TopicTable() []TopicDoc {
	return []TopicDoc{
		{Pattern: "{prefix}/{site}/{gateway}/status", Build: Topics.Status, Retained: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/door/{door}/state", Build: func(t Topics) string { return t.DoorState("{door}") }, Retained: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/event/{category}", Build: func(t Topics) string { return t.Event("{category}") }, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/telemetry", Build: Topics.Telemetry, Retained: true, QoS: 0},
		{Pattern: "{prefix}/{site}/{gateway}/cmd/{name}", Build: func(t Topics) string { return t.Command("{name}") }, Sub: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/response", Build: Topics.Response, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/lock/set", Build: func(t Topics) string { return t.HALock("{door}") }, Sub: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/lockdown/set", Build: func(t Topics) string { return t.HALockdown("{door}") }, Sub: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/office_mode/set", Build: func(t Topics) string { return t.HAOfficeMode("{door}") }, Sub: true, QoS: 1},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/access", Build: func(t Topics) string { return t.HAAccess("{door}") }, QoS: 0},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/last_access", Build: func(t Topics) string { return t.HALastAccess("{door}") }, Retained: true, QoS: 0},
		{Pattern: "{prefix}/{site}/{gateway}/ha/{door}/command", Build: func(t Topics) string { return t.HACommandResult("{door}") }, QoS: 0},
		{Pattern: "{discovery}/status", Build: Topics.HAStatus, Sub: true, QoS: 1},
		{Pattern: "{discovery}/{component}/{site}__{gateway}/{object_id}/config", Build: func(t Topics) string { return t.HAConfig("{component}", "{object_id}") }, QoS: 1},
	}
}

// Pattern returns the documentation pattern of a concrete topic built by t,
// or "" when no row of TopicTable matches it.
func (t Topics) Pattern(topic string) string {
	for _, row := range TopicTable() {
		if matchPattern(row.Pattern, topic, t) {
			return row.Pattern
		}
	}
	return ""
}

// matchPattern reports whether topic fits a documented pattern once the
// configured ids are filled in; other placeholders match any one level.
func matchPattern(pattern, topic string, t Topics) bool {
	want := strings.Split(expandIDs(pattern, t), "/")
	got := strings.Split(topic, "/")
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if strings.HasPrefix(want[i], "{") && strings.HasSuffix(want[i], "}") {
			if got[i] == "" {
				return false
			}
			continue
		}
		if want[i] != got[i] {
			return false
		}
	}
	return true
}

// expandIDs fills the configured ids into a documentation pattern.
func expandIDs(pattern string, t Topics) string {
	return strings.NewReplacer("{site}__{gateway}", t.HANode(), // escaped, as HAConfig builds it
		"{prefix}", t.Prefix, "{site}", t.Site, "{gateway}", t.Gateway, "{discovery}", t.Discovery).Replace(pattern)
}

// Validate checks the ids and prefixes (after defaults, an empty Prefix or
// Discovery is refused).
func (t Topics) Validate() error {
	var errs []error
	if err := validPrefix(t.Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := validPrefix(t.Discovery); err != nil {
		errs = append(errs, fmt.Errorf("discovery prefix: %w", err))
	}
	if !ValidID(t.Site) {
		errs = append(errs, fmt.Errorf("site id %q: %s", t.Site, IDRule))
	}
	if !ValidID(t.Gateway) {
		errs = append(errs, fmt.Errorf("gateway id %q: %s", t.Gateway, IDRule))
	}
	return errors.Join(errs...)
}

// WithDefaults fills an empty Prefix and Discovery.
func (t Topics) WithDefaults() Topics {
	if t.Prefix == "" {
		t.Prefix = DefaultPrefix
	}
	if t.Discovery == "" {
		t.Discovery = DefaultDiscoveryPrefix
	}
	return t
}

// IDRule is what ValidID accepts, for messages.
const IDRule = "1–64 letters, digits, '_' or '-'"

// ValidID reports whether s can be one topic level and an HA object id: the
// rule for site, gateway and door ids.
func ValidID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validPrefix checks a topic prefix: levels of ids, no wildcards.
func validPrefix(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("topic prefix %q must be one or more levels like \"portier\" or \"acme/doors\"", p)
	}
	for _, l := range strings.Split(p, "/") {
		if !ValidID(l) {
			return fmt.Errorf("topic prefix %q: level %q may hold only letters, digits, '_' and '-'", p, l)
		}
	}
	return nil
}
