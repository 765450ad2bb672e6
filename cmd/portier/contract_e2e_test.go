package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqttcontract"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
	"github.com/portier-io/portier/cloud/saltoks/sitefile"
	"github.com/portier-io/portier/sqlite"
)

// asyncAPIPath and mqttDocPath are the MQTT contract's two documents.
var (
	asyncAPIPath = filepath.Join("..", "..", "docs", "asyncapi.yaml")
	mqttDocPath  = filepath.Join("..", "..", "docs", "mqtt.md")
)

// captured is one message seen on the broker.
type captured struct {
	topic   string
	payload []byte
	channel string // the contract channel's pattern
	inbound bool   // a message to the gateway (sent by the test)
}

// json decodes the payload as an object (nil when it is none).
func (m captured) json() map[string]any {
	var v map[string]any
	json.Unmarshal(m.payload, &v)
	return v
}

// contractCapture records every message on the broker (an in-broker
// subscription to #) for a gateway whose topics are tp; verify holds every
// message the gateway published to docs/asyncapi.yaml.
type contractCapture struct {
	t        *testing.T
	tp       mqtt.Topics
	contract *mqttcontract.Contract
	inbound  map[string]bool // channels the gateway subscribes to

	mu     sync.Mutex
	msgs   []captured
	notify chan struct{}
}

func captureContract(t *testing.T, srv *mqtttest.Broker, tp mqtt.Topics) *contractCapture {
	t.Helper()
	contract, err := mqttcontract.Load(asyncAPIPath)
	require.NoError(t, err)
	c := &contractCapture{t: t, tp: tp.WithDefaults(), contract: contract, inbound: map[string]bool{}, notify: make(chan struct{}, 1)}
	for _, row := range mqtt.TopicTable() {
		c.inbound[row.Pattern] = row.Sub
	}
	require.NoError(t, srv.Subscribe("#", func(topic string, payload []byte) {
		p := c.tp.Pattern(topic)
		c.mu.Lock()
		c.msgs = append(c.msgs, captured{topic: topic, payload: append([]byte(nil), payload...), channel: p, inbound: c.inbound[p]})
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}))
	return c
}

func (c *contractCapture) all() []captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// await returns the first message (from the n-th on) that matches, waiting
// for it; it fails only when no new message of the gateway's arrived for
// 30 s (telemetry and the broker's $SYS topics, published on timers, are no
// progress).
func (c *contractCapture) await(what string, from int, match func(captured) bool) captured {
	c.t.Helper()
	seen := from
	idle := time.NewTimer(30 * time.Second)
	defer idle.Stop()
	for {
		msgs := c.all()
		for i := from; i < len(msgs); i++ {
			if match(msgs[i]) {
				return msgs[i]
			}
		}
		for _, m := range msgs[min(seen, len(msgs)):] {
			if m.channel != "" && m.channel != "{prefix}/{site}/{gateway}/telemetry" {
				idle.Reset(30 * time.Second)
				break
			}
		}
		seen = len(msgs)
		select {
		case <-c.notify:
		case <-idle.C:
			c.t.Fatalf("nothing moved for 30 s while waiting for %s (%d messages)", what, len(msgs))
		}
	}
}

// on matches a message on a channel whose JSON payload has every key/value
// of want (values compared as fmt.Sprint).
func on(channel string, want map[string]any) func(captured) bool {
	return func(m captured) bool {
		if m.channel != channel {
			return false
		}
		p := m.json()
		for k, v := range want {
			if fmt.Sprint(p[k]) != fmt.Sprint(v) {
				return false
			}
		}
		return true
	}
}

// verify checks every message the gateway published: its topic is a
// channel of the contract, its payload matches the channel's schema, an
// event sits on its category's topic; and it returns the messages.
func (c *contractCapture) verify() []captured {
	c.t.Helper()
	msgs := c.all()
	require.NotEmpty(c.t, msgs)
	n := 0
	for _, m := range msgs {
		if m.channel == "" {
			if !strings.HasPrefix(m.topic, c.tp.Prefix+"/") && !strings.HasPrefix(m.topic, c.tp.Discovery+"/") {
				continue // not the gateway's: another test's traffic on a shared broker
			}
			c.t.Errorf("%s: a topic outside the contract", m.topic)
			continue
		}
		if m.inbound {
			continue // sent by the test, some of them malformed on purpose
		}
		n++
		if _, err := c.contract.Validate(c.tp, m.topic, m.payload); err != nil {
			c.t.Errorf("%v", err)
		}
		if m.channel == "{prefix}/{site}/{gateway}/event/{category}" {
			p := m.json()
			cat := mqtt.EventCategory(agent.EventType(fmt.Sprint(p["type"])))
			assert.Equal(c.t, cat, p["category"], "event %v", p["type"])
			assert.Equal(c.t, c.tp.Event(cat), m.topic, "event %v", p["type"])
		}
	}
	c.t.Logf("%d messages of the gateway hold to %s", n, asyncAPIPath)
	return msgs
}

