package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTour plays `make demo`'s guided tour against the real portier binary
// and the fake Salto KS: what the README promises a newcomer.
func TestTour(t *testing.T) {
	bin := buildPortier(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	err := run(ctx, nil, &buf, bin, "../portier/defaults/demo-site.json", "../portier/defaults/portier.yaml", false)
	require.NoError(t, err, buf.String())
	text := buf.String()
	for _, want := range []string{
		"access_granted      Ada Lovelace (Resident (24/7))  uid:7 bytes …E5F6",
		"relay_on",
		"access_denied      user_blocked  Mallory Blocked",
		"access_denied      unknown_credential  pin:******",
		"awaiting_pin       second_factor_required  Ada Lovelace",
		"the reader proved the new key",
		"studio  reader_installed    — command local-",
		"studio: relay=off door_contact=off reader=online secure led=",
		"reader_offline",
		"reader_online",
		"forced_open",
		"exit_pressed",
		"access_denied      card_mismatch  Ada Lovelace  uid:7 bytes …E5F6",
		"card_alarm         card_mismatch  Ada Lovelace",
		"access_granted      Ada Lovelace (Resident (24/7))  desfire:tag …234",
		"access_denied      card_not_authenticated  desfire:uid 7 bytes …E5F6",
		"card_issued         Ada Lovelace  desfire:tag …234",
		"access_denied      card_superseded  Ada Lovelace  desfire:tag …234",
		"present the card at door lab's reader",
		"portier stopped; every relay is in its safe state.",
		"mosquitto_sub -h 127.0.0.1 -p ",
	} {
		assert.Contains(t, text, want)
	}
	// Each step's events are shown under it, before the next step begins.
	for _, tc := range []struct{ event, nextStep string }{
		{"first fingerprint of this card recorded (DESFire EV2", "▶ …and the strike relocks"},
		{"card_learned       user_blocked  Mallory Blocked", "▶ Someone types a PIN nobody has"},
		{"card generation 1 seen", "▶ …the copy proves nothing there"},
		{"forced_open_cleared", "▶ Someone inside presses the exit button"},
	} {
		ev, next := strings.Index(text, tc.event), strings.Index(text, tc.nextStep)
		require.True(t, ev >= 0 && next >= 0, "%q and %q in the tour", tc.event, tc.nextStep)
		assert.Less(t, ev, next, "%q is shown under a later step", tc.event)
	}
	// The tour echoes what the person types; the agent's events never carry it.
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, "door> ") {
			assert.NotContains(t, line, "482915", "a PIN reached the event panel")
		}
	}
}

var portierBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildPortier builds the portier binary once for all tests.
func buildPortier(t *testing.T) string {
	t.Helper()
	portierBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "portier-demo-test-")
		if err != nil {
			portierBin.err = err
			return
		}
		portierBin.path = filepath.Join(dir, "portier")
		portierBin.out, portierBin.err = exec.Command("go", "build", "-tags", "sqlite_omit_load_extension", "-o", portierBin.path, "../portier").CombinedOutput()
	})
	require.NoError(t, portierBin.err, string(portierBin.out))
	return portierBin.path
}
