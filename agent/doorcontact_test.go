package agent_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/agent"
)

func TestForcedOpen(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	r.input(agent.DoorContact, true)
	assert.Equal(t, []agent.EventType{agent.EventDoorOpened, agent.EventForcedOpen}, r.types())
	assert.Equal(t, "opened while locked", r.last(agent.EventDoorOpened).Detail)
	assert.True(t, r.buzzer.On(), "the buzzer sounds while forced open")
	assert.Equal(t, []agent.EventType{agent.EventForcedOpen}, r.ctl.Status().Alarms)

	r.input(agent.DoorContact, true) // repeated level: nothing
	r.input(agent.DoorContact, false)
	assert.Equal(t, []agent.EventType{agent.EventDoorOpened, agent.EventForcedOpen, agent.EventDoorClosed, agent.EventForcedOpenCleared}, r.types())
	assert.False(t, r.buzzer.On())
	assert.Empty(t, r.ctl.Status().Alarms)
}

func TestOpeningAfterTheGrantEnded(t *testing.T) {
	tests := []struct {
		name   string
		after  time.Duration // since the relay switched off
		forced bool
	}{
		{"within the contact grace", 900 * time.Millisecond, false},
		{"at the end of the grace", time.Second, false},
		{"after the grace", time.Second + time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, agent.ModeCard).start()
			r.present(adaTag)
			r.advance(5 * time.Second)
			r.advance(tt.after)
			r.input(agent.DoorContact, true)
			assert.Equal(t, tt.forced, r.count(agent.EventForcedOpen) == 1)
		})
	}
}

func TestHeldOpenPreAlarmAlarmAndCleared(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	r.present(adaTag)
	r.input(agent.DoorContact, true)
	r.advance(24*time.Second - time.Nanosecond)
	assert.Zero(t, r.count(agent.EventHeldOpenPreAlarm))
	r.advance(time.Nanosecond)
	assert.Equal(t, t0.Add(24*time.Second), r.last(agent.EventHeldOpenPreAlarm).Time)
	assert.True(t, r.buzzer.On(), "pre-alarm beep")
	assert.Equal(t, []agent.EventType{agent.EventHeldOpenPreAlarm}, r.ctl.Status().Alarms)
	r.advance(time.Second)
	assert.False(t, r.buzzer.On(), "the pre-alarm beep is short")
	r.advance(5 * time.Second)
	assert.Equal(t, t0.Add(30*time.Second), r.last(agent.EventHeldOpen).Time)
	assert.True(t, r.buzzer.On(), "the held-open alarm sounds until the door closes")
	assert.Equal(t, []agent.EventType{agent.EventHeldOpen}, r.ctl.Status().Alarms)
	r.advance(time.Hour)
	assert.Equal(t, 1, r.count(agent.EventHeldOpen), "raised once")

	r.input(agent.DoorContact, false)
	assert.Equal(t, []agent.EventType{
		agent.EventAccessGranted, agent.EventRelayOn, agent.EventDoorOpened, agent.EventRelayOff,
		agent.EventHeldOpenPreAlarm, agent.EventHeldOpen, agent.EventDoorClosed, agent.EventHeldOpenCleared,
	}, r.types())
	assert.False(t, r.buzzer.On())
	assert.Empty(t, r.ctl.Status().Alarms)
}

func TestClosingBeforeThePreAlarmRaisesNothing(t *testing.T) {
	r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) { c.PreAlarmAfter = -1 }).start()
	r.present(adaTag)
	r.input(agent.DoorContact, true)
	r.advance(29 * time.Second)
	r.input(agent.DoorContact, false)
	r.advance(time.Hour)
	assert.Zero(t, r.count(agent.EventHeldOpenPreAlarm))
	assert.Zero(t, r.count(agent.EventHeldOpen))
	assert.Zero(t, r.count(agent.EventHeldOpenCleared))
}

func TestExitButtonUnlocksAndSuppressesForcedOpen(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	r.input(agent.ExitButton, true)
	assert.True(t, r.relay.On())
	r.input(agent.ExitButton, false) // release does nothing
	r.advance(2 * time.Second)
	r.input(agent.DoorContact, true)
	r.input(agent.DoorContact, false)
	assert.False(t, r.relay.On(), "relocked when the door closed")
	assert.Equal(t, []agent.EventType{agent.EventExitPressed, agent.EventRelayOn, agent.EventDoorOpened, agent.EventDoorClosed, agent.EventRelayOff}, r.types())
	assert.Equal(t, "unlocked for 5s", r.last(agent.EventExitPressed).Detail)
}

func TestTamper(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	r.input(agent.Tamper, true)
	assert.Equal(t, []agent.EventType{agent.EventTamper}, r.ctl.Status().Alarms)
	r.input(agent.Tamper, true)
	r.input(agent.Tamper, false)
	assert.Equal(t, []agent.EventType{agent.EventTamper, agent.EventTamperCleared}, r.types())
	assert.Empty(t, r.ctl.Status().Alarms)
	r.input("doorbell", true)
	assert.Len(t, r.types(), 2, "unknown inputs are ignored")
}
