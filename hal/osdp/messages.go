package osdp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// NAK reason codes (the one data byte of osdp_NAK).
type NAKCode byte

// NAK reasons.
const (
	NAKCheck     NAKCode = 1 // bad CRC or checksum
	NAKLength    NAKCode = 2 // command length error
	NAKUnknown   NAKCode = 3 // command not implemented by the PD
	NAKSequence  NAKCode = 4 // unexpected sequence number (the PD restarted)
	NAKNoSC      NAKCode = 5 // the PD does not support the security block
	NAKSCCond    NAKCode = 6 // secure-channel conditions not met
	NAKBioType   NAKCode = 7
	NAKBioFormat NAKCode = 8
	NAKRecord    NAKCode = 9 // unable to process the command record
)

func (c NAKCode) String() string {
	switch c {
	case NAKCheck:
		return "bad CRC/checksum"
	case NAKLength:
		return "command length error"
	case NAKUnknown:
		return "unknown command"
	case NAKSequence:
		return "unexpected sequence number"
	case NAKNoSC:
		return "secure channel not supported"
	case NAKSCCond:
		return "secure channel conditions not met"
	case NAKBioType:
		return "biometric type not supported"
	case NAKBioFormat:
		return "biometric format not supported"
	case NAKRecord:
		return "unable to process command record"
	}
	return fmt.Sprintf("NAK(%d)", byte(c))
}

// Identity is what a PD reports in osdp_PDID.
type Identity struct {
	Vendor   [3]byte // IEEE OUI of the manufacturer
	Model    byte
	Version  byte
	Serial   uint32
	Firmware [3]byte // major, minor, build
}

// VendorOUI renders the OUI as "AA-BB-CC" (the bytes as sent, first byte first).
func (i Identity) VendorOUI() string {
	return fmt.Sprintf("%02X-%02X-%02X", i.Vendor[0], i.Vendor[1], i.Vendor[2])
}

// FirmwareVersion renders the firmware as "major.minor.build".
func (i Identity) FirmwareVersion() string {
	return fmt.Sprintf("%d.%d.%d", i.Firmware[0], i.Firmware[1], i.Firmware[2])
}

func (i Identity) String() string {
	return fmt.Sprintf("vendor %s model %d v%d serial %08X firmware %s",
		i.VendorOUI(), i.Model, i.Version, i.Serial, i.FirmwareVersion())
}

func parsePDID(d []byte) (Identity, error) {
	var id Identity
	if len(d) != 12 {
		return id, fmt.Errorf("%w: PDID of %d bytes", ErrFrame, len(d))
	}
	copy(id.Vendor[:], d[0:3])
	id.Model, id.Version = d[3], d[4]
	id.Serial = binary.LittleEndian.Uint32(d[5:9])
	copy(id.Firmware[:], d[9:12])
	return id, nil
}

// Capability function codes of osdp_PDCAP.
const (
	CapContactStatus  = 1
	CapOutputs        = 2
	CapCardFormat     = 3
	CapLED            = 4
	CapAudible        = 5
	CapText           = 6
	CapTimeKeeping    = 7
	CapCheckCharacter = 8 // compliance 1: CRC-16 supported; 0: checksum only
	CapSecurity       = 9 // compliance bit 0: AES-128 Secure Channel
	CapRxBuffer       = 10
	CapMaxMessage     = 11
	CapSmartCard      = 12
	CapReaders        = 13
	CapBiometrics     = 14
)

// Capability is one osdp_PDCAP entry.
type Capability struct {
	Function   byte
	Compliance byte
	Items      byte
}

// Capabilities is a PD's capability list.
type Capabilities []Capability

// Get returns the entry for a function code.
func (cs Capabilities) Get(fn byte) (Capability, bool) {
	for _, c := range cs {
		if c.Function == fn {
			return c, true
		}
	}
	return Capability{}, false
}

