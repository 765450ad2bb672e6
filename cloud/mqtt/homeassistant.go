package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/portier-io/portier/agent"
)

// haLockTTL is the expiry given to a Home Assistant command (HA sends none).
const haLockTTL = 10 * time.Second

// haActor is the actor of every command Home Assistant sends.
const haActor = "home_assistant"

// Home Assistant discovery: docs/mqtt.md names the pages of Home Assistant's
// documentation each config follows, and ha_test.go holds every config to
// their rules (keys per platform, required keys, enumerations).

// publishDiscovery announces the gateway to Home Assistant: one device with
// per door a contact binary_sensor, a problem binary_sensor per supervised
// (OSDP) reader, a lock-state sensor, a last-access
// sensor, access and command event entities and — only where allowed — a
// lock and lockdown and office mode switches; plus telemetry sensors.
// Entities that are not allowed get an empty config, which makes Home
// Assistant delete one left from an earlier configuration. Discovery configs
// are not retained (they are re-sent when HA announces itself online), and
// no retained message anywhere can unlock a door.
func (l *Link) publishDiscovery(s *session) {
	l.discoveryMu.Lock()
	defer l.discoveryMu.Unlock()
	var announced []string
	if l.cfg.HomeAssistant.Enabled {
		for _, e := range l.discovery() {
			var b []byte
			if e.config != nil {
				var err error
				if b, err = json.Marshal(e.config); err != nil {
					l.log.Error("mqtt: discovery not encoded", "err", err)
					continue
				}
			}
			topic := l.cfg.Topics.HAConfig(e.component, e.objectID)
			s.client.Publish(topic, 1, false, b)
			if b != nil {
				announced = append(announced, topic)
			}
		}
	}
	l.forgetDiscovery(s, announced)
}

// discoveryMetaKey holds the discovery topics announced last (JSON array).
const discoveryMetaKey = "mqtt_ha_discovery"

// forgetDiscovery removes the entities announced before that are not among
// those announced now (a door, reader or option taken out of the config,
// or Home Assistant turned off), with an empty config, and remembers the
// new set.
func (l *Link) forgetDiscovery(s *session, announced []string) {
	if l.cfg.Discovery == nil {
		return
	}
	// Once the removals are published, the record must follow them even when
	// the agent is stopping; otherwise the next start removes them again.
	ctx := context.WithoutCancel(l.runCtx)
	prev, _, err := l.cfg.Discovery.Meta(ctx, discoveryMetaKey)
	if err != nil {
		l.log.Warn("mqtt: announced Home Assistant entities not read", "err", err)
		return
	}
	var before []string
	if prev != "" {
		if err := json.Unmarshal([]byte(prev), &before); err != nil {
			l.log.Warn("mqtt: announced Home Assistant entities unreadable; starting afresh", "err", err)
		}
	}
	slices.Sort(announced)
	for _, topic := range before {
		if _, found := slices.BinarySearch(announced, topic); !found {
			s.client.Publish(topic, 1, false, []byte{})
			l.log.Info("mqtt: Home Assistant entity removed", "topic", topic)
		}
	}
	if slices.Equal(before, announced) {
		return
	}
	next := ""
	if len(announced) > 0 {
		b, _ := json.Marshal(announced)
		next = string(b)
	}
	if err := l.cfg.Discovery.SetMeta(ctx, map[string]string{discoveryMetaKey: next}); err != nil {
		l.log.Warn("mqtt: announced Home Assistant entities not recorded", "err", err)
	}
}

// haEntity is one discovery config; a nil config removes the entity.
type haEntity struct {
	component, objectID string
	config              map[string]any
}

// Home Assistant entity platforms the gateway announces.
const (
	haBinarySensor = "binary_sensor"
	haSensor       = "sensor"
	haEvent        = "event"
	haLock         = "lock"
	haSwitch       = "switch"
)

// haCommandEvents are the event types of a door's command event entity: the
// outcome events of every command at that door.
var haCommandEvents = []agent.EventType{agent.EventCommandSucceeded, agent.EventCommandRejected, agent.EventCommandFailed}

// haAccessEvents are the event types of a door's access event entity.
var haAccessEvents = []agent.EventType{agent.EventAccessGranted, agent.EventAccessDenied, agent.EventAwaitingPIN}

