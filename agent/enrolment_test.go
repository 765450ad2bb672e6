package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
)

func arm(t *testing.T, r *rig, tag string) (agent.CommandResult, <-chan agent.EnrolResult) {
	t.Helper()
	res, ch, err := r.ctl.ArmEnrolment(context.Background(), agent.EnrolCommand{Command: cmd("e-1"), TagNumber: tag})
	require.NoError(t, err)
	r.flush()
	return res, ch
}

func TestEnrolNextTap(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	res, ch := arm(t, r, "2")
	require.True(t, res.Accepted)
	assert.True(t, r.ctl.Status().EnrolmentArmed)
	assert.Contains(t, r.last(agent.EventEnrolmentArmed).Detail, "tag:…002")

	card := agent.CardUID([]byte{0x04, 0x11, 0x22, 0x33})
	r.present(card)
	got := <-ch
	assert.Equal(t, agent.EnrolEnrolled, got.Outcome)
	assert.Equal(t, "00000002", got.TagNumber)
	assert.Equal(t, "u-bob", got.User.ID)
	assert.Equal(t, card.Masked(), got.Credential)
	_, open := <-ch
	assert.False(t, open, "one result, then closed")
	assert.Equal(t, map[string]string{"uid:04112233": "00000002"}, r.store.stored)

	e := r.last(agent.EventEnrolled)
	assert.Equal(t, "u-bob", e.User.ID)
	assert.Equal(t, agent.KindUID, e.Kind)
	assert.Equal(t, card.Masked(), e.Credential)
	assert.NotContains(t, eventsJSON(t, r.sink.all()), "04112233", "the full UID never reaches an event")
	assert.False(t, r.relay.On(), "an enrolment tap opens nothing")
	assert.Zero(t, r.count(agent.EventAccessDenied)+r.count(agent.EventAccessGranted))
	assert.False(t, r.ctl.Status().EnrolmentArmed)

	r.present(adaTag) // disarmed: back to deciding
	assert.True(t, r.relay.On())
}

func TestEnrolWiegandWithoutHolder(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	_, ch := arm(t, r, "00000042")
	r.present(agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 7, Card: 4242}))
	got := <-ch
	assert.Equal(t, agent.EnrolEnrolled, got.Outcome)
	assert.Nil(t, got.User)
	assert.Equal(t, "00000042", r.store.stored["wg:H10301:7:4242"])
	assert.Contains(t, r.last(agent.EventEnrolled).Detail, "no user holds this tag number yet")
}

func TestEnrolmentExpires(t *testing.T) {
	r := newRig(t, agent.ModeCard).start()
	_, ch := arm(t, r, "2")
	r.advance(time.Minute - time.Nanosecond)
	assert.True(t, r.ctl.Status().EnrolmentArmed)
	r.advance(time.Nanosecond)
	got := <-ch
	assert.Equal(t, agent.EnrolExpired, got.Outcome)
	assert.Equal(t, 1, r.count(agent.EventEnrolmentExpired))
	r.present(adaTag)
	assert.True(t, r.relay.On(), "the next tap is decided again")
	assert.Empty(t, r.store.stored)
}

func TestEnrolmentCanceledByWhoArmedIt(t *testing.T) {
	tests := []struct {
		name       string
		cancelID   string
		wantArmed  bool
		wantResult agent.EnrolOutcome
	}{
		{name: "the arming command cancels", cancelID: "e-1", wantArmed: false, wantResult: agent.EnrolExpired},
		{name: "another command's cancel leaves it armed", cancelID: "e-2", wantArmed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, agent.ModeCard).start()
			_, ch := arm(t, r, "2")
			res, err := r.ctl.CancelEnrolment(context.Background(), agent.CancelEnrolment{Command: cmd(tt.cancelID)})
			require.NoError(t, err)
			r.flush()
			assert.True(t, res.Accepted)
			assert.Equal(t, tt.wantArmed, r.ctl.Status().EnrolmentArmed)
			if tt.wantArmed {
				assert.Zero(t, r.count(agent.EventEnrolmentExpired))
				return
			}
			got := <-ch
			assert.Equal(t, tt.wantResult, got.Outcome)
			assert.Contains(t, r.last(agent.EventEnrolmentExpired).Detail, "canceled")
			r.present(agent.CardUID([]byte{0x04, 0x11, 0x22, 0x33}))
			assert.Empty(t, r.store.stored, "the next tap is not enrolled")
		})
	}
}

func TestEnrolmentRefusalsAndFailures(t *testing.T) {
	t.Run("invalid tag number", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		res, ch := arm(t, r, "123456789")
		assert.Equal(t, agent.CommandInvalid, res.Reason)
		assert.Nil(t, ch)
		assert.Equal(t, 1, r.count(agent.EventCommandRejected))
	})
	t.Run("no store", func(t *testing.T) {
		r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) { c.Enrolments = nil }).start()
		res, _ := arm(t, r, "2")
		assert.Equal(t, agent.CommandUnsupported, res.Reason)
	})
	t.Run("a tag number cannot be enrolled", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, ch := arm(t, r, "2")
		r.present(adaTag)
		got := <-ch
		assert.Equal(t, agent.EnrolFailed, got.Outcome)
		assert.Error(t, got.Err)
		assert.Equal(t, 1, r.count(agent.EventEnrolmentFailed))
		assert.False(t, r.relay.On())
	})
	t.Run("store fails", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		r.store.err = errors.New("database is locked")
		_, ch := arm(t, r, "2")
		r.present(adaUID)
		got := <-ch
		assert.Equal(t, agent.EnrolFailed, got.Outcome)
		assert.ErrorContains(t, got.Err, "database is locked")
	})
	t.Run("replaced by a newer command", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, first := arm(t, r, "2")
		_, second := arm(t, r, "3")
		assert.Equal(t, agent.EnrolReplaced, (<-first).Outcome)
		r.present(adaUID)
		assert.Equal(t, "00000003", (<-second).TagNumber)
	})
	t.Run("stopped", func(t *testing.T) {
		r := newRig(t, agent.ModeCard).start()
		_, ch := arm(t, r, "2")
		require.NoError(t, r.stop())
		assert.Equal(t, agent.EnrolStopped, (<-ch).Outcome)
	})
}