// SecureChannel reports whether the PD claims AES-128 Secure Channel.
func (cs Capabilities) SecureChannel() bool {
	c, ok := cs.Get(CapSecurity)
	return ok && c.Compliance&0x01 != 0
}

// CRC reports whether the PD accepts CRC-16 (absent entry: assume yes, as
// every v2 reader does).
func (cs Capabilities) CRC() bool {
	c, ok := cs.Get(CapCheckCharacter)
	return !ok || c.Compliance&0x01 != 0
}

func parsePDCAP(d []byte) (Capabilities, error) {
	if len(d)%3 != 0 {
		return nil, fmt.Errorf("%w: PDCAP of %d bytes", ErrFrame, len(d))
	}
	cs := make(Capabilities, 0, len(d)/3)
	for i := 0; i < len(d); i += 3 {
		cs = append(cs, Capability{Function: d[i], Compliance: d[i+1], Items: d[i+2]})
	}
	return cs, nil
}

func parseLSTATR(d []byte) (tamper, power bool, err error) {
	if len(d) != 2 {
		return false, false, fmt.Errorf("%w: LSTATR of %d bytes", ErrFrame, len(d))
	}
	return d[0] != 0, d[1] != 0, nil
}

// CardFormat is the format code of osdp_RAW.
type CardFormat byte

// Raw card formats.
const (
	FormatUnspecified CardFormat = 0 // raw bits, format not specified
	FormatWiegand     CardFormat = 1 // raw Wiegand bits
	// FormatASCII marks an osdp_FMT report (characters, no bits).
	FormatASCII CardFormat = 0xFF
)

// Card is one card read: raw bits (osdp_RAW) or formatted characters
// (osdp_FMT). Bits are MSB first, as received from the card, and are not
// interpreted here: the Wiegand formats live in hal/wiegand.
type Card struct {
	Reader  byte
	Format  CardFormat
	Bits    int    // number of valid bits in Data
	Data    []byte // (Bits+7)/8 bytes, first bit in the MSB of Data[0]
	Text    string // osdp_FMT characters
	Reverse bool   // osdp_FMT: read in reverse direction
}

// Uint64 returns the bits as a number (first bit most significant) when
// there are at most 64 of them, the form hal/wiegand decodes.
func (c Card) Uint64() (uint64, bool) {
	if c.Bits <= 0 || c.Bits > 64 || len(c.Data)*8 < c.Bits {
		return 0, false
	}
	var v uint64
	for i := range c.Bits {
		v <<= 1
		if c.Data[i/8]&(0x80>>(i%8)) != 0 {
			v |= 1
		}
	}
	return v, true
}

func parseRAW(d []byte) (Card, error) {
	if len(d) < 4 {
		return Card{}, fmt.Errorf("%w: RAW of %d bytes", ErrFrame, len(d))
	}
	bits := int(binary.LittleEndian.Uint16(d[2:4]))
	if bits == 0 || (bits+7)/8 != len(d)-4 {
		return Card{}, fmt.Errorf("%w: RAW says %d bits in %d bytes", ErrFrame, bits, len(d)-4)
	}
	return Card{Reader: d[0], Format: CardFormat(d[1]), Bits: bits, Data: append([]byte(nil), d[4:]...)}, nil
}

func parseFMT(d []byte) (Card, error) {
	if len(d) < 3 || int(d[2]) != len(d)-3 {
		return Card{}, fmt.Errorf("%w: FMT of %d bytes", ErrFrame, len(d))
	}
	return Card{Reader: d[0], Format: FormatASCII, Reverse: d[1] != 0, Text: string(d[3:])}, nil
}

