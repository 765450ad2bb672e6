package iso14443

import "fmt"

// BlockType is the kind of an ISO/IEC 14443-4 block.
type BlockType uint8

// Block types.
const (
	IBlock    BlockType = iota + 1 // information
	RAck                           // receive ready, acknowledge
	RNak                           // receive ready, not acknowledge
	SDeselect                      // supervisory: deselect
	SWTX                           // supervisory: waiting-time extension
)

func (t BlockType) String() string {
	switch t {
	case IBlock:
		return "I"
	case RAck:
		return "R(ACK)"
	case RNak:
		return "R(NAK)"
	case SDeselect:
		return "S(DESELECT)"
	case SWTX:
		return "S(WTX)"
	}
	return fmt.Sprintf("BlockType(%d)", t)
}

// Block is one decoded block.
type Block struct {
	Type     BlockType
	Chaining bool // I-block: more blocks of this message follow
	Num      byte // I- and R-blocks: block number (0 or 1)
	CID      int  // -1: no CID byte
	NAD      int  // -1: no NAD byte (I-blocks only)
	INF      []byte
	WTXM     byte // S(WTX): the multiplier, 1–59
}

// PCB bits (ISO/IEC 14443-4 §7.1.1).
const (
	pcbI        = 0x02
	pcbR        = 0xA2
	pcbS        = 0xC2
	pcbChaining = 0x10 // I-block
	pcbNAK      = 0x10 // R-block
	pcbCID      = 0x08
	pcbNAD      = 0x04 // I-block
	pcbWTX      = 0x30 // S-block: WTX (00: DESELECT)
)

// ParseBlock decodes a block as a card sends it (CRC already checked and
// removed). Anything that is not a well-formed block is an error: the
// protocol treats it as a transmission error.
func ParseBlock(b []byte) (Block, error) {
	if len(b) == 0 {
		return Block{}, fmt.Errorf("%w: empty block", ErrProtocol)
	}
	pcb := b[0]
	blk := Block{CID: -1, NAD: -1}
	rest := b[1:]
	takeCID := func() error {
		if pcb&pcbCID == 0 {
			return nil
		}
		if len(rest) == 0 {
			return fmt.Errorf("%w: PCB 0x%02X announces a CID byte that is missing", ErrProtocol, pcb)
		}
		blk.CID = int(rest[0] & 0x0F)
		rest = rest[1:]
		return nil
	}
	switch {
	case pcb&0xE2 == pcbI:
		blk.Type = IBlock
		blk.Chaining = pcb&pcbChaining != 0
		blk.Num = pcb & 0x01
		if err := takeCID(); err != nil {
			return Block{}, err
		}
		if pcb&pcbNAD != 0 {
			if len(rest) == 0 {
				return Block{}, fmt.Errorf("%w: PCB 0x%02X announces a NAD byte that is missing", ErrProtocol, pcb)
			}
			blk.NAD = int(rest[0])
			rest = rest[1:]
		}
		blk.INF = append([]byte(nil), rest...)
	case pcb&0xE6 == pcbR:
		blk.Type = RAck
		if pcb&pcbNAK != 0 {
			blk.Type = RNak
		}
		blk.Num = pcb & 0x01
		if err := takeCID(); err != nil {
			return Block{}, err
		}
		if len(rest) != 0 {
			return Block{}, fmt.Errorf("%w: R-block with %d INF bytes", ErrProtocol, len(rest))
		}
	case pcb&0xC7 == pcbS && (pcb&0x30 == 0 || pcb&0x30 == pcbWTX):
		if err := takeCID(); err != nil {
			return Block{}, err
		}
		if pcb&0x30 == 0 {
			blk.Type = SDeselect
			if len(rest) != 0 {
				return Block{}, fmt.Errorf("%w: S(DESELECT) with %d INF bytes", ErrProtocol, len(rest))
			}
			break
		}
		blk.Type = SWTX
		if len(rest) != 1 {
			return Block{}, fmt.Errorf("%w: S(WTX) with %d INF bytes", ErrProtocol, len(rest))
		}
		blk.WTXM = rest[0] & 0x3F
		if blk.WTXM == 0 || blk.WTXM > 59 {
			return Block{}, fmt.Errorf("%w: WTXM %d outside 1–59", ErrProtocol, blk.WTXM)
		}
	default:
		return Block{}, fmt.Errorf("%w: PCB 0x%02X is no block", ErrProtocol, pcb)
	}
	return blk, nil
}

// Encode returns the block's bytes (without CRC). CID and NAD bytes are
// written when set (≥ 0).
func (b Block) Encode() []byte {
	var pcb byte
	var inf []byte
	switch b.Type {
	case IBlock:
		pcb = pcbI | b.Num&1
		if b.Chaining {
			pcb |= pcbChaining
		}
		if b.NAD >= 0 {
			pcb |= pcbNAD
		}
		inf = b.INF
	case RAck, RNak:
		pcb = pcbR | b.Num&1
		if b.Type == RNak {
			pcb |= pcbNAK
		}
	case SDeselect:
		pcb = pcbS
	case SWTX:
		pcb = pcbS | pcbWTX
		inf = []byte{b.WTXM & 0x3F}
	}
	out := []byte{pcb}
	if b.CID >= 0 {
		out[0] |= pcbCID
		out = append(out, byte(b.CID&0x0F))
	}
	if b.Type == IBlock && b.NAD >= 0 {
		out = append(out, byte(b.NAD))
	}
	return append(out, inf...)
}
