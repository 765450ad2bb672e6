package mqttcontract_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqttcontract"
)

// TestStrictSchemas: docs/asyncapi.yaml refuses what the gateway must never
// publish — each of the mismatches the contract once let through among
// them — and takes what it does publish.
func TestStrictSchemas(t *testing.T) {
	c, err := mqttcontract.Load("../../../docs/asyncapi.yaml")
	require.NoError(t, err)
	tp := mqtt.Topics{Site: "site1", Gateway: "gw1"}.WithDefaults()
	head := `"schema":1,"site_id":"site1","gateway_id":"gw1"`
	event := `{` + head + `,"event_id":"e1","seq":7,"ts":"2026-11-21T12:00:03.12Z","type":"%s","category":"%s"%s}`
	tele := `{` + head + `,"ts":"2026-11-21T12:01:00Z","version":"1","uptime_s":5,"sync":{"age_s":null,"last_result":"never"},` +
		`"cache":%s,"outbox":{"depth":0,"oldest_age_s":0,"limit":100,"high_water":50,"state":"normal"},` +
		`"mqtt":{"reconnects":0,"events_published":0},"clock":{"trusted":true,"status":"synchronized"}}`
	for _, tc := range []struct {
		name, topic, payload string
		ok                   bool
	}{
		{"system event without a door", tp.Event("system"), fmt.Sprintf(event, "clock_unsynced", "system", ""), true},
		{"access event", tp.Event("access"), fmt.Sprintf(event, "access_granted", "access", `,"door":"front","reason":"granted","credential_kind":"uid","credential":"uid:7 bytes …E5F6"`), true},
		{"access event without its door", tp.Event("access"), fmt.Sprintf(event, "access_granted", "access", `,"reason":"granted"`), false},
		{"unknown event type", tp.Event("system"), fmt.Sprintf(event, "door_exploded", "system", ""), false},
		{"credential kind card", tp.Event("access"), fmt.Sprintf(event, "access_granted", "access", `,"door":"front","reason":"granted","credential_kind":"card"`), false},
		{"unknown reason", tp.Event("command"), fmt.Sprintf(event, "command_rejected", "command", `,"reason":"because"`), false},
		{"invalid_command reason", tp.Event("command"), fmt.Sprintf(event, "command_rejected", "command", `,"door":"front","reason":"invalid_command"`), true},
		{"unknown field", tp.Event("system"), fmt.Sprintf(event, "clock_synced", "system", `,"extra":1`), false},
		{"missing seq", tp.Event("system"), `{` + head + `,"event_id":"e1","ts":"2026-11-21T12:00:03Z","type":"clock_synced","category":"system"}`, false},
		{"bad time", tp.Event("system"), `{` + head + `,"event_id":"e1","seq":1,"ts":"yesterday","type":"clock_synced","category":"system"}`, false},
		{"telemetry cache", tp.Telemetry(), fmt.Sprintf(tele, `{"users":9,"access_groups":6,"locks":3,"enrolments":6,"credentials_uid":6}`), true},
		{"telemetry cache as once documented", tp.Telemetry(), fmt.Sprintf(tele, `{"users":9,"credentials":6,"access_codes":3}`), false},
		{"refusal without an id", tp.Response(), `{` + head + `,"command":"unlock","status":"error","ts":"2026-11-21T12:00:03Z","error":{"type":"malformed","message":"x"}}`, true},
		{"refusal with an empty id", tp.Response(), `{` + head + `,"id":"","command":"unlock","status":"error","ts":"2026-11-21T12:00:03Z","error":{"type":"malformed","message":"x"}}`, false},
		{"a readable command's refusal without id", tp.Response(), `{` + head + `,"command":"unlock","status":"error","ts":"2026-11-21T12:00:03Z","error":{"type":"door_lockdown","message":"x"}}`, false},
		{"unknown error type", tp.Response(), `{` + head + `,"id":"a","command":"unlock","status":"error","ts":"2026-11-21T12:00:03Z","error":{"type":"oops","message":"x"}}`, false},
		{"success without result", tp.Response(), `{` + head + `,"id":"a","command":"unlock","status":"success","ts":"2026-11-21T12:00:03Z"}`, false},
		{"unlock result", tp.Response(), `{` + head + `,"id":"a","command":"unlock","status":"success","ts":"2026-11-21T12:00:03Z","result":{"door":"front","detail":"ok"}}`, true},
		{"sync result with an extra", tp.Response(), `{` + head + `,"id":"a","command":"sync","status":"success","ts":"2026-11-21T12:00:03Z","result":{"synced":true,"pin":"123456"}}`, false},
		{"offline with a time", tp.Status(), `{"schema":1,"state":"offline","site_id":"site1","gateway_id":"gw1","since":"2026-11-21T12:00:03Z"}`, false},
		{"HA lock", tp.HALock("front"), "UNLOCK", true},
		{"HA lock payload", tp.HALock("front"), "OPEN", false},
		{"HA removal", tp.HAConfig("lock", "front__lock"), "", true},
		{"HA event", tp.HACommandResult("front"), `{"event_type":"command_rejected","event_id":"e","ts":"2026-11-21T12:00:03Z","door":"front","door_name":"Front door","reason":"clock_not_trusted"}`, true},
		{"HA access event on the command topic", tp.HACommandResult("front"), `{"event_type":"access_granted","event_id":"e","ts":"2026-11-21T12:00:03Z","door":"front","door_name":"Front door","reason":"granted"}`, false},
		{"not a topic of the contract", "portier/site1/gw1/elsewhere", `{}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Validate(tp, tc.topic, []byte(tc.payload))
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
	assert.Len(t, c.Channels(), len(mqtt.TopicTable()), "one channel per topic")
	kinds, err := c.Enum("components", "schemas", "credentialKind")
	require.NoError(t, err)
	assert.Equal(t, []string{"uid", "wiegand", "tag_number", "pin", "desfire"}, kinds)
}
