package iso14443

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Transceiver sends and receives raw ISO/IEC 14443-3 type A frames with
// CRC_A computed and checked by the reader (hal/mfrc522.Dev implements it).
type Transceiver interface {
	// TransceiveCRC sends frame with its CRC_A appended and returns the
	// answer with its CRC_A checked and removed, waiting at most timeout
	// (after the frame is sent) for the answer to start. Silence, a
	// corrupt answer and a reader failure are errors.
	TransceiveCRC(ctx context.Context, frame []byte, timeout time.Duration) ([]byte, error)
	// MaxFrame is the largest frame, CRC included, the reader can send and
	// receive in one piece (the MFRC522's FIFO: 64 bytes).
	MaxFrame() int
}

// Clock is the time source: Now for the exchange deadline, Sleep for the
// start-up frame guard time.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Config bounds a link. The zero value is usable.
type Config struct {
	// FSD is the largest frame the reader accepts (CRC included), capped
	// by the transceiver's MaxFrame; 0: MaxFrame.
	FSD int
	// Retries is how many times a block is retransmitted (or an R(NAK)
	// sent) after a timeout or a corrupt answer; 0: 2, as ISO/IEC 14443-4
	// suggests.
	Retries int
	// MaxWTX bounds the waiting-time extensions one block may ask for;
	// 0: 8.
	MaxWTX int
	// MaxExchange bounds one Transmit in total, waiting-time extensions
	// included; 0: 2 s. A card that wants more is dropped.
	MaxExchange time.Duration
	// MaxResponse bounds a chained answer; 0: 4096 bytes.
	MaxResponse int
}

func (c Config) withDefaults(maxFrame int) Config {
	if c.FSD <= 0 || c.FSD > maxFrame {
		c.FSD = maxFrame
	}
	if c.Retries <= 0 {
		c.Retries = 2
	}
	if c.MaxWTX <= 0 {
		c.MaxWTX = 8
	}
	if c.MaxExchange <= 0 {
		c.MaxExchange = 2 * time.Second
	}
	if c.MaxResponse <= 0 {
		c.MaxResponse = 4096
	}
	return c
}

// Link is an activated ISO/IEC 14443-4 card. It is not safe for
// concurrent use.
type Link struct {
	t      Transceiver
	clock  Clock
	cfg    Config
	ats    ATS
	fsc    int // largest frame the card accepts, CRC included
	num    byte
	closed bool
}

// Activate sends RATS to a selected card (ISO/IEC 14443-3 state ACTIVE,
// SAK bit 0x20 set), parses its ATS and waits the start-up frame guard
// time. CID is 0 and never sent; the reader announces FSD.
func Activate(ctx context.Context, t Transceiver, clock Clock, cfg Config) (*Link, error) {
	if t.MaxFrame() < 16 {
		return nil, fmt.Errorf("iso14443: reader frames of %d bytes are too small", t.MaxFrame())
	}
	cfg = cfg.withDefaults(t.MaxFrame())
	rats := []byte{0xE0, fsdiFor(cfg.FSD) << 4}
	resp, err := t.TransceiveCRC(ctx, rats, activationFWT+deltaFWT)
	if err != nil {
		return nil, fmt.Errorf("%w to RATS: %w", ErrNoResponse, err)
	}
	ats, err := ParseATS(resp)
	if err != nil {
		return nil, err
	}
	if err := clock.Sleep(ctx, SFGT(ats.SFGI)); err != nil {
		return nil, err
	}
	// Our frames must fit the card's FSC and the reader's FIFO.
	fsc := min(ats.FSC(), t.MaxFrame())
	return &Link{t: t, clock: clock, cfg: cfg, ats: ats, fsc: fsc}, nil
}

// ATS returns the card's answer to select.
func (l *Link) ATS() ATS { return l.ats }

// ErrClosed: the link was deselected or broke down.
var ErrClosed = errors.New("iso14443: link closed")

// Transmit sends one message (an APDU or a native DESFire command) as
// I-blocks, chained to fit the card's frame size, and returns the card's
// whole answer, following its chaining. Any error closes the link: the
// block numbers are then unknown, so the card must be selected again.
func (l *Link) Transmit(ctx context.Context, msg []byte) ([]byte, error) {
	if l.closed {
		return nil, ErrClosed
	}
	resp, err := l.transmit(ctx, msg)
	if err != nil {
		l.closed = true
	}
	return resp, err
}

func (l *Link) transmit(ctx context.Context, msg []byte) ([]byte, error) {
	deadline := l.clock.Now().Add(l.cfg.MaxExchange)
	room := l.fsc - 3 // PCB and CRC_A
	for {
		chunk := msg[:min(len(msg), room)]
		msg = msg[len(chunk):]
		chained := len(msg) > 0
		blk, err := l.roundTrip(ctx, Block{Type: IBlock, Chaining: chained, Num: l.num, CID: -1, NAD: -1, INF: chunk}, deadline)
		if err != nil {
			return nil, err
		}
		if !chained {
			return l.receive(ctx, blk, deadline)
		}
		// Rule B: an R(ACK) with our block number acknowledges the chunk.
		if blk.Type != RAck || blk.Num != l.num {
			return nil, fmt.Errorf("%w: %s #%d while chaining block #%d", ErrProtocol, blk.Type, blk.Num, l.num)
		}
		l.num ^= 1
	}
}