// doorName is a door's display name, its id when it has none.
func (l *Link) doorName(door string) string {
	if n := l.cfg.DoorNames[door]; n != "" {
		return n
	}
	return door
}

// discovery builds every discovery config.
func (l *Link) discovery() []haEntity {
	t := l.cfg.Topics
	node := t.HANode()
	version := ""
	if l.cfg.Telemetry != nil {
		version = l.cfg.Telemetry.Telemetry(l.runCtx).Version
	}
	device := map[string]any{
		"identifiers":  []string{"portier_" + node},
		"name":         "Portier " + t.Gateway,
		"manufacturer": "Portier",
		"model":        "door gateway",
	}
	origin := map[string]any{"name": "portier"}
	if version != "" {
		device["sw_version"] = version
		origin["sw_version"] = version
	}
	base := func(name, objectID string) map[string]any {
		return map[string]any{
			"name":                  name,
			"unique_id":             "portier_" + node + "__" + objectID,
			"device":                device,
			"availability_topic":    t.Status(),
			"availability_template": "{{ value_json.state }}",
			"payload_available":     StateOnline,
			"payload_not_available": StateOffline,
			"origin":                origin,
		}
	}
	var out []haEntity
	add := func(component, objectID string, c map[string]any) {
		out = append(out, haEntity{component, objectID, c})
	}
	ha := l.cfg.HomeAssistant
	for _, d := range l.cfg.Doors.DoorIDs() {
		name := l.doorName(d)
		obj := func(entity string) string { return haJoin(d) + "__" + entity }

		c := base(name+" contact", obj("door"))
		c["state_topic"] = t.DoorState(d)
		c["device_class"] = "door"
		c["value_template"] = "{{ 'ON' if value_json.door_open else 'OFF' }}"
		add(haBinarySensor, obj("door"), c)

		c = base(name+" lock", obj("lock_state"))
		c["state_topic"] = t.DoorState(d)
		c["value_template"] = "{{ 'locked' if value_json.locked else 'unlocked' }}"
		c["device_class"] = "enum"
		c["options"] = []string{"locked", "unlocked"}
		c["json_attributes_topic"] = t.DoorState(d)
		add(haSensor, obj("lock_state"), c)

		if st, ok := l.cfg.Doors.DoorStatus(d); ok {
			for _, r := range st.Readers {
				add(haBinarySensor, obj("reader_"+r.Reader), l.haReader(base, name, d, r.Reader))
			}
		}

		c = base(name+" last access", obj("last_access"))
		c["state_topic"] = t.HALastAccess(d)
		c["value_template"] = "{{ value_json.ts }}"
		c["device_class"] = "timestamp"
		c["json_attributes_topic"] = t.HALastAccess(d)
		add(haSensor, obj("last_access"), c)

		c = base(name+" access", obj("access"))
		c["state_topic"] = t.HAAccess(d)
		c["event_types"] = haAccessEvents
		add(haEvent, obj("access"), c)

		c = base(name+" commands", obj("command"))
		c["state_topic"] = t.HACommandResult(d)
		c["event_types"] = haCommandEvents
		add(haEvent, obj("command"), c)

		c = nil
		if ha.AllowUnlock {
			c = base(name, obj("lock"))
			c["state_topic"] = t.DoorState(d)
			c["value_template"] = "{{ 'LOCKED' if value_json.locked else 'UNLOCKED' }}"
			c["command_topic"] = t.HALock(d)
			c["payload_unlock"] = "UNLOCK"
			c["payload_lock"] = "LOCK"
			c["retain"] = false
			c["optimistic"] = false
		}
		add(haLock, obj("lock"), c)

		c = nil
		if ha.AllowLockdown {
			c = base(name+" lockdown", obj("lockdown"))
			c["state_topic"] = t.DoorState(d)
			c["value_template"] = "{{ 'ON' if value_json.override == 'lockdown' else 'OFF' }}"
			c["command_topic"] = t.HALockdown(d)
			c["payload_on"], c["payload_off"] = "ON", "OFF"
			c["retain"] = false
			c["optimistic"] = false
		}
		add(haSwitch, obj("lockdown"), c)

		c = nil
		if ha.AllowOfficeMode {
			c = base(name+" office mode", obj("office_mode"))
			c["state_topic"] = t.DoorState(d)
			c["value_template"] = "{{ 'OFF' if value_json.office_mode == 'off' else 'ON' }}"
			c["command_topic"] = t.HAOfficeMode(d)
			c["payload_on"], c["payload_off"] = "ON", "OFF"
			c["retain"] = false
			c["optimistic"] = false
		}
		add(haSwitch, obj("office_mode"), c)
	}
	for _, s := range []struct {
		id, name, tmpl, unit, deviceClass, stateClass string
		options                                       []string
	}{
		{id: "uptime", name: "uptime", tmpl: "{{ value_json.uptime_s }}", unit: "s", deviceClass: "duration", stateClass: "measurement"},
		{id: "outbox_depth", name: "outbox depth", tmpl: "{{ value_json.outbox.depth }}", unit: "events", stateClass: "measurement"},
		{id: "outbox_oldest_age", name: "outbox oldest age", tmpl: "{{ value_json.outbox.oldest_age_s }}", unit: "s", deviceClass: "duration", stateClass: "measurement"},
		{id: "outbox_state", name: "outbox state", tmpl: "{{ value_json.outbox.state }}", deviceClass: "enum", options: []string{OutboxNormal, OutboxHighWater, OutboxFullState}},
		// Reconnects count up from the gateway's start: a counter that resets.
		{id: "reconnects", name: "MQTT reconnects", tmpl: "{{ value_json.mqtt.reconnects }}", stateClass: "total_increasing"},
		// age_s is null before the first sync: "None" makes the state unknown.
		{id: "sync_age", name: "sync age", tmpl: "{{ value_json.sync.age_s }}", unit: "s", deviceClass: "duration", stateClass: "measurement"},
		{id: "sync_result", name: "last sync", tmpl: "{{ value_json.sync.last_result }}", deviceClass: "enum", options: []string{"ok", "failed", "never"}},
		{id: "clock", name: "clock", tmpl: "{{ value_json.clock.status }}"},
		{id: "storage_free", name: "disk free", tmpl: "{{ value_json.storage.free_mb if value_json.storage is defined else None }}", unit: "MB", deviceClass: "data_size", stateClass: "measurement"},
	} {
		c := base(s.name, s.id)
		c["state_topic"] = t.Telemetry()
		c["value_template"] = s.tmpl
		c["entity_category"] = "diagnostic"
		if s.unit != "" {
			c["unit_of_measurement"] = s.unit
		}
		if s.deviceClass != "" {
			c["device_class"] = s.deviceClass
		}
		if s.stateClass != "" {
			c["state_class"] = s.stateClass
		}
		if s.options != nil {
			c["options"] = s.options
		}
		add(haSensor, s.id, c)
	}
	return out
}