// saltoSection is a salto: section for fake; the secret files are in dir.
func saltoSection(fake *saltokstest.Fake, dir string) string {
	o := fake.Options()
	return fmt.Sprintf(`salto:
  identity_url: %[1]s
  api_url: %[1]s
  site_id: %[2]s
  client_id: %[3]s
  client_secret_file: %[4]s/client.secret
  username: %[5]s
  password_file: %[4]s/salto.password
  request_timeout: 5s
`, fake.URL(), demoSiteID, o.ClientID, dir, o.Username)
}

// demoSiteID is the id of the demo site (defaults/demo-site.json).
const demoSiteID = "1f0c9d8e-0000-4000-8000-00000000a001"

// TestMQTTContract runs the real binary against an embedded broker and a
// fake Salto KS serving the demo site, with Home Assistant on, through every
// kind of message it publishes — access decisions, door and command events,
// every command's success and refusals (unparsed, oversized, refused by the
// gateway and by the door), Home Assistant's lock and switches, and a
// restart with an untrusted clock — and holds each message to
// docs/asyncapi.yaml and each example of docs/mqtt.md to the messages seen.
func TestMQTTContract(t *testing.T) {
	srv, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	data, err := os.ReadFile(demoSite)
	require.NoError(t, err)
	site, err := sitefile.Decode(data)
	require.NoError(t, err)
	fake, err := saltokstest.New(site, saltokstest.Options{RealTime: true})
	require.NoError(t, err)
	fake.Start()
	t.Cleanup(fake.Close)

	tp := mqtt.Topics{Site: demoSiteID, Gateway: "e2e"}.WithDefaults()
	c := captureContract(t, srv, tp)
	secrets := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "client.secret"), []byte(fake.Options().ClientSecret), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "salto.password"), []byte(fake.Options().Password), 0o600))
	g := newGateway(t, "300ms", saltoSection(fake, secrets), fmt.Sprintf(`clock_sync_check: "off"
mqtt:
  broker: tcp://%s
  telemetry_interval: 1s
  home_assistant: {enabled: true, allow_unlock: true, allow_lockdown: true, allow_office_mode: true}
`, srv.Addr()))
	// Access codes need the door's access group.
	cfg, err := os.ReadFile(g.cfg)
	require.NoError(t, err)
	lock := "    salto_locks: [7c1e4a52-0000-4000-8000-000000000001]\n"
	require.Contains(t, string(cfg), lock)
	cfg = []byte(strings.Replace(string(cfg), lock, lock+"    salto_access_groups: [5a2d0c11-0000-4000-8000-000000000001]\n", 1))
	// A second door with an OSDP reader that waits for its install: the
	// reader's messages (refused, no_key) in the door state and telemetry.
	cfg = withOSDPStudio(t, cfg)
	// A copy of Ada's UID on another chip, for the card alarm.
	cfg = []byte(strings.Replace(string(cfg), "  driver: sim\n", "  driver: sim\n  sim_cards: {copy: {type: classic, uid: \"04:A1:B2:C3:D4:E5:F6\"}}\n", 1))
	require.NoError(t, os.WriteFile(g.cfg, cfg, 0o600))
	g.start()

	status, response, door := tp.Status(), "{prefix}/{site}/{gateway}/response", "front"
	c.await("online", 0, func(m captured) bool { return m.topic == status && m.json()["state"] == "online" })
	c.await("the lock's discovery", 0, func(m captured) bool { return m.topic == tp.HAConfig("lock", "front__lock") })
	c.await("the studio reader's problem sensor", 0, func(m captured) bool { return m.topic == tp.HAConfig("binary_sensor", "studio__reader_osdp") })
	c.await("the reader refused for want of a key", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": agent.EventReaderRefused, "door": "studio"}))
	c.await("telemetry with the identified reader", 0, func(m captured) bool {
		rs, _ := m.json()["readers"].([]any)
		if m.topic != tp.Telemetry() || len(rs) != 1 {
			return false
		}
		r, _ := rs[0].(map[string]any)
		return r["vendor"] != nil && r["reason"] == "no_key"
	})
	c.await("a telemetry after the first sync", 0, func(m captured) bool {
		sync, _ := m.json()["sync"].(map[string]any)
		return m.topic == tp.Telemetry() && sync["last_result"] == "ok"
	})

	// Access decisions, as events and for Home Assistant.
	g.sim("tap front 04:A1:B2:C3:D4:E5:F6")
	ha := c.await("the HA access event", 0, on("{prefix}/{site}/{gateway}/ha/{door}/access", map[string]any{"event_type": "access_granted"})).json()
	assert.Equal(t, "Ada Lovelace", ha["user_name"])
	assert.Equal(t, "Front door", ha["door_name"])
	assert.Equal(t, "uid:7 bytes …E5F6", ha["credential"], "masked as in the event")
	c.await("the last access", 0, on("{prefix}/{site}/{gateway}/ha/{door}/last_access", map[string]any{"event_type": "access_granted"}))
	g.sim("keys front 739146#")
	c.await("a denial", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": "access_denied"}))
	g.sim("card front copy")
	c.await("the card alarm", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": "card_alarm"}))

	expires := func() string { return time.Now().Add(time.Minute).UTC().Format(time.RFC3339) }
	send := func(name, id string, fields string) map[string]any {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"expires_at":%q,"actor":"dashboard:e2e"%s}`, id, expires(), fields)
		from := len(c.all())
		require.NoError(t, srv.Publish(tp.Command(name), []byte(body), false))
		return c.await("the answer to "+id, from, func(m captured) bool {
			p := m.json()
			return m.channel == response && p["id"] == id && p["status"] != mqtt.StatusPending
		}).json()
	}
	errType := func(p map[string]any) any { e, _ := p["error"].(map[string]any); return e["type"] }

	// Every command's success.
	assert.Equal(t, mqtt.StatusSuccess, send("sync", "e2e-sync", "")["status"])
	created := send("access_code_create", "e2e-code-create", `,"door":"front","name":"cleaner"`)
	require.Equal(t, mqtt.StatusSuccess, created["status"], "%v", created)
	code := created["result"].(map[string]any)["access_code"].(map[string]any)
	assert.Equal(t, mqtt.StatusSuccess, send("access_code_list", "e2e-code-list", "")["status"])
	assert.Equal(t, mqtt.StatusSuccess, send("access_code_delete", "e2e-code-delete", fmt.Sprintf(`,"access_code_id":%q`, code["id"]))["status"])
	assert.Equal(t, mqtt.StatusSuccess, send("unlock", "01JD8ZQ4X7", `,"door":"front","duration_s":5`)["status"])
	assert.Equal(t, mqtt.ErrDuplicate, errType(send("unlock", "01JD8ZQ4X7", `,"door":"front","duration_s":5`)))
	assert.Equal(t, mqtt.ErrUnknownCommand, errType(send("open_sesame", "e2e-unknown", "")))

	// Refusals of commands that could not be read carry no id at all.
	for _, bad := range []struct{ name, payload, want string }{
		{"malformed", `{"id":"e2e-bad","door":`, mqtt.ErrMalformed},
		{"oversized", `{"id":"e2e-big","pad":"` + strings.Repeat("x", mqtt.MaxCommandSize) + `"}`, mqtt.ErrOversized},
	} {
		from := len(c.all())
		require.NoError(t, srv.Publish(tp.Command("unlock"), []byte(bad.payload), false))
		r := c.await("the "+bad.name+" refusal", from, func(m captured) bool { return m.channel == response && errType(m.json()) == bad.want })
		assert.NotContains(t, r.json(), "id", "%s", r.payload)
	}

	// Home Assistant's switches and lock take the command path.
	haCommand := func(topic, payload, command, want string) map[string]any {
		t.Helper()
		from := len(c.all())
		require.NoError(t, srv.Publish(topic, []byte(payload), false))
		r := c.await(command+" "+payload+" from Home Assistant", from, func(m captured) bool {
			p := m.json()
			return m.channel == response && p["command"] == command && p["status"] != mqtt.StatusPending
		}).json()
		if want == mqtt.StatusSuccess {
			assert.Equal(t, want, r["status"], "%v", r)
		} else {
			assert.Equal(t, want, errType(r), "%v", r)
		}
		return r
	}
	haCommand(tp.HALockdown(door), "ON", mqtt.CmdLockdown, mqtt.StatusSuccess)
	c.await("the lockdown switch's state", 0, on("{prefix}/{site}/{gateway}/door/{door}/state", map[string]any{"override": "lockdown"}))

	// A door's refusal is one command_rejected event with the door's reason.
	assert.Equal(t, "door_lockdown", errType(send("unlock", "e2e-during-lockdown", `,"door":"front"`)))
	haCommand(tp.HALockdown(door), "OFF", mqtt.CmdLockdown, mqtt.StatusSuccess)
	assert.Equal(t, "invalid_command", errType(send("unlock", "e2e-too-long", `,"door":"front","duration_s":100000`)))
	haCommand(tp.HAOfficeMode(door), "ON", mqtt.CmdOfficeMode, mqtt.StatusSuccess)
	haCommand(tp.HAOfficeMode(door), "OFF", mqtt.CmdOfficeMode, mqtt.StatusSuccess)
	unlock := haCommand(tp.HALock(door), "UNLOCK", mqtt.CmdUnlock, mqtt.StatusSuccess)
	c.await("Home Assistant's command event", 0, on("{prefix}/{site}/{gateway}/ha/{door}/command",
		map[string]any{"event_type": agent.EventCommandSucceeded, "command_id": unlock["id"]}))

	// Enrolment: armed, then the next card is stored.
	from := len(c.all())
	require.NoError(t, srv.Publish(tp.Command("enroll"), []byte(fmt.Sprintf(`{"id":"e2e-enrol","expires_at":%q,"actor":"dashboard:e2e","door":"front","tag_number":"02301234"}`, expires())), false))
	c.await("enrolment armed", from, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": "enrolment_armed"}))
	g.sim("tap front 0A:0B:0C:0D")
	c.await("the enrolment's success", from, on(response, map[string]any{"id": "e2e-enrol", "status": mqtt.StatusSuccess}))

	for _, id := range []string{"e2e-during-lockdown", "e2e-too-long"} {
		c.await("the refusal of "+id, 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": agent.EventCommandRejected, "command_id": id}))
	}
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
	c.await("offline", 0, func(m captured) bool { return m.topic == status && m.json()["state"] == "offline" })

	// The gateway restarts with a clock behind the last good time it saved:
	// untrusted. Home Assistant's UNLOCK is refused, and Home Assistant sees
	// why on the door's command event entity.
	db, err := sqlite.Open(context.Background(), filepath.Join(g.dir, "portier.db"), sqlite.Options{})
	require.NoError(t, err)
	require.NoError(t, db.SetMeta(context.Background(), map[string]string{"clock.last_good": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}))
	require.NoError(t, db.Close())
	from = len(c.all())
	g.start()
	c.await("online again", from, func(m captured) bool { return m.topic == status && m.json()["state"] == "online" })
	c.await("clock_unsynced", from, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": agent.EventClockUnsynced}))
	refused := haCommand(tp.HALock(door), "UNLOCK", mqtt.CmdUnlock, mqtt.ErrClockNotTrusted)
	haEvent := c.await("Home Assistant's feedback", from, on("{prefix}/{site}/{gateway}/ha/{door}/command",
		map[string]any{"event_type": agent.EventCommandRejected, "command_id": refused["id"]})).json()
	assert.Equal(t, mqtt.ErrClockNotTrusted, haEvent["reason"])
	haCommand(tp.HALockdown(door), "ON", mqtt.CmdLockdown, mqtt.StatusSuccess) // only makes the door safer
	haCommand(tp.HALockdown(door), "OFF", mqtt.CmdLockdown, mqtt.ErrClockNotTrusted)
	c.await("telemetry with the untrusted clock", from, func(m captured) bool {
		clock, _ := m.json()["clock"].(map[string]any)
		return m.topic == tp.Telemetry() && clock["trusted"] == false
	})
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
	c.await("offline again", from, func(m captured) bool { return m.topic == status && m.json()["state"] == "offline" })

	msgs := c.verify()

	// Every channel the gateway publishes on was seen.
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.channel] = true
	}
	for _, row := range mqtt.TopicTable() {
		if !row.Sub {
			assert.True(t, seen[row.Pattern], "nothing published on %s", row.Pattern)
		}
	}

	// One outcome event per command attempt: a door's refusal is its
	// command_rejected (with the door's reason), never also command_failed.
	outcomes := map[string][]string{}
	for _, m := range msgs {
		p := m.json()
		switch typ := fmt.Sprint(p["type"]); {
		case m.channel != "{prefix}/{site}/{gateway}/event/{category}" || p["command_id"] == nil:
		case typ == string(agent.EventCommandRejected) || typ == string(agent.EventCommandFailed) || typ == string(agent.EventCommandSucceeded):
			outcomes[fmt.Sprint(p["command_id"])] = append(outcomes[fmt.Sprint(p["command_id"])], typ+"/"+fmt.Sprint(p["reason"]))
		}
	}
	assert.Equal(t, []string{"command_rejected/door_lockdown"}, outcomes["e2e-during-lockdown"])
	assert.Equal(t, []string{"command_rejected/invalid_command"}, outcomes["e2e-too-long"])
	assert.ElementsMatch(t, []string{"command_succeeded/<nil>", "command_rejected/duplicate"}, outcomes["01JD8ZQ4X7"])

	checkDocExamples(t, c.contract, msgs)
}

// checkDocExamples holds every JSON example of docs/mqtt.md to the
// contract: each matches a channel's schema, and a message of the same kind
// (channel, and event type, status or response status and command) seen in
// the end-to-end run has exactly its fields, nested ones included.
func checkDocExamples(t *testing.T, contract *mqttcontract.Contract, msgs []captured) {
	t.Helper()
	md, err := os.ReadFile(mqttDocPath)
	require.NoError(t, err)
	examples := jsonExamples(t, string(md))
	require.NotEmpty(t, examples)
	for _, ex := range examples {
		var matched []*mqttcontract.Channel
		for _, ch := range contract.Channels() {
			if ch.ContentType == "application/json" && ch.Check(ex) == nil {
				matched = append(matched, ch)
			}
		}
		if !assert.NotEmpty(t, matched, "docs/mqtt.md example matches no message schema of docs/asyncapi.yaml: %s", ex) {
			continue
		}
		var example map[string]any
		require.NoError(t, json.Unmarshal(ex, &example))
		want := fieldSet(example)
		var candidates []string
		for _, m := range msgs {
			if !slices.ContainsFunc(matched, func(ch *mqttcontract.Channel) bool { return ch.Pattern == m.channel }) {
				continue
			}
			p := m.json()
			if kind(p) != kind(example) {
				continue
			}
			got := fieldSet(p)
			if slices.Equal(got, want) {
				candidates = nil
				break
			}
			candidates = append(candidates, strings.Join(got, " "))
		}
		if candidates != nil || len(want) == 0 {
			t.Errorf("docs/mqtt.md example %s\nhas the fields %v,\nbut no message of its kind (%s) seen end to end has them; seen:\n%s", ex, want, kind(example), strings.Join(candidates, "\n"))
		}
	}
}

// kind says which messages an example is compared with.
func kind(p map[string]any) string {
	var parts []string
	for _, k := range []string{"type", "state", "status", "command", "event_type"} {
		if v, ok := p[k]; ok {
			parts = append(parts, k+"="+fmt.Sprint(v))
		}
	}
	return strings.Join(parts, ",")
}

// fieldSet lists the paths of every field of v, nested objects included.
func fieldSet(v map[string]any) []string {
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				out = append(out, prefix+k)
				walk(prefix+k+".", e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[].", e)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return slices.Compact(out)
}

// jsonExamples returns every JSON object in the ```json blocks of a
// Markdown text (a block may hold several).
func jsonExamples(t *testing.T, md string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, block := range strings.Split(md, "```json\n")[1:] {
		body, _, ok := strings.Cut(block, "\n```")
		require.True(t, ok, "an unterminated json block")
		dec := json.NewDecoder(strings.NewReader(body))
		for dec.More() {
			var raw json.RawMessage
			require.NoError(t, dec.Decode(&raw), "a json block of docs/mqtt.md:\n%s", body)
			var compact bytes.Buffer
			require.NoError(t, json.Compact(&compact, raw))
			out = append(out, compact.Bytes())
		}
	}
	return out
}

// TestBinaryDoesNotLinkTheContractChecker: the schema checker is for tests.
func TestBinaryDoesNotLinkTheContractChecker(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(out), "mqttcontract")
	assert.NotContains(t, string(out), "jsonschema")
}
