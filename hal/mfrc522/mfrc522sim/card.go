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
)

// Card is an ISO/IEC 14443-A card.
type Card struct {
	UID  []byte // 4, 7 or 10 bytes
	SAK  byte   // final SAK: 0x08 MIFARE Classic 1K, 0x00 Ultralight/NTAG…
	ATQA uint16 // 0: derived from the UID size

	arrive, leave time.Time // in the field from arrive until leave (zero: forever)
	state         cardState
	level         int // cascade level being selected, 0-based
	halted        bool
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
// their answers bit by bit. It returns nil for silence, and the index of the
// first bit where answers differ (a collision), or -1.
func (c *Chip) radio(frame []byte, nbits int, now time.Time) ([]bool, int) {
	var answers [][]bool
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
		if a := card.receive(frame, nbits, &c.faults, now); a != nil {
			answers = append(answers, a)
		}
	}
	c.field = kept
	if len(answers) == 0 {
		return nil, -1
	}
	if c.faults.Garbage != nil {
		return bitsOf(c.faults.Garbage, 0, len(c.faults.Garbage)*8), -1
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
	return out, coll
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

// receive runs the card's ISO/IEC 14443-3 state machine on one frame and
// returns its answer bits, or nil for silence.
func (card *Card) receive(frame []byte, nbits int, f *Faults, now time.Time) []bool {
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