// haReader is the problem sensor of a door's supervised reader: on while the
// reader is offline or refused, or reports a power fault; the reader's
// status is its attributes.
func (l *Link) haReader(base func(name, objectID string) map[string]any, doorName, door, reader string) map[string]any {
	t := l.cfg.Topics
	c := base(doorName+" reader "+reader, haJoin(door)+"__reader_"+reader)
	this := fmt.Sprintf("value_json.readers | default([]) | selectattr('reader', 'eq', '%s')", reader)
	c["state_topic"] = t.DoorState(door)
	c["device_class"] = "problem"
	c["value_template"] = fmt.Sprintf("{{ 'ON' if (%[1]s | selectattr('state', 'in', ['offline', 'refused']) | list) or (%[1]s | selectattr('power_fault') | list) else 'OFF' }}", this)
	c["json_attributes_topic"] = t.DoorState(door)
	c["json_attributes_template"] = fmt.Sprintf("{{ %s | first | default({}) | tojson }}", this)
	return c
}

// haSubscriptions are the Home Assistant topics the link subscribes to:
// HA's birth message, and the command topics of the entities it allows.
func (l *Link) haSubscriptions() []string {
	ha, t := l.cfg.HomeAssistant, l.cfg.Topics
	if !ha.Enabled {
		return nil
	}
	out := []string{t.HAStatus()}
	if ha.AllowUnlock {
		out = append(out, t.HALocks())
	}
	if ha.AllowLockdown {
		out = append(out, t.HALockdowns())
	}
	if ha.AllowOfficeMode {
		out = append(out, t.HAOfficeModes())
	}
	return out
}

