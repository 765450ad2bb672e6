package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// TestNoPINDigitsInEventsOrLogs drives every PIN path with debug logging on
// and checks that no typed PIN appears in an event or a log line.
func TestNoPINDigitsInEventsOrLogs(t *testing.T) {
	pins := []string{"111111", "222222", "975313", "864202"}
	for _, mode := range []agent.DoorMode{agent.ModePIN, agent.ModeCardOrPIN, agent.ModeCardAndPIN} {
		t.Run(string(mode), func(t *testing.T) {
			r := newRig(t, mode).start()
			r.keys("111111#")
			r.present(adaTag)
			r.keys("111111#")
			r.present(adaTag)
			r.keys("222222#")
			r.keys("9753")
			r.advance(10 * time.Second)
			r.keys("975313#")
			r.present(agent.KeypadPIN("864202"))
			for range 6 {
				r.keys("975313#")
			}
			r.keys("864202#") // locked out
			_, err := r.ctl.Lockdown(context.Background(), agent.LockdownCommand{On: true})
			require.NoError(t, err)
			r.keys("111111#")
			r.flush()

			require.Greater(t, r.count(agent.EventAccessDenied), 3)
			events := eventsJSON(t, r.sink.all())
			logs := r.logs.String()
			require.Contains(t, logs, "access_denied", "the log is captured")
			for _, p := range pins {
				assert.NotContains(t, events, p)
				assert.NotContains(t, logs, p)
				assert.NotContains(t, logs, p[:4], "no prefix of a PIN either")
			}
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				assert.NotContains(t, line, `"key"`, "keys are never logged")
			}
		})
	}
}
