package mqtt_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
)

// Home Assistant's documented MQTT discovery schema, as far as the gateway
// uses it. Each set is copied from the page named beside it (the
// "Configuration Variables" of https://www.home-assistant.io/integrations/…);
// docs/mqtt.md names the same pages. Home Assistant ignores keys it does not
// know, so a misspelt key would fail silently there: here it fails the test.

// haCommonKeys are the options every MQTT entity platform documents
// (availability, device, entity and JSON attribute options) plus origin
// (integrations/mqtt/, "Discovery payload"). platform is only for device
// discovery, which the gateway does not use, so it is not allowed.
var haCommonKeys = []string{
	"availability", "availability_mode", "availability_template", "availability_topic", "device",
	"enabled_by_default", "encoding", "entity_category", "entity_picture", "icon", "json_attributes_template",
	"json_attributes_topic", "name", "object_id", "origin", "payload_available",
	"payload_not_available", "qos", "unique_id",
}

// haPlatform is one entity platform's own options, its required options and
// the device classes its page lists.
type haPlatform struct {
	page          string
	keys          []string
	required      []string
	deviceClasses []string
}

var haPlatforms = map[string]haPlatform{
	"binary_sensor": {
		page:     "integrations/binary_sensor.mqtt/",
		keys:     []string{"device_class", "expire_after", "force_update", "off_delay", "payload_off", "payload_on", "state_topic", "value_template"},
		required: []string{"state_topic"},
		// integrations/binary_sensor/#device-class
		deviceClasses: []string{"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas",
			"heat", "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem",
			"running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window"},
	},
	"sensor": {
		page: "integrations/sensor.mqtt/",
		keys: []string{"device_class", "expire_after", "force_update", "last_reset_value_template", "options", "suggested_display_precision",
			"state_class", "state_topic", "unit_of_measurement", "value_template"},
		required: []string{"state_topic"},
		// integrations/sensor/#device-class
		deviceClasses: []string{"apparent_power", "aqi", "area", "atmospheric_pressure", "battery", "blood_glucose_concentration",
			"carbon_dioxide", "carbon_monoxide", "current", "data_rate", "data_size", "date", "distance", "duration", "energy",
			"energy_storage", "enum", "frequency", "gas", "humidity", "illuminance", "irradiance", "moisture", "monetary",
			"nitrogen_dioxide", "nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm25", "pm10", "power_factor", "power",
			"precipitation", "precipitation_intensity", "pressure", "reactive_power", "signal_strength", "sound_pressure", "speed",
			"sulphur_dioxide", "temperature", "timestamp", "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage",
			"volume", "volume_flow_rate", "volume_storage", "water", "weight", "wind_speed"},
	},
	"event": {
		page:          "integrations/event.mqtt/",
		keys:          []string{"device_class", "event_types", "state_topic", "value_template"},
		required:      []string{"event_types", "state_topic"},
		deviceClasses: []string{"button", "doorbell", "motion"}, // integrations/event/#device-class
	},
	"lock": {
		page: "integrations/lock.mqtt/",
		keys: []string{"code_format", "command_template", "command_topic", "optimistic", "payload_lock", "payload_open", "payload_reset",
			"payload_unlock", "retain", "state_jammed", "state_locked", "state_locking", "state_open", "state_opening", "state_topic",
			"state_unlocked", "state_unlocking", "value_template"},
		required: []string{"command_topic"},
	},
	"switch": {
		page: "integrations/switch.mqtt/",
		keys: []string{"command_template", "command_topic", "device_class", "optimistic", "payload_off", "payload_on", "retain",
			"state_off", "state_on", "state_topic", "value_template"},
		required:      []string{"command_topic"},
		deviceClasses: []string{"outlet", "switch"}, // integrations/switch/#device-class
	},
}

// haDeviceKeys are the device map's keys (every platform page, "device");
// at least one of identifiers and connections is required.
var haDeviceKeys = []string{"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
	"name", "serial_number", "suggested_area", "sw_version", "via_device"}

// haOriginKeys are the origin map's keys; name is required
// (integrations/mqtt/, "Discovery payload").
var haOriginKeys = []string{"name", "sw_version", "support_url"}