// parseKEYPPAD returns the keys as '0'–'9', '*' and '#'. Readers send '*'
// as 0x7F and '#' as 0x0D; some send the ASCII characters.
func parseKEYPPAD(d []byte) (string, error) {
	if len(d) < 2 || int(d[1]) != len(d)-2 {
		return "", fmt.Errorf("%w: KEYPPAD of %d bytes", ErrFrame, len(d))
	}
	var b strings.Builder
	for _, c := range d[2:] {
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			b.WriteByte(c)
		case c == 0x7F:
			b.WriteByte('*')
		case c == 0x0D:
			b.WriteByte('#')
		default:
			return "", fmt.Errorf("%w: keypad code 0x%02X", ErrFrame, c)
		}
	}
	return b.String(), nil
}

func parseCOM(d []byte) (addr byte, baud int, err error) {
	if len(d) != 5 {
		return 0, 0, fmt.Errorf("%w: COM of %d bytes", ErrFrame, len(d))
	}
	return d[0], int(binary.LittleEndian.Uint32(d[1:5])), nil
}

// Color is an LED colour code.
type Color byte

// LED colours.
const (
	Black Color = iota
	Red
	Green
	Amber
	Blue
	Magenta
	Cyan
	White
)

func (c Color) String() string {
	names := []string{"black", "red", "green", "amber", "blue", "magenta", "cyan", "white"}
	if int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("Color(%d)", byte(c))
}

// LEDState is one LED behaviour: OnColor for OnTime, then OffColor for
// OffTime, repeating (OffTime 0: steady OnColor). Times go on the wire in
// 100 ms units.
type LEDState struct {
	OnTime, OffTime   time.Duration
	OnColor, OffColor Color
}

// Temporary LED control codes.
type LEDTempMode byte

// Temporary LED modes.
const (
	LEDTempKeep   LEDTempMode = 0 // leave the temporary state alone
	LEDTempCancel LEDTempMode = 1 // drop the temporary state, show the permanent one
	LEDTempSet    LEDTempMode = 2 // show Temp for TempTimer, then the permanent state
)

// LED is an osdp_LED record for one LED of one reader.
type LED struct {
	Reader, LED byte
	TempMode    LEDTempMode
	Temp        LEDState
	TempTimer   time.Duration
	SetPerm     bool // false: leave the permanent state alone
	Perm        LEDState
}

// ticks converts to 100 ms units, rounding up so a short time is not 0.
func ticks(d time.Duration, limit int) int {
	if d <= 0 {
		return 0
	}
	return min(int((d+99*time.Millisecond)/(100*time.Millisecond)), limit)
}

// Encode returns the 14-byte osdp_LED record.
func (l LED) Encode() []byte {
	perm := byte(0)
	if l.SetPerm {
		perm = 1
	}
	t := ticks(l.TempTimer, 0xFFFF)
	return []byte{
		l.Reader, l.LED,
		byte(l.TempMode), byte(ticks(l.Temp.OnTime, 0xFF)), byte(ticks(l.Temp.OffTime, 0xFF)),
		byte(l.Temp.OnColor), byte(l.Temp.OffColor), byte(t), byte(t >> 8),
		perm, byte(ticks(l.Perm.OnTime, 0xFF)), byte(ticks(l.Perm.OffTime, 0xFF)),
		byte(l.Perm.OnColor), byte(l.Perm.OffColor),
	}
}

// Buzzer is an osdp_BUZ record. Count 0 buzzes until the next command.
type Buzzer struct {
	Reader  byte
	Off     bool // silence the buzzer (tone code 1); otherwise the default tone (2)
	OnTime  time.Duration
	OffTime time.Duration
	Count   byte
}

// Encode returns the 5-byte osdp_BUZ record.
func (b Buzzer) Encode() []byte {
	tone := byte(2)
	if b.Off {
		tone = 1
	}
	return []byte{b.Reader, tone, byte(ticks(b.OnTime, 0xFF)), byte(ticks(b.OffTime, 0xFF)), b.Count}
}

// OutputAction is an osdp_OUT control code.
type OutputAction byte

