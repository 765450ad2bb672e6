package mqtt

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/portier-io/portier/agent"
)

// TestTopicsDocumented: every topic in TopicTable is built by the code as
// documented, and appears in docs/mqtt.md and as a channel of
// docs/asyncapi.yaml; so do every command, category and error type.
func TestTopicsDocumented(t *testing.T) {
	md, err := os.ReadFile("../../docs/mqtt.md")
	require.NoError(t, err)
	raw, err := os.ReadFile("../../docs/asyncapi.yaml")
	require.NoError(t, err)
	var api struct {
		AsyncAPI string         `yaml:"asyncapi"`
		Channels map[string]any `yaml:"channels"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &api))
	assert.Equal(t, "2.6.0", api.AsyncAPI)

	documented := map[string]bool{}
	for _, row := range TopicTable() {
		assert.Equal(t, row.Pattern, row.Build(placeholders), "the code builds %s differently", row.Pattern)
		assert.Contains(t, string(md), "`"+row.Pattern+"`", "docs/mqtt.md lacks %s", row.Pattern)
		assert.Contains(t, api.Channels, row.Pattern, "docs/asyncapi.yaml lacks channel %s", row.Pattern)
		documented[row.Pattern] = true
	}
	for ch := range api.Channels {
		assert.True(t, documented[ch], "asyncapi channel %s is not a topic the code uses", ch)
	}
	// The subscriptions are inside the documented topics.
	tp := Topics{Prefix: "p", Site: "s", Gateway: "g", Discovery: "homeassistant"}
	for _, filter := range []string{tp.Commands(), tp.HALocks(), tp.HAStatus()} {
		assert.NotEmpty(t, tp.Pattern(strings.ReplaceAll(filter, "+", "x")), filter)
	}
	for _, c := range Categories {
		assert.Contains(t, string(md), "| `"+c+"` |", "category %s", c)
		assert.Contains(t, string(raw), c)
	}
	for _, n := range CommandNames {
		assert.Contains(t, string(md), "| `"+n+"` |", "command %s", n)
		assert.Contains(t, string(raw), n)
	}
	for _, e := range ErrorTypes {
		assert.Contains(t, string(md), "`"+e+"`", "error type %s", e)
		assert.Contains(t, string(raw), e)
	}
	// Every event type lands in a documented category row.
	for _, typ := range append(agent.DoorEventTypes, EventCommandSucceeded, EventCommandFailed, EventOutboxHighWater, EventOutboxFull, EventOutboxNormal, agent.EventStoreFailed, agent.EventStoreRecovered,
		agent.EventCommandsRefused, agent.EventPacketRefused) {
		cat := EventCategory(typ)
		if cat == CategorySystem {
			continue
		}
		assert.Regexp(t, "\\| `"+cat+"` \\|[^\\n]*`"+string(typ)+"`", string(md), "event %s in category %s", typ, cat)
	}
}

func TestTopicPattern(t *testing.T) {
	tp := Topics{Prefix: "acme/doors", Site: "s1", Gateway: "g1", Discovery: "homeassistant"}
	assert.Equal(t, "{prefix}/{site}/{gateway}/door/{door}/state", tp.Pattern("acme/doors/s1/g1/door/front/state"))
	assert.Equal(t, "{prefix}/{site}/{gateway}/event/{category}", tp.Pattern(tp.Event("access")))
	assert.Equal(t, "{discovery}/{component}/{gateway}/{object_id}/config", tp.Pattern(tp.HAConfig("lock", "front_lock")))
	assert.Empty(t, tp.Pattern("acme/doors/s1/other/status"), "another gateway's topic is not ours")
	assert.Empty(t, tp.Pattern("acme/doors/s1/g1/door//state"))
}
