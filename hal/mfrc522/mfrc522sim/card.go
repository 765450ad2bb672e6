package mfrc522sim

import (
	"fmt"
	"time"
)

// PowerUp is how long a card needs in the field before it answers
// (ISO/IEC 14443-3 gives a card up to 5 ms after the field appears).
const PowerUp = 5 * time.Millisecond

type cardState uint8

const (
	stateOff cardState = iota // unpowered: field off or just arrived
	stateIdle
	stateReady
	stateActive
	stateHalt
	stateProtocol // ISO/IEC 14443-4 activated (after RATS)
)

// Card is an ISO/IEC 14443-A card.
type Card struct {
	UID  []byte // 4, 7 or 10 bytes
	SAK  byte   // final SAK: 0x08 MIFARE Classic 1K, 0x00 Ultralight/NTAG, 0x20 ISO/IEC 14443-4…
	ATQA uint16 // 0: derived from the UID size
	// App makes the card an ISO/IEC 14443-4 card: it answers RATS with ATS
	// and runs App on every complete command. nil: the card ignores RATS.
	App Application
	// ATS is the answer to RATS, TL through historical bytes (nil:
	// DefaultATS, a DESFire's).
	ATS []byte

	arrive, leave time.Time // in the field from arrive until leave (zero: forever)
	state         cardState
	level         int // cascade level being selected, 0-based
	halted        bool
	picc          picc
}

// Place puts a card in the field now.
func (c *Chip) Place(card Card) error { return c.PlaceAt(card, time.Time{}) }

// PlaceAt puts a card in the field at simulated time at (zero: now).
func (c *Chip) PlaceAt(card Card, at time.Time) error {
	switch len(card.UID) {
	case 4, 7, 10:
	default:
		return fmt.Errorf("mfrc522sim: a UID has 4, 7 or 10 bytes, not %d", len(card.UID))
	}
	if card.UID[0] == 0x88 {
		return fmt.Errorf("mfrc522sim: a UID cannot start with the cascade tag 0x88")
	}
	if card.SAK&0x04 != 0 {
		return fmt.Errorf("mfrc522sim: a final SAK cannot have the cascade bit 0x04")
	}
	if card.App != nil && card.ATS == nil {
		card.ATS = DefaultATS
	}
	if card.App != nil && (len(card.ATS) == 0 || int(card.ATS[0]) != len(card.ATS)) {
		return fmt.Errorf("mfrc522sim: ATS % X: TL must be its length", card.ATS)
	}
	if card.ATQA == 0 {
		card.ATQA = map[int]uint16{4: 0x0004, 7: 0x0044, 10: 0x0084}[len(card.UID)]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.IsZero() {
		at = c.now()
	}
	card.UID = append([]byte(nil), card.UID...)
	card.arrive = at
	c.field = append(c.field, &card)
	return nil
}

// Remove takes every card with that UID out of the field now.
func (c *Chip) Remove(uid []byte) { c.RemoveAt(uid, time.Time{}) }

// RemoveAt takes the card out of the field at simulated time at (zero: now).
func (c *Chip) RemoveAt(uid []byte, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.IsZero() {
		at = c.now()
	}
	for _, card := range c.field {
		if string(card.UID) == string(uid) && (card.leave.IsZero() || card.leave.After(at)) {
			card.leave = at
		}
	}
}

// Clear empties the field.
func (c *Chip) Clear() {
	c.mu.Lock()
	c.field = nil
	c.mu.Unlock()
}

// radio delivers a frame to every powered card in the field and combines
// their answers bit by bit. It returns nil for silence, the index of the
// first bit where answers differ (a collision) or -1, and how long the
// card computes before answering (beyond the frame delay time).
func (c *Chip) radio(frame []byte, nbits int, now time.Time) ([]bool, int, time.Duration) {
	var answers [][]bool
	var busy time.Duration
	kept := c.field[:0]
	for _, card := range c.field {
		if !card.leave.IsZero() && !now.Before(card.leave) {
			continue // gone for good
		}
		kept = append(kept, card)
		if now.Before(card.arrive.Add(PowerUp)) {
			continue
		}
		if card.state == stateOff {
			card.state = stateIdle
		}
		if a, d := card.receive(frame, nbits, &c.faults, now); a != nil {
			answers = append(answers, a)
			busy = max(busy, d)
		}
	}
	c.field = kept
	if len(answers) == 0 {
		return nil, -1, 0
	}
	if c.faults.Garbage != nil {
		return bitsOf(c.faults.Garbage, 0, len(c.faults.Garbage)*8), -1, busy
	}
	out := append([]bool(nil), answers[0]...)
	coll := -1
	for _, a := range answers[1:] {
		for i := range min(len(a), len(out)) {
			if a[i] != out[i] {
				if coll < 0 || i < coll {
					coll = i
				}
				out[i] = out[i] || a[i] // undefined on air; OR is what a scope would suggest
			}
		}
		if len(a) > len(out) {
			out = append(out, a[len(out):]...)
		}
	}
	return out, coll, busy
}

// bitsOf returns bits [from, to) of b, LSB first per byte.
func bitsOf(b []byte, from, to int) []bool {
	out := make([]bool, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, b[i/8]>>(i%8)&1 == 1)
	}
	return out
}

