package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

func TestBackoff(t *testing.T) {
	steps := func(b *agent.Backoff, n int) []time.Duration {
		var out []time.Duration
		for range n {
			out = append(out, b.Next())
		}
		return out
	}
	s := time.Second
	tests := []struct {
		name string
		b    agent.Backoff
		want []time.Duration
	}{
		{"doubling up to the cap", agent.Backoff{Min: s, Max: 30 * s}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s}},
		{"min above max waits max", agent.Backoff{Min: time.Minute, Max: 30 * s}, []time.Duration{30 * s, 30 * s}},
		{"jitter sees the step", agent.Backoff{Min: s, Max: 4 * s, Jitter: func(d time.Duration) time.Duration { return d + 1 }},
			[]time.Duration{s + 1, 2*s + 1, 4*s + 1, 4*s + 1}},
		{"equal jitter at its ends", agent.Backoff{Min: 2 * s, Max: 8 * s, Jitter: agent.EqualJitter(func() float64 { return 0 })},
			[]time.Duration{s, 2 * s, 4 * s, 4 * s}},
		{"no overflow near the largest duration", agent.Backoff{Min: 1 << 61, Max: 1<<63 - 1}, []time.Duration{1 << 61, 1 << 62, 1<<63 - 1, 1<<63 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, steps(&tt.b, len(tt.want)))
		})
	}
	b := agent.Backoff{Min: s, Max: time.Hour}
	for range 200 {
		b.Next() // many failures do not overflow the step
	}
	assert.Equal(t, time.Hour, b.Next())
	b.Reset()
	assert.Equal(t, s, b.Next(), "Reset starts over")

	eq := agent.EqualJitter(func() float64 { return 0.999 })
	assert.InDelta(t, float64(10*s), float64(eq(10*s)), float64(10*time.Millisecond))
	for range 100 {
		d := agent.EqualJitter(nil)(10 * s)
		assert.GreaterOrEqual(t, d, 5*s)
		assert.Less(t, d, 10*s)
	}
}

func TestSleep(t *testing.T) {
	clock := agenttest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() { done <- agent.Sleep(context.Background(), clock, time.Minute) }()
	require.NoError(t, clock.WaitArmed(context.Background(), clock.Now().Add(time.Minute)))
	clock.Advance(59 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("woke %v before its time", err)
	default:
	}
	clock.Advance(time.Second)
	require.NoError(t, <-done)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- agent.Sleep(ctx, clock, time.Hour) }()
	require.NoError(t, clock.WaitArmed(context.Background(), clock.Now().Add(time.Hour)))
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Empty(t, clock.Pending(), "the timer of an abandoned sleep is stopped")
	assert.ErrorIs(t, agent.Sleep(ctx, clock, 0), context.Canceled, "an ended context does not sleep at all")
}
