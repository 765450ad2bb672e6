package mqtt_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt"
)

func TestDecodeCommand(t *testing.T) {
	const topic = "portier/s/g/cmd/unlock"
	cmd, rej := mqtt.DecodeCommand("unlock", topic, []byte(`{"id":"a1","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"front","duration_s":5,"override":true}`), nil)
	require.Nil(t, rej)
	assert.Equal(t, "a1", cmd.ID)
	assert.Equal(t, time.Date(2026, 11, 21, 12, 0, 30, 0, time.UTC), cmd.ExpiresAt)
	assert.EqualValues(t, 5, *cmd.DurationS)
	assert.True(t, cmd.Override)

	for _, tc := range []struct{ name, payload, want string }{
		{"unlock", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u"}`, mqtt.ErrMalformed},
		{"unlock", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","duration_s":-1}`, mqtt.ErrMalformed},
		{"unlock", `{"id":"a b","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f"}`, mqtt.ErrMalformed},
		{"unlock", `{"id":"a","expires_at":"tomorrow","actor":"u","door":"f"}`, mqtt.ErrMalformed},
		{"unlock", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f"} {}`, mqtt.ErrMalformed},
		{"unlock", `[1]`, mqtt.ErrMalformed},
		{"office_mode", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","on":false,"until":"2026-11-21T18:00:00Z"}`, mqtt.ErrMalformed},
		{"enroll", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","tag_number":"12ab"}`, mqtt.ErrMalformed},
		{"access_code_create", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","starts_at":"2026-11-22T00:00:00Z","ends_at":"2026-11-21T00:00:00Z"}`, mqtt.ErrMalformed},
		{"sync", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f"}`, mqtt.ErrMalformed},
		{"reboot", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u"}`, mqtt.ErrUnknownCommand},
		{"unlock", `{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","x":"` + strings.Repeat("y", 8200) + `"}`, mqtt.ErrOversized},
	} {
		_, rej := mqtt.DecodeCommand(tc.name, topic, []byte(tc.payload), nil)
		require.NotNil(t, rej, tc.payload[:min(len(tc.payload), 80)])
		assert.Equal(t, tc.want, rej.Type, tc.payload[:min(len(tc.payload), 80)])
	}

	// Signatures: over the topic and the exact bytes; "sig" must come last.
	key := []byte("0123456789abcdef")
	obj := []byte(`{"id":"a","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f"}`)
	signed := mqtt.Sign(key, topic, obj)
	_, rej = mqtt.DecodeCommand("unlock", topic, signed, key)
	assert.Nil(t, rej)
	_, rej = mqtt.DecodeCommand("unlock", topic, append(signed, '\n'), key)
	assert.Nil(t, rej, "trailing whitespace is not part of the signed bytes")
	var m map[string]any
	require.NoError(t, json.Unmarshal(signed, &m), "a signed command is still JSON")
	moved := `{"sig":"` + m["sig"].(string) + `",` + string(obj[1:])
	_, rej = mqtt.DecodeCommand("unlock", topic, []byte(moved), key)
	require.NotNil(t, rej)
	assert.Equal(t, mqtt.ErrMalformed, rej.Type)
	_, rej = mqtt.DecodeCommand("unlock", topic, signed, nil)
	assert.Nil(t, rej, "without a key the signature is ignored")
}

// FuzzDecodeCommand: the decoder never panics, never accepts a command
// without id, expiry and actor, and never echoes an invalid id.
func FuzzDecodeCommand(f *testing.F) {
	key := []byte("0123456789abcdef")
	for _, s := range []string{
		`{"id":"a1","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"front","duration_s":5}`,
		`{"id":"a1","expires_at":"2026-11-21T12:00:30Z","actor":"u","on":true}`,
		`{"id":"a1","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","tag_number":"12345678"}`,
		`{"id":"a1","expires_at":"2026-11-21T12:00:30Z","actor":"u","door":"f","sig":"00"}`,
		`{"id":"a1"`, `[]`, `null`, ``,
	} {
		f.Add("unlock", []byte(s), false)
		f.Add("lockdown", mqtt.Sign(key, "t/cmd/lockdown", []byte(s+" ")), true)
	}
	f.Fuzz(func(t *testing.T, name string, payload []byte, useKey bool) {
		var k []byte
		if useKey {
			k = key
		}
		cmd, rej := mqtt.DecodeCommand(name, "t/cmd/"+name, payload, k)
		if rej != nil {
			if rej.Type == "" || rej.Message == "" {
				t.Fatalf("empty rejection %+v", rej)
			}
			if strings.ContainsAny(cmd.ID, " \"/+#\x00") {
				t.Fatalf("echoed invalid id %q", cmd.ID)
			}
			return
		}
		if cmd.ID == "" || cmd.Actor == "" || cmd.ExpiresAt.IsZero() || len(payload) > mqtt.MaxCommandSize {
			t.Fatalf("accepted an incomplete command %+v from %q", cmd, payload)
		}
	})
}
