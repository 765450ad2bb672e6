package mqtt

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// haLockTTL is the expiry given to a Home Assistant unlock (HA sends none).
const haLockTTL = 10 * time.Second

// publishDiscovery announces the gateway to Home Assistant: one device, and
// per door a door binary_sensor, a lock-state sensor, an access event entity
// and — only with AllowUnlock — a lock entity; plus telemetry sensors.
// Discovery configs are not retained (they are re-sent when HA announces
// itself online), and no retained message anywhere can unlock a door.
func (l *Link) publishDiscovery(s *session) {
	for _, e := range l.discovery() {
		b, err := json.Marshal(e.config)
		if err != nil {
			l.log.Error("mqtt: discovery not encoded", "err", err)
			continue
		}
		s.client.Publish(l.cfg.Topics.HAConfig(e.component, e.objectID), 1, false, b)
	}
}

type haEntity struct {
	component, objectID string
	config              map[string]any
}

// discovery builds every discovery config.
func (l *Link) discovery() []haEntity {
	t := l.cfg.Topics
	gw := t.Site + "_" + t.Gateway
	device := map[string]any{
		"identifiers":  []string{"portier_" + gw},
		"name":         "Portier " + t.Gateway,
		"manufacturer": "Portier",
		"model":        "door gateway",
	}
	if l.cfg.Telemetry != nil {
		device["sw_version"] = l.cfg.Telemetry.Telemetry(l.runCtx).Version
	}
	base := func(name, uniq string) map[string]any {
		return map[string]any{
			"name":                  name,
			"unique_id":             "portier_" + gw + "_" + uniq,
			"device":                device,
			"availability_topic":    t.Status(),
			"availability_template": "{{ value_json.state }}",
			"payload_available":     StateOnline,
			"payload_not_available": StateOffline,
			"origin":                map[string]any{"name": "portier"},
		}
	}
	var out []haEntity
	for _, d := range l.cfg.Doors.DoorIDs() {
		c := base(d+" door", d+"_door")
		c["state_topic"] = t.DoorState(d)
		c["device_class"] = "door"
		c["value_template"] = "{{ 'ON' if value_json.door_open else 'OFF' }}"
		out = append(out, haEntity{"binary_sensor", d + "_door", c})

		c = base(d+" lock", d+"_lock_state")
		c["state_topic"] = t.DoorState(d)
		c["value_template"] = "{{ 'locked' if value_json.locked else 'unlocked' }}"
		c["json_attributes_topic"] = t.DoorState(d)
		out = append(out, haEntity{"sensor", d + "_lock_state", c})

		c = base(d+" access", d+"_access")
		c["state_topic"] = t.HAAccess(d)
		c["event_types"] = []string{"access_granted", "access_denied", "awaiting_pin"}
		out = append(out, haEntity{"event", d + "_access", c})

		if l.cfg.HomeAssistant.AllowUnlock {
			c = base(d, d+"_lock")
			c["state_topic"] = t.DoorState(d)
			c["value_template"] = "{{ 'LOCKED' if value_json.locked else 'UNLOCKED' }}"
			c["command_topic"] = t.HALock(d)
			c["payload_unlock"] = "UNLOCK"
			c["payload_lock"] = "LOCK"
			c["retain"] = false
			c["optimistic"] = false
			out = append(out, haEntity{"lock", d + "_lock", c})
		}
	}
	for _, s := range []struct{ id, name, tmpl, unit, class string }{
		{"uptime", "uptime", "{{ value_json.uptime_s }}", "s", "duration"},
		{"outbox_depth", "outbox depth", "{{ value_json.outbox.depth }}", "events", ""},
		{"outbox_oldest_age", "outbox oldest age", "{{ value_json.outbox.oldest_age_s }}", "s", "duration"},
		{"outbox_state", "outbox state", "{{ value_json.outbox.state }}", "", ""},
		{"reconnects", "MQTT reconnects", "{{ value_json.mqtt.reconnects }}", "", ""},
		{"sync_age", "sync age", "{{ value_json.sync.age_s }}", "s", "duration"},
		{"sync_result", "last sync", "{{ value_json.sync.last_result }}", "", ""},
		{"clock", "clock", "{{ value_json.clock.status }}", "", ""},
		{"storage_free", "disk free", "{{ value_json.storage.free_mb }}", "MB", "data_size"},
	} {
		c := base(s.name, s.id)
		c["state_topic"] = t.Telemetry()
		c["value_template"] = s.tmpl
		c["entity_category"] = "diagnostic"
		if s.unit != "" {
			c["unit_of_measurement"] = s.unit
			c["state_class"] = "measurement"
		}
		if s.class != "" {
			c["device_class"] = s.class
		}
		out = append(out, haEntity{"sensor", s.id, c})
	}
	return out
}

// onHALock turns Home Assistant's UNLOCK into a pulse unlock. HA sends a bare
// payload, so the link gives it an id and a short expiry itself; retained
// payloads are refused like any retained command, LOCK is ignored (the door
// relocks by itself) and the attempt is recorded like every command.
func (l *Link) onHALock(c paho.Client, m paho.Message) {
	rest := strings.TrimPrefix(m.Topic(), l.cfg.Topics.Base()+"/ha/")
	door := strings.TrimSuffix(rest, "/lock/set")
	var id [8]byte
	rand.Read(id[:])
	now := l.cfg.Clock.Now()
	zero := int64(0)
	cmd := Command{Name: CmdUnlock, ID: "ha-" + hex.EncodeToString(id[:]), ExpiresAt: now.Add(haLockTTL), Actor: "home_assistant", Door: door, DurationS: &zero}
	switch {
	case m.Retained():
		l.rejected(c, cmd, reject(ErrRetained, "retained commands are never executed: clear the retained message"))
	case string(m.Payload()) == "LOCK":
	case string(m.Payload()) != "UNLOCK":
		l.rejected(c, cmd, reject(ErrMalformed, "Home Assistant lock payload must be UNLOCK or LOCK"))
	case l.cfg.CommandKey != nil:
		// Home Assistant cannot sign; a gateway that demands signatures
		// takes no unsigned unlock, whatever the discovery settings.
		l.rejected(c, cmd, reject(ErrSignatureMissing, "this gateway requires signed commands; Home Assistant cannot sign"))
	default:
		l.run(c, cmd)
	}
}