// receive collects the card's answer, acknowledging its chained blocks.
func (l *Link) receive(ctx context.Context, blk Block, deadline time.Time) ([]byte, error) {
	var resp []byte
	for {
		if blk.Type != IBlock || blk.Num != l.num {
			return nil, fmt.Errorf("%w: %s #%d in answer to I-block #%d", ErrProtocol, blk.Type, blk.Num, l.num)
		}
		l.num ^= 1
		resp = append(resp, blk.INF...)
		if len(resp) > l.cfg.MaxResponse {
			return nil, fmt.Errorf("%w: answer longer than %d bytes", ErrProtocol, l.cfg.MaxResponse)
		}
		if !blk.Chaining {
			return resp, nil
		}
		var err error
		blk, err = l.roundTrip(ctx, Block{Type: RAck, Num: l.num, CID: -1, NAD: -1}, deadline)
		if err != nil {
			return nil, err
		}
	}
}

// roundTrip sends req and returns the card's I- or R-block answer. It
// answers waiting-time extensions and applies the recovery rules: after a
// timeout or a corrupt frame it sends R(NAK) (or repeats an R(ACK) or
// S-block), and it repeats an I-block the card says it did not get.
func (l *Link) roundTrip(ctx context.Context, req Block, deadline time.Time) (Block, error) {
	first := req.Encode()
	send := first
	wait := l.ats.FWT()
	retries, wtx := 0, 0
	var lastErr error
	for {
		if err := ctx.Err(); err != nil {
			return Block{}, err
		}
		left := deadline.Sub(l.clock.Now())
		if left <= 0 {
			return Block{}, fmt.Errorf("%w: exchange longer than %s", ErrProtocol, l.cfg.MaxExchange)
		}
		raw, err := l.t.TransceiveCRC(ctx, send, min(wait+deltaFWT, left))
		var blk Block
		if err == nil {
			blk, err = ParseBlock(raw)
		}
		if err == nil && blk.CID > 0 {
			err = fmt.Errorf("%w: block for CID %d", ErrProtocol, blk.CID)
		}
		if err == nil && blk.Type == RNak {
			err = fmt.Errorf("%w: the card sent R(NAK)", ErrProtocol)
		}
		if err == nil && blk.Type == SDeselect && req.Type != SDeselect {
			err = fmt.Errorf("%w: unexpected S(DESELECT)", ErrProtocol)
		}
		if err != nil {
			if ctx.Err() != nil {
				return Block{}, ctx.Err()
			}
			lastErr = err
			if retries >= l.cfg.Retries {
				if errors.Is(lastErr, ErrProtocol) {
					return Block{}, lastErr
				}
				return Block{}, fmt.Errorf("%w: %w", ErrNoResponse, lastErr)
			}
			retries++
			wait = l.ats.FWT()
			send = first
			if req.Type == IBlock { // rule 4
				send = Block{Type: RNak, Num: l.num, CID: -1, NAD: -1}.Encode()
			}
			continue
		}
		switch {
		case blk.Type == SWTX && req.Type != SDeselect:
			wtx++
			if wtx > l.cfg.MaxWTX {
				return Block{}, fmt.Errorf("%w: more than %d waiting-time extensions", ErrProtocol, l.cfg.MaxWTX)
			}
			send = Block{Type: SWTX, WTXM: blk.WTXM, CID: -1, NAD: -1}.Encode()
			wait = min(l.ats.FWT()*time.Duration(blk.WTXM), fwtMax)
			continue
		case blk.Type == RAck && req.Type == IBlock && blk.Num != l.num:
			// Rule 6: the card did not get our I-block; send it again.
			if retries >= l.cfg.Retries {
				return Block{}, fmt.Errorf("%w: the card keeps asking for block #%d again", ErrProtocol, l.num)
			}
			retries++
			send, wait = first, l.ats.FWT()
			continue
		}
		return blk, nil
	}
}

// Deselect sends S(DESELECT): the card goes to HALT and answers only WUPA
// until it leaves the field. The link is closed either way.
func (l *Link) Deselect(ctx context.Context) error {
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	deadline := l.clock.Now().Add(l.cfg.MaxExchange)
	blk, err := l.roundTrip(ctx, Block{Type: SDeselect, CID: -1, NAD: -1}, deadline)
	if err != nil {
		return err
	}
	if blk.Type != SDeselect {
		return fmt.Errorf("%w: %s in answer to S(DESELECT)", ErrProtocol, blk.Type)
	}
	return nil
}