// haStateClasses: developers.home-assistant.io/docs/core/entity/sensor#available-state-classes.
var haStateClasses = []string{"measurement", "measurement_angle", "total", "total_increasing"}

// haUnits are the units a sensor device class takes (integrations/sensor/#device-class).
var haUnits = map[string][]string{
	"duration":  {"d", "h", "min", "s", "ms"},
	"data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
}

// haID is the character class of discovery topic ids (integrations/mqtt/,
// "Discovery topic").
var haID = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// checkHADiscovery holds one discovery config to Home Assistant's rules.
func checkHADiscovery(topic string, c map[string]any, discovery string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	levels := strings.Split(strings.TrimPrefix(topic, discovery+"/"), "/")
	if len(levels) != 4 || levels[3] != "config" {
		return []string{"topic is not <discovery>/<component>/<node_id>/<object_id>/config"}
	}
	component, node, object := levels[0], levels[1], levels[2]
	p, ok := haPlatforms[component]
	if !ok {
		return []string{"component " + component + " is not an MQTT platform the gateway knows"}
	}
	if !haID.MatchString(node) || !haID.MatchString(object) {
		fail("node_id %q and object_id %q must match %s", node, object, haID)
	}
	for k := range c {
		if !slices.Contains(haCommonKeys, k) && !slices.Contains(p.keys, k) {
			fail("%s is not an option of %s (%s)", k, component, p.page)
		}
	}
	for _, k := range p.required {
		if _, ok := c[k]; !ok {
			fail("%s requires %s (%s)", component, k, p.page)
		}
	}
	if _, ok := c["unique_id"].(string); !ok {
		fail("unique_id is required for the device registry")
	}
	if _, both := c["availability"]; both && c["availability_topic"] != nil {
		fail("availability and availability_topic must not be used together")
	}
	if dev, ok := c["device"].(map[string]any); !ok {
		fail("device is missing")
	} else {
		for k := range dev {
			if !slices.Contains(haDeviceKeys, k) {
				fail("device.%s is not a device option", k)
			}
		}
		if dev["identifiers"] == nil && dev["connections"] == nil {
			fail("device needs identifiers or connections")
		}
	}
	if o, ok := c["origin"].(map[string]any); !ok {
		fail("origin is missing (recommended for single component discovery)")
	} else {
		for k := range o {
			if !slices.Contains(haOriginKeys, k) {
				fail("origin.%s is not an origin option", k)
			}
		}
		if _, ok := o["name"].(string); !ok {
			fail("origin.name is required")
		}
	}
	if ec, ok := c["entity_category"]; ok {
		allowed := []string{"config", "diagnostic"}
		if component == "sensor" || component == "binary_sensor" {
			allowed = []string{"diagnostic"} // "must be diagnostic for sensors"
		}
		if !slices.Contains(allowed, fmt.Sprint(ec)) {
			fail("entity_category %v: want one of %v", ec, allowed)
		}
	}
	if m, ok := c["availability_mode"]; ok && !slices.Contains([]string{"all", "any", "latest"}, fmt.Sprint(m)) {
		fail("availability_mode %v", m)
	}
	dc, hasDC := c["device_class"].(string)
	if hasDC && !slices.Contains(p.deviceClasses, dc) {
		fail("device_class %q is not a %s device class", dc, component)
	}
	if component == "event" {
		types, _ := c["event_types"].([]any)
		if len(types) == 0 {
			fail("event_types must list the event types")
		}
	}
	if component == "sensor" {
		sc, hasSC := c["state_class"].(string)
		unit, hasUnit := c["unit_of_measurement"].(string)
		_, hasOptions := c["options"]
		if hasSC && !slices.Contains(haStateClasses, sc) {
			fail("state_class %q", sc)
		}
		switch {
		case dc == "enum":
			if opts, _ := c["options"].([]any); len(opts) == 0 {
				fail("an enum sensor needs options")
			}
			if hasSC || hasUnit {
				fail("options cannot be used together with state_class or unit_of_measurement")
			}
		case hasOptions:
			fail("options needs device_class enum")
		case dc == "timestamp" && (hasSC || hasUnit):
			fail("a timestamp sensor has no state_class or unit")
		case haUnits[dc] != nil && !slices.Contains(haUnits[dc], unit):
			fail("unit %q is not a unit of device class %s (%v)", unit, dc, haUnits[dc])
		}
	}
	return errs
}