// Output actions.
const (
	OutputOff      OutputAction = 1 // permanent off, abort a timed operation
	OutputOn       OutputAction = 2 // permanent on, abort a timed operation
	OutputPulseOn  OutputAction = 5 // on for Timer, then back to the permanent state
	OutputPulseOff OutputAction = 6 // off for Timer, then back to the permanent state
)

func (a OutputAction) String() string {
	switch a {
	case OutputOff:
		return "off"
	case OutputOn:
		return "on"
	case OutputPulseOn:
		return "pulse"
	case OutputPulseOff:
		return "pulse_off"
	}
	return fmt.Sprintf("OutputAction(%d)", byte(a))
}

// Output is an osdp_OUT record for one output of a PD.
type Output struct {
	Number byte
	Action OutputAction
	Timer  time.Duration
}

// Encode returns the 4-byte osdp_OUT record.
func (o Output) Encode() []byte {
	t := ticks(o.Timer, 0xFFFF)
	return []byte{o.Number, byte(o.Action), byte(t), byte(t >> 8)}
}

// EncodeOutputs returns the osdp_OUT data of several output records.
func EncodeOutputs(outs []Output) []byte {
	var d []byte
	for _, o := range outs {
		d = append(d, o.Encode()...)
	}
	return d
}

// Outputs returns how many outputs the PD says it has (osdp_PDCAP output
// control: one item per output), 0 when it lists none.
func (cs Capabilities) Outputs() int {
	c, ok := cs.Get(CapOutputs)
	if !ok {
		return 0
	}
	return int(c.Items)
}

// Feedback is a door's state shown on a reader: its LED and buzzer.
type Feedback uint8

// Feedback patterns. Grant and Alarm hold until the next pattern (Idle
// ends them); Deny and AwaitPIN fall back to the permanent state by
// themselves (after 3 s and 60 s), so a reader that misses the next pattern
// does not keep showing them.
const (
	FeedbackIdle     Feedback = iota // steady red, buzzer off: the resting state
	FeedbackGrant                    // steady green, one short beep: the door is unlocked
	FeedbackDeny                     // red flashing for 3 s, three beeps
	FeedbackAwaitPIN                 // amber blinking, no beep: card accepted, type the PIN
	FeedbackAlarm                    // red flashing and the buzzer pulsing: forced or held open
)

// FeedbackCommands returns the LED record and (for patterns that sound or
// silence the buzzer) the buzzer record that show f on reader 0, LED 0.
func FeedbackCommands(f Feedback) (LED, *Buzzer) {
	steady := func(c Color) LEDState { return LEDState{OnTime: 100 * time.Millisecond, OnColor: c} }
	switch f {
	case FeedbackGrant:
		return LED{TempMode: LEDTempCancel, SetPerm: true, Perm: steady(Green)},
			&Buzzer{OnTime: 200 * time.Millisecond, Count: 1}
	case FeedbackDeny:
		return LED{TempMode: LEDTempSet, Temp: LEDState{OnTime: 200 * time.Millisecond, OffTime: 200 * time.Millisecond, OnColor: Red}, TempTimer: 3 * time.Second},
			&Buzzer{OnTime: 200 * time.Millisecond, OffTime: 200 * time.Millisecond, Count: 3}
	case FeedbackAwaitPIN:
		return LED{TempMode: LEDTempSet, Temp: LEDState{OnTime: 500 * time.Millisecond, OffTime: 500 * time.Millisecond, OnColor: Amber}, TempTimer: time.Minute}, nil
	case FeedbackAlarm:
		return LED{TempMode: LEDTempCancel, SetPerm: true, Perm: LEDState{OnTime: 300 * time.Millisecond, OffTime: 300 * time.Millisecond, OnColor: Red}},
			&Buzzer{OnTime: 500 * time.Millisecond, OffTime: 500 * time.Millisecond}
	}
	return LED{TempMode: LEDTempCancel, SetPerm: true, Perm: steady(Red)}, &Buzzer{Off: true}
}