// haMessage is one mirror of an event for Home Assistant.
type haMessage struct {
	topic    string
	retained bool
	payload  []byte
}

// haMirrors are the Home Assistant copies of an outbox event: access events
// for the door's access event entity (and, for decisions, the retained
// last-access sensor), command outcomes for its command event entity — so
// a refused UNLOCK is seen in Home Assistant. Events without a door have
// none.
func (l *Link) haMirrors(e agent.Event) ([]haMessage, error) {
	if !l.cfg.HomeAssistant.Enabled || e.Door == "" {
		return nil, nil
	}
	t := l.cfg.Topics
	var out []haMessage
	switch {
	case slices.Contains(haAccessEvents, e.Type):
		out = append(out, haMessage{topic: t.HAAccess(e.Door)})
		if e.Type != agent.EventAwaitingPIN {
			out = append(out, haMessage{topic: t.HALastAccess(e.Door), retained: true})
		}
	case slices.Contains(haCommandEvents, e.Type):
		out = append(out, haMessage{topic: t.HACommandResult(e.Door)})
	default:
		return nil, nil
	}
	p := HAEventPayload{EventType: e.Type, EventID: e.ID, Time: e.Time.UTC(), Door: e.Door, DoorName: l.doorName(e.Door),
		Reason: e.Reason, Kind: e.Kind, Credential: e.Credential, Detail: e.Detail, CommandID: e.CommandID, Actor: e.Actor}
	if e.User != nil {
		p.UserID, p.UserName = e.User.ID, e.User.Name
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode event seq %d for home assistant: %w", e.Seq, err)
	}
	for i := range out {
		out[i].payload = b
	}
	return out, nil
}

// haEntities maps the command topics' entity level to what it runs.
var haEntities = map[string]struct {
	command  string
	payloads []string // accepted payloads, the first one turns it on
}{
	"lock":        {CmdUnlock, []string{"UNLOCK", "LOCK"}},
	"lockdown":    {CmdLockdown, []string{"ON", "OFF"}},
	"office_mode": {CmdOfficeMode, []string{"ON", "OFF"}},
}

// onHACommand turns Home Assistant's UNLOCK into a pulse unlock and its
// switches' ON/OFF into lockdown and office_mode commands for the door. HA
// sends a bare payload, so the link gives it an id and a short expiry
// itself; from there it takes the path of every command (clock policy,
// command log, events, responses). Retained payloads are refused like any
// retained command, LOCK and empty payloads are ignored (the door relocks by
// itself; an empty message clears a retained one), and a
// gateway that demands signatures refuses them all: HA cannot sign.
func (l *Link) onHACommand(c paho.Client, m paho.Message) {
	rest := strings.TrimPrefix(m.Topic(), l.cfg.Topics.Base()+"/ha/")
	door, entity, _ := strings.Cut(strings.TrimSuffix(rest, "/set"), "/")
	kind, ok := haEntities[entity]
	if !ok {
		return // not a topic the link subscribes to
	}
	var id [8]byte
	rand.Read(id[:])
	payload := string(m.Payload())
	cmd := Command{Name: kind.command, ID: "ha-" + hex.EncodeToString(id[:]), ExpiresAt: l.cfg.Clock.Now().Add(haLockTTL), Actor: haActor, Door: door}
	if kind.command == CmdUnlock {
		zero := int64(0)
		cmd.DurationS = &zero
	} else {
		on := payload == kind.payloads[0]
		cmd.On = &on
	}
	switch {
	case payload == "":
		// An empty message clears a retained one; Home Assistant sends none.
	case m.Retained():
		l.rejected(c, cmd, reject(ErrRetained, "retained commands are never executed: clear the retained message"))
	case payload == "LOCK" && kind.command == CmdUnlock:
	case !slices.Contains(kind.payloads, payload):
		l.rejected(c, cmd, reject(ErrMalformed, "Home Assistant %s payload must be %s", entity, strings.Join(kind.payloads, " or ")))
	case l.cfg.CommandKey != nil:
		l.rejected(c, cmd, reject(ErrSignatureMissing, "this gateway requires signed commands; Home Assistant cannot sign"))
	default:
		l.run(c, cmd)
	}
}
