package agent_test

import (
	"context"
	"testing"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

// signalOutput reports every write on a channel.
type signalOutput chan bool

func (s signalOutput) Set(on bool) error { s <- on; return nil }

type discardSink struct{}

func (discardSink) Record(context.Context, agent.Event) error { return nil }

// BenchmarkTapToRelay measures a card presented to the controller until the
// relay is energised (the door cycle that relocks it is outside the timer).
func BenchmarkTapToRelay(b *testing.B) {
	relay := make(signalOutput, 16)
	ctl := agent.NewController(agent.ControllerConfig{
		Door:    agent.Door{ID: "front", Mode: agent.ModeCard, LockIDs: []string{agenttest.LockFront}},
		Relay:   relay,
		Decider: &agent.Decider{Cache: agenttest.NewCache(agenttest.Site()), PINKey: agenttest.PINKey()},
		Events:  discardSink{},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); <-ctl.Done() }()
	go func() { _ = ctl.Run(ctx) }()
	<-relay // safe state
	card := agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := ctl.Present(card); err != nil {
			b.Fatal(err)
		}
		if !<-relay {
			b.Fatal("relay switched off instead of on")
		}
		b.StopTimer()
		_ = ctl.SetInput(agent.DoorContact, true)
		_ = ctl.SetInput(agent.DoorContact, false)
		if <-relay {
			b.Fatal("relay did not relock on close")
		}
		b.StartTimer()
	}
}
