package agent_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

// indicator records the signals a controller shows.
type indicator struct {
	mu    sync.Mutex
	shown []agent.Signal
}

func (i *indicator) Show(s agent.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.shown = append(i.shown, s)
	return nil
}

func (i *indicator) all() []agent.Signal {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.shown)
}

func (i *indicator) last() agent.Signal {
	s := i.all()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func withIndicator(ind *indicator) func(*agent.ControllerConfig) {
	return func(c *agent.ControllerConfig) { c.Indicator = ind }
}

func TestIndicatorFollowsTheDoor(t *testing.T) {
	t.Run("grant: unlocked until the relay relocks", func(t *testing.T) {
		ind := &indicator{}
		r := newRig(t, agent.ModeCardOrPIN, withIndicator(ind)).start()
		assert.Equal(t, []agent.Signal{agent.SignalIdle}, ind.all(), "idle from the start")
		r.present(adaTag)
		assert.Equal(t, agent.SignalGranted, ind.last())
		r.advance(5 * time.Second)
		assert.Equal(t, []agent.Signal{agent.SignalIdle, agent.SignalGranted, agent.SignalIdle}, ind.all(), "shown once per change")
	})
	t.Run("denial, then idle", func(t *testing.T) {
		ind := &indicator{}
		r := newRig(t, agent.ModeCardOrPIN, withIndicator(ind)).start()
		r.present(hankTag)
		assert.Equal(t, agent.SignalDenied, ind.last())
		r.advance(time.Second)
		assert.Equal(t, agent.SignalIdle, ind.last())
	})
	t.Run("card and PIN: awaiting the PIN, then granted", func(t *testing.T) {
		ind := &indicator{}
		r := newRig(t, agent.ModeCardAndPIN, withIndicator(ind)).start()
		r.present(adaTag)
		r.advance(time.Second) // past the short acknowledgement
		assert.Equal(t, agent.SignalAwaitPIN, ind.last(), "for the whole PIN window")
		r.keys("111111#")
		assert.Equal(t, agent.SignalGranted, ind.last())
	})
	t.Run("forced open is an alarm", func(t *testing.T) {
		ind := &indicator{}
		r := newRig(t, agent.ModeCardOrPIN, withIndicator(ind)).start()
		r.input(agent.DoorContact, true)
		assert.Equal(t, agent.SignalAlarm, ind.last())
		r.input(agent.DoorContact, false)
		assert.Equal(t, agent.SignalIdle, ind.last())
	})
	t.Run("idle at shutdown", func(t *testing.T) {
		ind := &indicator{}
		r := newRig(t, agent.ModeCardOrPIN, withIndicator(ind)).start()
		r.present(adaTag)
		require.NoError(t, r.stop())
		assert.Equal(t, agent.SignalIdle, ind.last())
	})
}

func withReaders(names ...string) func(*agent.ControllerConfig) {
	return func(c *agent.ControllerConfig) { c.Readers = names }
}

func (r *rig) reader(s agent.ReaderStatus) {
	r.t.Helper()
	require.NoError(r.t, r.ctl.SetReader(s))
	r.flush()
}

func TestSupervisedReader(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN, withReaders("osdp")).start()
	st := r.ctl.Status()
	require.Len(t, st.Readers, 1)
	assert.Equal(t, agent.ReaderStarting, st.Readers[0].State, "listed before its first report")
	assert.Empty(t, st.Alarms)

	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOnline, Secure: true, Detail: "secure channel established"})
	on := r.last(agent.EventReaderOnline)
	assert.Equal(t, "osdp reader: secure channel established", on.Detail)
	assert.Equal(t, "front", on.Door)

	r.advance(time.Minute)
	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOffline, Reason: "timeout", Detail: "timeout: no valid reply for 8s"})
	off := r.last(agent.EventReaderOffline)
	assert.Contains(t, off.Detail, "timeout")
	st = r.ctl.Status()
	assert.Equal(t, []agent.EventType{agent.EventReaderOffline}, st.Alarms)
	assert.Equal(t, t0.Add(time.Minute), st.Readers[0].Since)
	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOffline, Reason: "timeout", Detail: "timeout: no valid reply for 9s"})
	assert.Equal(t, 1, r.count(agent.EventReaderOffline), "the same condition is no new event")

	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderRefused, Reason: "wrong_key"})
	assert.Equal(t, []agent.EventType{agent.EventReaderRefused}, r.ctl.Status().Alarms)

	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOnline, Secure: true, PowerFault: true})
	assert.Equal(t, 2, r.count(agent.EventReaderOnline))
	r.last(agent.EventReaderPowerFault)
	assert.Equal(t, []agent.EventType{agent.EventReaderPowerFault}, r.ctl.Status().Alarms)
	r.reader(agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOnline, Secure: true})
	r.last(agent.EventReaderPowerRestored)
	assert.Empty(t, r.ctl.Status().Alarms)
}

// A reader's tamper switch and the wired tamper input are one door alarm:
// it stands while either is active.
func TestReaderTamperJoinsTheDoorTamper(t *testing.T) {
	r := newRig(t, agent.ModeCardOrPIN, withReaders("osdp")).start()
	online := agent.ReaderStatus{Reader: "osdp", State: agent.ReaderOnline, Secure: true}
	tampered := online
	tampered.Tamper = true

	r.reader(tampered)
	assert.Equal(t, "osdp reader's tamper switch triggered", r.last(agent.EventTamper).Detail)
	assert.Contains(t, r.ctl.Status().Alarms, agent.EventTamper)
	r.input(agent.Tamper, true)
	r.reader(online)
	assert.Equal(t, 0, r.count(agent.EventTamperCleared), "the wired input is still active")
	assert.Contains(t, r.ctl.Status().Alarms, agent.EventTamper)
	r.input(agent.Tamper, false)
	assert.Equal(t, "tamper input restored", r.last(agent.EventTamperCleared).Detail)
	assert.Equal(t, 1, r.count(agent.EventTamper))
	assert.NotContains(t, r.ctl.Status().Alarms, agent.EventTamper)
}
