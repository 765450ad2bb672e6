// Package mqttcontract holds MQTT messages to docs/asyncapi.yaml: it compiles
// the payload schema of every channel the document declares and checks a
// message against the channel its topic belongs to. Tests use it on every
// message a link or the real binary publishes, so the document cannot drift
// from the wire. It is for tests; the gateway never links it.
package mqttcontract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/cloud/mqtt"
)

// docURL names the document inside the schema compiler.
const docURL = "urn:portier:asyncapi"

// Contract is a compiled AsyncAPI document.
type Contract struct {
	// Doc is the document as JSON values (maps, slices, strings, numbers).
	Doc      map[string]any
	channels map[string]*Channel
}

// Channel is one channel of the document and the schema of its payload.
type Channel struct {
	Pattern     string
	Message     string // the components/messages name, "" for an inline message
	ContentType string
	Schema      *jsonschema.Schema
}

// Load reads and compiles an AsyncAPI 2 document (YAML or JSON). Message
// payloads are AsyncAPI Schema Objects, a superset of JSON Schema draft 7,
// so they are compiled as draft 7, with formats (date-time) asserted.
func Load(path string) (*Contract, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mqttcontract: %w", err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, fmt.Errorf("mqttcontract: %s: %w", path, err)
	}
	// Through JSON, so numbers and maps are what the schema compiler takes.
	j, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("mqttcontract: %s: %w", path, err)
	}
	docAny, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("mqttcontract: %s: %w", path, err)
	}
	doc, ok := docAny.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("mqttcontract: %s: not an object", path)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft7)
	comp.AssertFormat()
	if err := comp.AddResource(docURL, doc); err != nil {
		return nil, fmt.Errorf("mqttcontract: %w", err)
	}
	c := &Contract{Doc: doc, channels: map[string]*Channel{}}
	chans, _ := doc["channels"].(map[string]any)
	for pattern, v := range chans {
		ch, _ := v.(map[string]any)
		var op map[string]any
		var opName string
		for _, name := range []string{"subscribe", "publish"} {
			if o, ok := ch[name].(map[string]any); ok {
				op, opName = o, name
			}
		}
		if op == nil {
			return nil, fmt.Errorf("mqttcontract: channel %s has no operation", pattern)
		}
		msg, _ := op["message"].(map[string]any)
		loc := "/channels/" + pointerEscape(pattern) + "/" + opName + "/message"
		name := ""
		if ref, ok := msg["$ref"].(string); ok {
			name = strings.TrimPrefix(ref, "#/components/messages/")
			loc = "/components/messages/" + pointerEscape(name)
			msg, _ = lookup(doc, "components", "messages", name).(map[string]any)
			if msg == nil {
				return nil, fmt.Errorf("mqttcontract: channel %s: no message %s", pattern, ref)
			}
		}
		if _, ok := msg["payload"]; !ok {
			return nil, fmt.Errorf("mqttcontract: channel %s: message without payload", pattern)
		}
		sch, err := comp.Compile(docURL + "#" + fragmentEscape(loc+"/payload"))
		if err != nil {
			return nil, fmt.Errorf("mqttcontract: channel %s: %w", pattern, err)
		}
		ct, _ := msg["contentType"].(string)
		if ct == "" {
			ct, _ = doc["defaultContentType"].(string)
		}
		c.channels[pattern] = &Channel{Pattern: pattern, Message: name, ContentType: ct, Schema: sch}
	}
	return c, nil
}

// Channels lists the channels by pattern.
func (c *Contract) Channels() []*Channel {
	out := make([]*Channel, 0, len(c.channels))
	for _, ch := range c.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// Channel returns the channel of a pattern, nil when there is none.
func (c *Contract) Channel(pattern string) *Channel { return c.channels[pattern] }

// Validate checks a message published on topic (a topic of the gateway t
// describes) against its channel: the topic must belong to a documented
// channel and the payload must match that channel's schema. It returns the
// channel.
func (c *Contract) Validate(t mqtt.Topics, topic string, payload []byte) (*Channel, error) {
	pattern := t.Pattern(topic)
	if pattern == "" {
		return nil, fmt.Errorf("%s: not a topic of the contract", topic)
	}
	ch := c.channels[pattern]
	if ch == nil {
		return nil, fmt.Errorf("%s: channel %s is not in the AsyncAPI document", topic, pattern)
	}
	return ch, ch.Check(payload)
}

// Check validates a payload against the channel's schema. A JSON payload
// is parsed; an empty one (MQTT's way of removing a retained message or a
// Home Assistant entity) and a text/plain one are checked as a JSON string.
func (ch *Channel) Check(payload []byte) error {
	inst, err := ch.Instance(payload)
	if err != nil {
		return err
	}
	if err := ch.Schema.Validate(inst); err != nil {
		return fmt.Errorf("%s: %s: %w", ch.Pattern, payload, err)
	}
	return nil
}

// Instance is the value a payload is checked as.
func (ch *Channel) Instance(payload []byte) (any, error) {
	if len(payload) == 0 || ch.ContentType == "text/plain" {
		return string(payload), nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: not JSON: %w: %s", ch.Pattern, err, payload)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON value: %s", ch.Pattern, payload)
	}
	return v, nil
}

// Enum returns the enum of the schema at a path of the document (e.g.
// "components", "schemas", "eventType"), for tests that hold it to the Go
// constants.
func (c *Contract) Enum(path ...string) ([]string, error) {
	s, _ := lookup(c.Doc, path...).(map[string]any)
	if s == nil {
		return nil, fmt.Errorf("no schema at %s", strings.Join(path, "/"))
	}
	raw, ok := s["enum"].([]any)
	if !ok {
		return nil, errors.New("no enum at " + strings.Join(path, "/"))
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		out[i] = fmt.Sprint(v)
	}
	return out, nil
}

func lookup(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// pointerEscape escapes one JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// fragmentEscape makes a JSON pointer a URL fragment (RFC 6901 §6).
func fragmentEscape(p string) string {
	return (&url.URL{Fragment: p}).EscapedFragment()
}
