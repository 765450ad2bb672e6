package mqtt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// FuzzAppendEvent holds the hand-written event encoder to encoding/json:
// valid JSON that decodes to the same payload.
func FuzzAppendEvent(f *testing.F) {
	f.Add("front", "Ada \"Lovelace\"", "card:…3f9a", "line\nbreak\t\x01", "u\u2028x", int64(42), int64(1795300000123456789))
	f.Add("", "", "", "\xff\xfe", "<>&", int64(0), int64(0))
	l := &Link{cfg: Config{Topics: Topics{Prefix: "p", Site: "s", Gateway: "g"}}}
	f.Fuzz(func(t *testing.T, door, name, cred, detail, actor string, seq, nanos int64) {
		e := agent.Event{ID: "id-" + actor, Seq: seq, Time: time.Unix(0, nanos), Type: agent.EventAccessGranted, Door: door,
			Reason: agent.Reason(detail), Kind: agent.CredentialKind(cred), Credential: cred, Detail: detail, CommandID: name, Actor: actor}
		if len(name)%2 == 0 {
			e.User = &agent.UserRef{ID: name, Name: detail, PlatformID: door}
			e.Group = &agent.GroupRef{ID: actor, Name: name}
		}
		if len(detail)%2 == 1 { // a summary event
			e.Count = int(seq % 100000)
			e.SampleIDs = []string{door, cred, actor}
		}
		got := l.appendEvent(nil, e, EventCategory(e.Type))
		require.True(t, json.Valid(got), "%q", got)
		want, err := json.Marshal(l.eventPayload(e))
		require.NoError(t, err)
		var a, b EventPayload
		require.NoError(t, json.Unmarshal(got, &a))
		require.NoError(t, json.Unmarshal(want, &b))
		assert.Equal(t, b, a)
		var am, bm map[string]any
		require.NoError(t, json.Unmarshal(got, &am))
		require.NoError(t, json.Unmarshal(want, &bm))
		assert.Equal(t, bm, am, "the same members")
	})
}
