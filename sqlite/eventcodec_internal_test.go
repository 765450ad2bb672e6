package sqlite

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func TestEventCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 0, 0, 123456789, time.UTC)
	for _, e := range []agent.Event{
		{ID: "a", Seq: 7, Time: at, Type: agent.EventAccessGranted, Door: "front", Reason: agent.ReasonGranted,
			User: &agent.UserRef{ID: "u1", PlatformID: "p1", Name: "Åda Løvelace"}, Group: &agent.GroupRef{ID: "g1", Name: "Residents"},
			Kind: agent.KindUID, Credential: "uid:7 bytes …E5F6", Detail: "access group Residents", CommandID: "c-1", Actor: "ops"},
		{ID: "b", Seq: 8, Time: at, Type: agent.EventDoorOpened, Door: "front"},
		{ID: "c", Seq: 9, Time: at, Type: agent.EventRemoteUnlock, Group: &agent.GroupRef{ID: "g-only"}},
		{ID: "d", Seq: 10, Time: at, Type: "x", Detail: "separators \x1f\x1e and newlines\n survive"},
		{ID: "e", Seq: 11, Time: at, Type: agent.EventCommandsRefused, Reason: "malformed", Count: 9990, SampleIDs: []string{"j-1", "", "j-3"}},
		{ID: "f", Seq: 12, Time: at, Type: agent.EventCommandsRefused, Count: 3},
	} {
		got, err := decodeEvent(encodeEvent(e), e.Seq)
		require.NoError(t, err)
		assert.Equal(t, e, got)
	}
}

func TestEventCodecReadsJSONRows(t *testing.T) {
	e := agent.Event{ID: "old", Seq: 3, Time: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Type: agent.EventAccessDenied, Reason: agent.ReasonUserBlocked}
	body, err := json.Marshal(e)
	require.NoError(t, err)
	got, err := decodeEvent(body, 3)
	require.NoError(t, err)
	assert.Equal(t, e, got)
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(agent.Event{ID: "a", Type: agent.EventAccessGranted, User: &agent.UserRef{ID: "u"}}))
	f.Add([]byte(`{"id":"x"}`))
	f.Add([]byte{eventCodecV1, 0x80})
	f.Add(encodeEvent(agent.Event{ID: "s", Type: agent.EventCommandsRefused, Count: 12, SampleIDs: []string{"a", "b"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b, 1)
		if err != nil || len(b) == 0 || b[0] != eventCodecV1 {
			return
		}
		// Whatever decodes re-encodes to a body that decodes the same.
		again, err := decodeEvent(encodeEvent(e), 1)
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}