// TestHomeAssistantDiscoverySchema holds every discovery config the link
// publishes, with every entity allowed, to Home Assistant's documented
// discovery schema.
func TestHomeAssistantDiscoverySchema(t *testing.T) {
	b := startMochi(t, nil)
	ha := newDashboard(t, b.URL(), nil, "homeassistant/#")
	r := newRig(t, b.URL(), func(c *mqtt.Config) {
		c.HomeAssistant = allHA
		c.Telemetry = telemetryOK{}
		c.DoorNames = map[string]string{"front": "Front door"}
	})
	r.doors.setReaders("front", agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOnline, Secure: true})
	r.start(t)
	cfgs := configs(t, ha.waitUntil(t, "discovery", func(m []message) bool {
		return len(configs(t, m)) == 2*haConfigsPerDoor+haTelemetrySensors+1
	}, nil))
	platforms := map[string]int{}
	for topic, c := range cfgs {
		require.NotNil(t, c, topic)
		for _, e := range checkHADiscovery(topic, c, "homeassistant") {
			t.Errorf("%s: %s", topic, e)
		}
		platforms[strings.Split(topic, "/")[1]]++
	}
	assert.Equal(t, map[string]int{"binary_sensor": 2 + 1, "sensor": 4 + haTelemetrySensors, "event": 4, "lock": 2, "switch": 4}, platforms, "one problem sensor for the reader")
}

// TestHomeAssistantRulesCatchMistakes: the rules fail the mistakes they are
// there for.
func TestHomeAssistantRulesCatchMistakes(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"name": "x", "unique_id": "u", "state_topic": "s", "device": map[string]any{"identifiers": []any{"d"}},
			"origin": map[string]any{"name": "portier"}, "availability_topic": "a"}
	}
	topic := "homeassistant/sensor/node/obj/config"
	require.Empty(t, checkHADiscovery(topic, good(), "homeassistant"))
	for name, tc := range map[string]struct {
		topic string
		edit  func(map[string]any)
		want  string
	}{
		"misspelt key":        {topic, func(c map[string]any) { c["value_tempalte"] = "{{ value }}" }, "value_tempalte is not an option"},
		"another platform's":  {topic, func(c map[string]any) { c["command_topic"] = "c" }, "command_topic is not an option of sensor"},
		"missing state topic": {topic, func(c map[string]any) { delete(c, "state_topic") }, "requires state_topic"},
		"event types":         {"homeassistant/event/n/o/config", func(c map[string]any) {}, "requires event_types"},
		"lock command":        {"homeassistant/lock/n/o/config", func(c map[string]any) { delete(c, "state_topic") }, "requires command_topic"},
		"device class":        {topic, func(c map[string]any) { c["device_class"] = "door" }, `"door" is not a sensor device class`},
		"state class":         {topic, func(c map[string]any) { c["state_class"] = "counter" }, `state_class "counter"`},
		"enum with unit": {topic, func(c map[string]any) {
			c["device_class"], c["options"], c["unit_of_measurement"] = "enum", []any{"a"}, "s"
		}, "cannot be used together"},
		"duration unit":   {topic, func(c map[string]any) { c["device_class"], c["unit_of_measurement"] = "duration", "seconds" }, "not a unit of device class duration"},
		"sensor category": {topic, func(c map[string]any) { c["entity_category"] = "config" }, "entity_category config"},
		"no origin name":  {topic, func(c map[string]any) { c["origin"] = map[string]any{"sw": "1"} }, "origin.name is required"},
		"device key":      {topic, func(c map[string]any) { c["device"] = map[string]any{"ids": "x"} }, "device.ids is not a device option"},
		"node id":         {"homeassistant/sensor/a.b/obj/config", func(c map[string]any) {}, "must match"},
		"platform key":    {topic, func(c map[string]any) { c["platform"] = "sensor" }, "platform is not an option"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good()
			tc.edit(c)
			assert.Contains(t, strings.Join(checkHADiscovery(tc.topic, c, "homeassistant"), "; "), tc.want)
		})
	}
}
