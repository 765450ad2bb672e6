package mfrc522sim

import "time"

// Application is what an ISO/IEC 14443-4 card runs (a DESFire model, say):
// each complete command (the INF of an I-block chain) in, the complete
// answer out, with how long the card computes before answering. A nil
// answer means the card left the field in the middle of the command (a card
// pulled away).
type Application interface {
	Process(cmd []byte) (resp []byte, busy time.Duration)
}

// DefaultATS is a MIFARE DESFire EV1/EV2/EV3's answer to select: FSCI 5
// (64-byte frames), TA 0x77, FWI 8 (77 ms), SFGI 1, CID supported, one
// historical byte 0x80.
var DefaultATS = []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}

// picc is the card's side of the ISO/IEC 14443-4 block protocol, written
// from the standard's PICC rules independently of the reader's side
// (hal/mfrc522/iso14443): block number starting at 1 and following the
// reader's I-blocks (rule D), R(ACK) to the reader's chaining, chained
// answers no longer than the reader's FSD, the last block again on an
// R(NAK) or R(ACK) with its own number (rule 10), R(ACK) on an R(NAK) with
// another (rule 11), and S(WTX) while a command takes longer than FWT.
type picc struct {
	fsd     int
	num     byte
	rx      []byte   // command being chained in
	tx      [][]byte // answer blocks still to send
	last    []byte   // last block sent, for retransmission
	pending time.Duration
}

var fsTable = [16]int{16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 256, 256, 256}

// Resetter is an Application with state a real card loses when it is
// (re)activated after leaving the field: an authentication, a selected
// application. Reset is called at each RATS.
type Resetter interface {
	Reset()
}

// activate answers RATS: FSDI in the parameter's high nibble.
func (card *Card) activate(param byte) {
	card.state = stateProtocol
	card.picc = picc{fsd: fsTable[param>>4], num: 1}
	if r, ok := card.App.(Resetter); ok {
		r.Reset()
	}
}

// fwt is the card's frame waiting time from its own ATS.
func (card *Card) fwt() time.Duration {
	fwi := byte(4)
	if len(card.ATS) > 1 && card.ATS[1]&0x20 != 0 {
		i := 2
		if card.ATS[1]&0x10 != 0 {
			i++
		}
		if i < len(card.ATS) {
			fwi = card.ATS[i] >> 4
		}
	}
	return time.Duration(4096<<fwi) * time.Second / 13_560_000
}

// block handles one block (CRC already checked) and returns the answer and
// the time the card takes before sending it. Invalid blocks get no answer.
func (card *Card) block(b []byte, now time.Time) ([]byte, time.Duration) {
	p := &card.picc
	pcb := b[0]
	inf := b[1:]
	if pcb&0x08 != 0 { // CID: only 0 is ours
		if len(inf) == 0 || inf[0]&0x0F != 0 {
			return nil, 0
		}
		inf = inf[1:]
	}
	switch {
	case pcb&0xE2 == 0x02: // I-block
		if pcb&0x04 != 0 { // NAD
			if len(inf) == 0 {
				return nil, 0
			}
			inf = inf[1:]
		}
		p.num = pcb & 1
		p.rx = append(p.rx, inf...)
		if pcb&0x10 != 0 {
			return p.send([]byte{0xA2 | p.num}), 0
		}
		cmd := p.rx
		p.rx = nil
		resp, busy := card.App.Process(cmd)
		if resp == nil {
			card.leave = now // pulled away mid-command
			return nil, 0
		}
		p.tx = nil
		room := max(p.fsd-3, 1)
		for len(resp) > room {
			p.tx = append(p.tx, resp[:room])
			resp = resp[room:]
		}
		p.tx = append(p.tx, resp)
		return card.answerAfter(busy, card.fwt())
	case pcb&0xE6 == 0xA2 && len(inf) == 0: // R-block
		num := pcb & 1
		if num == p.num {
			return p.last, 0
		}
		if pcb&0x10 != 0 { // R(NAK) for a block we never saw
			return p.send([]byte{0xA2 | p.num}), 0
		}
		p.num = num
		return p.next(), 0
	case pcb&0xF7 == 0xF2 && len(inf) == 1: // the reader's S(WTX) answer
		m := inf[0] & 0x3F
		if p.pending <= 0 || m == 0 || m > 59 {
			return nil, 0
		}
		return card.answerAfter(p.pending, min(card.fwt()*time.Duration(m), fwtMax))
	case pcb&0xF7 == 0xC2 && len(inf) == 0: // S(DESELECT)
		card.state = stateHalt
		return []byte{0xC2}, 0
	}
	return nil, 0
}

// fwtMax is the longest frame waiting time, FWI 14, even extended.
var fwtMax = time.Duration(4096<<14) * time.Second / 13_560_000

// answerAfter sends the next answer block after busy, or, when that would
// overrun the time the reader waits (window), an S(WTX) asking for enough
// time, sent halfway through the window.
func (card *Card) answerAfter(busy, window time.Duration) ([]byte, time.Duration) {
	p := &card.picc
	if busy <= window*9/10 {
		p.pending = 0
		return p.next(), busy
	}
	fwt := card.fwt()
	early := window / 2
	p.pending = busy - early
	m := max(min((p.pending*10/9+fwt-1)/fwt, 59), 1)
	return p.send([]byte{0xF2, byte(m)}), early
}

func (p *picc) next() []byte {
	if len(p.tx) == 0 {
		return nil
	}
	inf := p.tx[0]
	p.tx = p.tx[1:]
	pcb := 0x02 | p.num
	if len(p.tx) > 0 {
		pcb |= 0x10
	}
	return p.send(append([]byte{pcb}, inf...))
}

func (p *picc) send(b []byte) []byte {
	p.last = b
	return b
}
