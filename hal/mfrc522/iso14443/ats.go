// Package iso14443 is the ISO/IEC 14443-4 half-duplex block transmission
// protocol (T=CL) on top of a reader that sends and receives raw frames with
// CRC_A: activation (RATS/ATS), I-blocks with chaining in both directions,
// R(ACK)/R(NAK) and S(WTX)/S(DESELECT) blocks, block numbering, frame size
// limits, frame waiting time with waiting-time extensions, and the error
// recovery rules. Every wait and every loop is bounded, so a card that
// misbehaves costs a bounded time and yields an error, never a hang.
//
// It knows nothing about the MFRC522: hal/mfrc522.Dev implements
// Transceiver.
package iso14443

import (
	"errors"
	"fmt"
	"time"
)

// Errors.
var (
	// ErrNoResponse: the card gave no valid answer, after the allowed
	// retransmissions (silence, CRC or framing errors): typically a card
	// pulled out of the field.
	ErrNoResponse = errors.New("iso14443: no valid answer from the card")
	// ErrProtocol: the card answered with a block that breaks the
	// protocol (wrong block number, unexpected block type, endless
	// chaining or waiting-time extensions).
	ErrProtocol = errors.New("iso14443: card broke the block protocol")
	// ErrATS: the answer to RATS is not an ATS.
	ErrATS = errors.New("iso14443: malformed ATS")
)

// fc is the carrier frequency; ISO/IEC 14443 times are counted in 1/fc.
const fc = 13_560_000

// cycles converts a count of 1/fc periods to a duration.
func cycles(n int64) time.Duration { return time.Duration(n * int64(time.Second) / fc) }

// fsTable maps FSCI/FSDI to frame sizes in bytes (CRC included); values 9–C
// are from the 2016 edition, D–F are reserved and read as 8 (256).
var fsTable = [16]int{16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096, 256, 256, 256}

// FrameSize returns the frame size a FSCI or FSDI code announces.
func FrameSize(code byte) int { return fsTable[code&0x0F] }

// fsdiFor returns the largest FSDI whose frame size is at most n.
func fsdiFor(n int) byte {
	var best byte
	for i, s := range fsTable[:13] {
		if s <= n {
			best = byte(i)
		}
	}
	return best
}

// FWT is the frame waiting time for FWI: 256·16/fc · 2^FWI (≈ 302 µs to
// 4.9 s).
func FWT(fwi byte) time.Duration { return cycles(4096 << (fwi & 0x0F)) }

// SFGT is the start-up frame guard time for SFGI, the same scale.
func SFGT(sfgi byte) time.Duration {
	if sfgi == 0 {
		return 0
	}
	return cycles(4096 << (sfgi & 0x0F))
}

// Timing constants (ISO/IEC 14443-4): the PCD adds ΔFWT = 49152/fc to every
// frame waiting time, FWT may not exceed FWI 14 even with a waiting-time
// extension, and the ATS must come within 71680/fc of RATS.
var (
	deltaFWT      = cycles(49152)
	fwtMax        = FWT(14)
	activationFWT = cycles(71680)
)

// ATS is a card's answer to select.
type ATS struct {
	Raw        []byte // TL through the historical bytes, CRC removed
	FSCI       byte   // frame size the card accepts: FrameSize(FSCI)
	TA         byte   // bit rates the card supports (0x00: 106 kbit/s only)
	FWI, SFGI  byte
	CID, NAD   bool // the card supports CID / NAD
	Historical []byte
}

// FSC is the largest frame the card accepts, CRC included.
func (a ATS) FSC() int { return FrameSize(a.FSCI) }

// FWT is the card's frame waiting time.
func (a ATS) FWT() time.Duration { return FWT(a.FWI) }

// ParseATS decodes an ATS (ISO/IEC 14443-4 §5.2): TL, then T0 and the
// interface bytes it announces, then historical bytes. Missing interface
// bytes take their defaults (FSCI 2, FWI 4, SFGI 0, CID supported).
func ParseATS(b []byte) (ATS, error) {
	if len(b) == 0 {
		return ATS{}, fmt.Errorf("%w: empty", ErrATS)
	}
	if int(b[0]) != len(b) {
		return ATS{}, fmt.Errorf("%w: TL says %d bytes, got %d", ErrATS, b[0], len(b))
	}
	a := ATS{Raw: append([]byte(nil), b...), FSCI: 2, FWI: 4, CID: true}
	if len(b) == 1 {
		return a, nil
	}
	t0 := b[1]
	if t0&0x80 != 0 {
		return ATS{}, fmt.Errorf("%w: T0 0x%02X has the reserved bit set", ErrATS, t0)
	}
	a.FSCI = t0 & 0x0F
	i := 2
	next := func(what string) (byte, error) {
		if i >= len(b) {
			return 0, fmt.Errorf("%w: T0 0x%02X announces %s but the ATS ends", ErrATS, t0, what)
		}
		v := b[i]
		i++
		return v, nil
	}
	var err error
	if t0&0x10 != 0 {
		if a.TA, err = next("TA"); err != nil {
			return ATS{}, err
		}
	}
	if t0&0x20 != 0 {
		tb, err := next("TB")
		if err != nil {
			return ATS{}, err
		}
		a.FWI, a.SFGI = tb>>4, tb&0x0F
		if a.FWI == 15 { // reserved: the default
			a.FWI = 4
		}
		if a.SFGI == 15 {
			a.SFGI = 0
		}
	}
	if t0&0x40 != 0 {
		tc, err := next("TC")
		if err != nil {
			return ATS{}, err
		}
		a.CID, a.NAD = tc&0x02 != 0, tc&0x01 != 0
	}
	if i < len(b) {
		a.Historical = append([]byte(nil), b[i:]...)
	}
	return a, nil
}