// cascade returns the 5 bytes (UID part and BCC) of cascade level l.
func (card *Card) cascade(l int) []byte {
	var part []byte
	switch {
	case len(card.UID) == 4:
		part = card.UID
	case len(card.UID) == 7 && l == 0:
		part = []byte{0x88, card.UID[0], card.UID[1], card.UID[2]}
	case len(card.UID) == 7:
		part = card.UID[3:7]
	case l == 0:
		part = []byte{0x88, card.UID[0], card.UID[1], card.UID[2]}
	case l == 1:
		part = []byte{0x88, card.UID[3], card.UID[4], card.UID[5]}
	default:
		part = card.UID[6:10]
	}
	return append(append([]byte(nil), part...), part[0]^part[1]^part[2]^part[3])
}

func (card *Card) levels() int { return map[int]int{4: 1, 7: 2, 10: 3}[len(card.UID)] }

// receive runs the card's ISO/IEC 14443-3 state machine (and, once
// activated, its ISO/IEC 14443-4 layer) on one frame and returns its answer
// bits, or nil for silence, and its processing time.
func (card *Card) receive(frame []byte, nbits int, f *Faults, now time.Time) ([]bool, time.Duration) {
	if card.state == stateProtocol {
		if nbits%8 != 0 || len(frame) < 3 || crcA(frame[:len(frame)-2]) != [2]byte{frame[len(frame)-2], frame[len(frame)-1]} {
			return nil, 0 // only valid blocks get an answer
		}
		out, busy := card.block(frame[:len(frame)-2], now)
		if out == nil {
			return nil, 0
		}
		crc := crcA(out)
		return bitsOf(append(out, crc[0], crc[1]), 0, (len(out)+2)*8), busy
	}
	if card.state == stateActive && card.App != nil && nbits == 32 && frame[0] == 0xE0 &&
		crcA(frame[:2]) == [2]byte{frame[2], frame[3]} {
		card.activate(frame[1])
		crc := crcA(card.ATS)
		return bitsOf(append(append([]byte(nil), card.ATS...), crc[0], crc[1]), 0, (len(card.ATS)+2)*8), 0
	}
	return card.receive3(frame, nbits, f, now), 0
}

// receive3 is the ISO/IEC 14443-3 state machine.
func (card *Card) receive3(frame []byte, nbits int, f *Faults, now time.Time) []bool {
	if nbits == 7 && len(frame) == 1 {
		cmd := frame[0] & 0x7F
		wake := cmd == 0x52 && (card.state == stateIdle || card.state == stateHalt)
		req := cmd == 0x26 && card.state == stateIdle
		if !wake && !req {
			if card.state != stateHalt {
				card.state = stateIdle
			}
			return nil
		}
		card.state, card.level = stateReady, 0
		return bitsOf([]byte{byte(card.ATQA), byte(card.ATQA >> 8)}, 0, 16)
	}
	if nbits >= 32 && frame[0] == 0x50 && frame[1] == 0x00 && card.state == stateActive {
		if crcA(frame[:2]) == [2]byte{frame[2], frame[3]} {
			card.state = stateHalt
		}
		return nil
	}
	if card.state != stateReady || len(frame) < 2 {
		if card.state != stateHalt {
			card.state = stateIdle
		}
		return nil
	}
	sel := []byte{0x93, 0x95, 0x97}[card.level]
	if frame[0] != sel {
		card.state = stateIdle
		return nil
	}
	cl := card.cascade(card.level)
	nvb := frame[1]
	if nvb == 0x70 && nbits == 72 {
		if crcA(frame[:7]) != [2]byte{frame[7], frame[8]} {
			return nil // a corrupted frame is ignored
		}
		if string(frame[2:7]) != string(cl) {
			card.state = stateIdle
			return nil
		}
		if f.RemoveOnSelect {
			card.leave = now
			return nil
		}
		sak := card.SAK
		if card.level < card.levels()-1 {
			sak = 0x04
			card.level++
		} else {
			card.state = stateActive
		}
		crc := crcA([]byte{sak})
		if f.CardCRCError {
			crc[0] ^= 0xFF
		}
		return bitsOf([]byte{sak, crc[0], crc[1]}, 0, 24)
	}
	known := int(nvb>>4-2)*8 + int(nvb&0x0F)
	if nvb>>4 < 2 || known > 40 || nbits != 16+known {
		card.state = stateIdle
		return nil
	}
	for i := range known {
		if frame[2+i/8]>>(i%8)&1 != cl[i/8]>>(i%8)&1 {
			return nil // not this card: it stays ready and silent
		}
	}
	return bitsOf(cl, known, 40)
}
