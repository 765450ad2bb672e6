package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/agent"
)

// TestReaderChangeEvent: every installer action on a reader becomes its
// audit event, with the reader's identity, what changed and who asked; a
// failed one becomes reader_setup_failed led by the action.
func TestReaderChangeEvent(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cmd := agent.Command{ID: "local-0123456789abcdef", Actor: "local:uid=1000"}
	known := agent.ReaderHealth{Door: "studio", Connection: "OSDP rs485-0 (/dev/ttyUSB0) address 1",
		Vendor: "0A-0B-0C", Model: "7 v3", Serial: "00001234", Firmware: "1.2.3"}
	silent := agent.ReaderHealth{Door: "studio", Connection: "OSDP rs485-0 (/dev/ttyUSB0) address 1"}
	for _, tc := range []struct {
		name   string
		change agent.ReaderChange
		typ    agent.EventType
		detail string
	}{
		{"installed", agent.ReaderChange{Op: agent.ReaderOpInstall, Reader: known}, agent.EventReaderInstalled,
			"reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: moved from the install key to a key of its own, proven by a new secure session"},
		{"address changed", agent.ReaderChange{Op: agent.ReaderOpSetAddress, Reader: known, Bus: "rs485-0", From: 1, To: 5, Baud: 115200}, agent.EventReaderAddressChanged,
			"reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: moved from address 1 to 5 on bus rs485-0 at 115200 baud"},
		{"output on", agent.ReaderChange{Op: agent.ReaderOpOutput, Reader: known, Output: 1, Action: "on"}, agent.EventReaderOutputTested,
			"reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: output 1 on"},
		{"output off", agent.ReaderChange{Op: agent.ReaderOpOutput, Reader: known, Output: 0, Action: "off"}, agent.EventReaderOutputTested,
			"reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: output 0 off"},
		{"output pulsed", agent.ReaderChange{Op: agent.ReaderOpOutput, Reader: known, Output: 0, Action: "pulse", Pulse: 1500 * time.Millisecond}, agent.EventReaderOutputTested,
			"reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: output 0 pulsed for 1.5s"},
		{"install refused by a reader that never said what it is", agent.ReaderChange{Op: agent.ReaderOpInstall, Reader: silent, Err: errors.New("the reader refused the default install key")}, agent.EventReaderSetupFailed,
			"install: reader at OSDP rs485-0 (/dev/ttyUSB0) address 1: the reader refused the default install key"},
		{"address change failed", agent.ReaderChange{Op: agent.ReaderOpSetAddress, Reader: known, Bus: "rs485-0", From: 1, To: 1, Err: errors.New("at address 1 already")}, agent.EventReaderSetupFailed,
			"set-address to 1: reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: at address 1 already"},
		{"output refused", agent.ReaderChange{Op: agent.ReaderOpOutput, Reader: known, Output: 2, Action: "on", Err: errors.New("it has no output 2")}, agent.EventReaderSetupFailed,
			"output: output 2 on: reader vendor 0A-0B-0C model 7 v3 serial 00001234 firmware 1.2.3 at OSDP rs485-0 (/dev/ttyUSB0) address 1: it has no output 2"},
		{"no reader known", agent.ReaderChange{Op: agent.ReaderOpInstall, Reader: agent.ReaderHealth{Door: "studio"}}, agent.EventReaderInstalled,
			"reader: moved from the install key to a key of its own, proven by a new secure session"},
		{"not an action", agent.ReaderChange{Op: "reset", Reader: silent}, agent.EventReaderSetupFailed,
			"reset: reader at OSDP rs485-0 (/dev/ttyUSB0) address 1: not an action on a reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.change
			c.Command = cmd
			e := c.Event(at)
			assert.Equal(t, agent.Event{Time: at, Type: tc.typ, Door: "studio", Detail: "command local-0123456789abcdef by local:uid=1000: " + tc.detail, CommandID: cmd.ID, Actor: cmd.Actor}, e)
			assert.Contains(t, agent.EventTypes, e.Type)
		})
	}
}

func TestReaderHealthIdentity(t *testing.T) {
	assert.Equal(t, "", agent.ReaderHealth{Door: "studio", Model: "1 v1"}.Identity(), "no osdp_PDID yet")
	assert.Equal(t, "vendor 02-50-54 model 1 v1 serial 0000ABCD firmware 2.2.0",
		agent.ReaderHealth{Vendor: "02-50-54", Model: "1 v1", Serial: "0000ABCD", Firmware: "2.2.0"}.Identity())
}
