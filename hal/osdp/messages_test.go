package osdp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/hal/osdp"
)

func TestCommandRecords(t *testing.T) {
	grantLED, grantBuz := osdp.FeedbackCommands(osdp.FeedbackGrant)
	denyLED, denyBuz := osdp.FeedbackCommands(osdp.FeedbackDeny)
	pinLED, pinBuz := osdp.FeedbackCommands(osdp.FeedbackAwaitPIN)
	idleLED, idleBuz := osdp.FeedbackCommands(osdp.FeedbackIdle)
	alarmLED, alarmBuz := osdp.FeedbackCommands(osdp.FeedbackAlarm)
	assert.Nil(t, pinBuz)
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		// reader, LED, temp: mode, on, off, on colour, off colour, timer LSB/MSB; perm: mode, on, off, colours
		{"grant LED: steady green until the next pattern", grantLED.Encode(), []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 2, 0}},
		{"deny LED: red flashing 3 s", denyLED.Encode(), []byte{0, 0, 2, 2, 2, 1, 0, 30, 0, 0, 0, 0, 0, 0}},
		{"awaiting PIN: amber blinking, 60 s at most", pinLED.Encode(), []byte{0, 0, 2, 5, 5, 3, 0, 88, 2, 0, 0, 0, 0, 0}},
		{"idle: cancel temporary, steady red", idleLED.Encode(), []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0}},
		{"alarm: red flashing until the next pattern", alarmLED.Encode(), []byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 3, 3, 1, 0}},
		// reader, tone (2 default, 1 off), on, off, count
		{"grant beep", grantBuz.Encode(), []byte{0, 2, 2, 0, 1}},
		{"deny beeps", denyBuz.Encode(), []byte{0, 2, 2, 2, 3}},
		{"idle silences", idleBuz.Encode(), []byte{0, 1, 0, 0, 0}},
		{"alarm pulses until the next pattern", alarmBuz.Encode(), []byte{0, 2, 5, 5, 0}},
		{"buzzer off", osdp.Buzzer{Off: true}.Encode(), []byte{0, 1, 0, 0, 0}},
		{"1 h timer", osdp.LED{TempMode: osdp.LEDTempSet, TempTimer: time.Hour}.Encode()[7:9], []byte{0xA0, 0x8C}},
		{"long timer clamps", osdp.LED{TempMode: osdp.LEDTempSet, TempTimer: 2 * time.Hour}.Encode()[7:9], []byte{0xFF, 0xFF}},
		{"short time rounds up", osdp.Buzzer{OnTime: time.Millisecond}.Encode()[2:3], []byte{1}},
		// output, control code, timer LSB/MSB
		{"output pulse", osdp.Output{Number: 1, Action: osdp.OutputPulseOn, Timer: 5 * time.Second}.Encode(), []byte{1, 5, 50, 0}},
		{"output off", osdp.Output{Action: osdp.OutputOff}.Encode(), []byte{0, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

func TestCardBits(t *testing.T) {
	c := osdp.Card{Bits: 26, Data: []byte{0x80, 0x00, 0x00, 0x40}}
	v, ok := c.Uint64()
	assert.True(t, ok)
	assert.Equal(t, uint64(1<<25|1), v, "first bit is the most significant; the last is bit 26")
	_, ok = osdp.Card{Bits: 65, Data: make([]byte, 9)}.Uint64()
	assert.False(t, ok, "beyond 64 bits")
	_, ok = osdp.Card{Bits: 16, Data: []byte{1}}.Uint64()
	assert.False(t, ok, "fewer bytes than bits")
}

func TestIdentityAndNAKText(t *testing.T) {
	assert.Equal(t, "vendor 00-06-8E model 2 v1 serial 01020304 firmware 1.4.7", hid.String())
	assert.Equal(t, "unexpected sequence number", osdp.NAKSequence.String())
	assert.Equal(t, "NAK(42)", osdp.NAKCode(42).String())
	assert.Equal(t, "wrong_key", osdp.ReasonWrongKey.String())
	rep := osdp.Report{Reader: "front", Addr: 1, Kind: osdp.ReportCard, Card: osdp.Card{Bits: 26, Data: []byte{1, 2, 3, 4}}}
	assert.Equal(t, "osdp front@1: card (26 bits)", rep.String(), "card bits never in logs")
}
