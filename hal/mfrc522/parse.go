package mfrc522

import (
	"errors"
	"fmt"
)

// Card and protocol errors: the card or the radio link misbehaved, the chip is
// fine. A reader skips the poll and tries again.
var (
	ErrNoCard    = errors.New("mfrc522: no card")
	ErrCollision = errors.New("mfrc522: unresolved collision")
	ErrCRC       = errors.New("mfrc522: CRC error")
	ErrBCC       = errors.New("mfrc522: UID check byte mismatch")
	ErrProtocol  = errors.New("mfrc522: protocol error")
)

// Chip errors: the reader chip or the bus is not working. A reader re-inits
// the chip with back-off.
var (
	ErrNoChip   = errors.New("mfrc522: no chip answers on the SPI bus")
	ErrTimeout  = errors.New("mfrc522: chip did not finish the command in time")
	ErrSelfTest = errors.New("mfrc522: CRC self-test failed")
	ErrSPI      = errors.New("mfrc522: SPI transfer failed")
)

// CRCA returns the ISO/IEC 14443-3 CRC_A of b, in wire order (low byte
// first).
func CRCA(b []byte) [2]byte {
	crc := uint16(0x6363)
	for _, c := range b {
		c ^= byte(crc)
		c ^= c << 4
		crc = crc>>8 ^ uint16(c)<<8 ^ uint16(c)<<3 ^ uint16(c)>>4
	}
	return [2]byte{byte(crc), byte(crc >> 8)}
}

// ParseATQA reads an ATQA (2 bytes, low byte first) and returns it and the
// UID size it announces (4, 7 or 10 bytes). Cards that misreport are common,
// so the size is only a hint: the cascade tag decides.
func ParseATQA(b []byte) (atqa uint16, uidSize int, err error) {
	if len(b) != 2 {
		return 0, 0, fmt.Errorf("%w: ATQA of %d bytes", ErrProtocol, len(b))
	}
	atqa = uint16(b[0]) | uint16(b[1])<<8
	switch b[0] >> 6 {
	case 0:
		return atqa, 4, nil
	case 1:
		return atqa, 7, nil
	case 2:
		return atqa, 10, nil
	}
	return 0, 0, fmt.Errorf("%w: ATQA %04X announces a reserved UID size", ErrProtocol, atqa)
}

// ParseAnticollision checks one cascade level's UID part: four bytes and
// their check byte (BCC, the XOR of the four).
func ParseAnticollision(b []byte) ([4]byte, error) {
	var uid [4]byte
	if len(b) != 5 {
		return uid, fmt.Errorf("%w: anticollision answer of %d bytes", ErrProtocol, len(b))
	}
	copy(uid[:], b)
	if b[0]^b[1]^b[2]^b[3] != b[4] {
		return uid, fmt.Errorf("%w: % X", ErrBCC, b)
	}
	return uid, nil
}

// ParseSAK checks a SELECT answer: SAK and its CRC_A.
func ParseSAK(b []byte) (byte, error) {
	if len(b) != 3 {
		return 0, fmt.Errorf("%w: SAK answer of %d bytes", ErrProtocol, len(b))
	}
	if crc := CRCA(b[:1]); crc[0] != b[1] || crc[1] != b[2] {
		return 0, fmt.Errorf("%w: SAK % X", ErrCRC, b)
	}
	return b[0], nil
}

// level is one cascade level of a UID: the 4 bytes sent in SELECT and what
// they mean.
type level struct {
	part [4]byte
	sak  byte
}

// assembleUID joins the cascade levels of a selection into the UID. A cascade
// tag must come with SAK's cascade bit and be followed by another level; the
// last level must not have either.
func assembleUID(levels []level) ([]byte, error) {
	if len(levels) == 0 || len(levels) > 3 {
		return nil, fmt.Errorf("%w: %d cascade levels", ErrProtocol, len(levels))
	}
	uid := make([]byte, 0, 10)
	for i, l := range levels {
		last := i == len(levels)-1
		cascaded := l.part[0] == cascadeTag && !last
		if (l.sak&sakCascade != 0) != !last {
			return nil, fmt.Errorf("%w: SAK %02X at cascade level %d", ErrProtocol, l.sak, i+1)
		}
		if !last && !cascaded {
			return nil, fmt.Errorf("%w: no cascade tag at level %d", ErrProtocol, i+1)
		}
		if cascaded {
			uid = append(uid, l.part[1:]...)
		} else {
			uid = append(uid, l.part[:]...)
		}
	}
	return uid, nil
}
