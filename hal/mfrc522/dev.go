// Package mfrc522 drives an NXP MFRC522 (RC522) 13.56 MHz reader over SPI and
// reads ISO/IEC 14443-A card UIDs: 4, 7 and 10 bytes, through cascade levels
// 1–3, with collision resolution when two cards are in the field.
//
// It is written against periph.io/x/conn interfaces only. Unlike periph's
// devices/mfrc522 it works without an IRQ pin, never waits without a bound,
// selects at every cascade level, treats a queued IRQ edge as a hint (the
// interrupt register decides), and reports errors instead of panicking.
//
// Dev is one chip (one exchange at a time); Reader polls it and reports each
// card once per presence.
package mfrc522

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/portier-io/portier/hal/wallclock"
)

// Clock is the time source. Sleep must return early with ctx's error.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// DefaultSPISpeed is the SPI clock: the chip allows 10 MHz, 4 MHz leaves
// margin for jumper wires and costs nothing at our transfer sizes.
const DefaultSPISpeed = 4 * physic.MegaHertz

// DefaultCommandTimeout bounds one chip command. The chip's own timer ends
// every exchange within about 1 ms; this catches a chip that stopped working.
const DefaultCommandTimeout = 20 * time.Millisecond

// Config configures a Dev. Only the port is required.
type Config struct {
	Speed          physic.Frequency // 0: DefaultSPISpeed
	Reset          gpio.PinOut      // NRSTPD, optional: hard reset instead of soft reset
	IRQ            gpio.PinIn       // optional: wait for the IRQ edge instead of sleeping
	CommandTimeout time.Duration    // 0: DefaultCommandTimeout
	Clock          Clock            // nil: system clock
	Logger         *slog.Logger     // nil: discard
}

// Dev is one MFRC522 chip.
type Dev struct {
	conn    spi.Conn
	cfg     Config
	clock   Clock
	log     *slog.Logger
	version byte
	// What the chip's mode registers hold, so an exchange rewrites them only
	// when they change (ISO/IEC 14443-4 frames need the CRC units and, for
	// long frame waiting times, a slower timer).
	presc uint16
	crcOn bool
}

// New connects to the chip on port. It does not talk to it; call Init.
func New(port spi.Port, cfg Config) (*Dev, error) {
	if cfg.Speed == 0 {
		cfg.Speed = DefaultSPISpeed
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	clock := cfg.Clock
	if clock == nil {
		clock = wallclock.Clock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := port.Connect(cfg.Speed, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("mfrc522: connect %s: %w", port, err)
	}
	if cfg.IRQ != nil {
		if err := cfg.IRQ.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			return nil, fmt.Errorf("mfrc522: IRQ pin %s: %w", cfg.IRQ, err)
		}
	}
	return &Dev{conn: c, cfg: cfg, clock: clock, log: log}, nil
}

// String names the device for logs.
func (d *Dev) String() string { return fmt.Sprintf("mfrc522(%s)", d.conn) }

// Version returns the version register read by the last Init.
func (d *Dev) Version() byte { return d.version }

// Clock returns the device's time source (for protocol layers above it
// that must wait, e.g. an ISO/IEC 14443-4 guard time).
func (d *Dev) Clock() Clock { return d.clock }

// ChipName names a version register value.
func ChipName(v byte) string {
	switch v {
	case 0x91:
		return "MFRC522 v1.0"
	case 0x92:
		return "MFRC522 v2.0"
	case 0x88, 0x89:
		return "FM17522 (clone)"
	case 0xB2:
		return "FM17522E (clone)"
	case 0x12:
		return "MFRC522 (counterfeit)"
	case 0x00, 0xFF:
		return "no chip"
	}
	return fmt.Sprintf("unknown chip 0x%02X", v)
}

// ReadVersion reads the version register without resetting anything (for
// diagnostics). 0x00 and 0xFF mean no chip: MISO floating or stuck.
func (d *Dev) ReadVersion() (byte, error) {
	v, err := d.read(regVersion)
	if err != nil {
		return 0, err
	}
	if v == 0x00 || v == 0xFF {
		return v, fmt.Errorf("%w (version register reads 0x%02X: check wiring and chip select)", ErrNoChip, v)
	}
	return v, nil
}

// Init resets the chip, identifies it, checks its CRC unit and switches the
// antenna on. It is safe to call again to recover from any error.
func (d *Dev) Init(ctx context.Context) error {
	if err := d.reset(ctx); err != nil {
		return err
	}
	v, err := d.ReadVersion()
	if err != nil {
		return err
	}
	d.version = v
	d.presc, d.crcOn = timerPrescaler, false
	// Which interrupts reach the IRQ pin is set per command (see start).
	divIEn := byte(0)
	if d.cfg.IRQ != nil {
		divIEn = irqPushPull
	}
	err = d.writes(
		regTMode, timerAuto,
		regTPrescaler, timerPrescaler,
		regTxASK, ask100,
		regMode, crcPreset6363,
		regTxMode, 0x00,
		regRxMode, 0x00,
		regComIEn, 0,
		regDivIEn, divIEn,
		regTxControl, 0x80|antennaOn,
	)
	if err != nil {
		return err
	}
	if err := d.selfTest(ctx); err != nil {
		return err
	}
	d.log.Debug("mfrc522 ready", "chip", ChipName(v))
	return nil
}

func (d *Dev) reset(ctx context.Context) error {
	if d.cfg.Reset != nil {
		if err := d.cfg.Reset.Out(gpio.Low); err != nil {
			return fmt.Errorf("mfrc522: reset pin: %w", err)
		}
		if err := d.clock.Sleep(ctx, time.Millisecond); err != nil {
			return err
		}
		if err := d.cfg.Reset.Out(gpio.High); err != nil {
			return fmt.Errorf("mfrc522: reset pin: %w", err)
		}
	} else if err := d.write(regCommand, cmdSoftReset); err != nil {
		return err
	}
	// The oscillator needs ~40 µs; the reset sequence a little longer. Poll
	// PowerDown rather than sleeping the 50 ms other drivers use.
	deadline := d.clock.Now().Add(50 * time.Millisecond)
	for {
		if err := d.clock.Sleep(ctx, time.Millisecond); err != nil {
			return err
		}
		c, err := d.read(regCommand)
		if err != nil {
			return err
		}
		if c&powerDown == 0 && c != 0xFF {
			return nil
		}
		if d.clock.Now().After(deadline) {
			return fmt.Errorf("%w: still in reset (CommandReg 0x%02X)", ErrNoChip, c)
		}
	}
}

// selfTest runs the CRC coprocessor on HLTA (50 00 → 57 CD): a chip that
// answers the version register but cannot compute this will not read cards.
func (d *Dev) selfTest(ctx context.Context) error {
	err := d.tx([]packet{
		wr(regCommand, cmdIdle),
		wr(regDivIrq, irqCRC), // clear CRCIRq (bit 7 = 0: clear the marked bits)
		wr(regFIFOLevel, flushFIFO),
		wr(regFIFOData, piccHLTA, 0x00),
		wr(regCommand, cmdCalcCRC),
	})
	if err != nil {
		return err
	}
	deadline := d.clock.Now().Add(d.cfg.CommandTimeout)
	for {
		if err := d.clock.Sleep(ctx, 100*time.Microsecond); err != nil {
			return err
		}
		div, err := d.read(regDivIrq)
		if err != nil {
			return err
		}
		if div&irqCRC != 0 {
			break
		}
		if d.clock.Now().After(deadline) {
			return fmt.Errorf("%w: CRC unit", ErrTimeout)
		}
	}
	r := d.reads(regCRCResultL, regCRCResultH)
	if r.err != nil {
		return r.err
	}
	if err := d.write(regCommand, cmdIdle); err != nil {
		return err
	}
	if r.v[0] != 0x57 || r.v[1] != 0xCD {
		return fmt.Errorf("%w: CRC_A(50 00) = %02X %02X, want 57 CD", ErrSelfTest, r.v[0], r.v[1])
	}
	return nil
}

// AntennaOff switches the RF field off (cards in the field lose power).
func (d *Dev) AntennaOff() error { return d.write(regTxControl, 0x80) }

// Card is a selected card.
type Card struct {
	UID  []byte
	ATQA uint16
	SAK  byte // final SAK: 0x08 MIFARE Classic 1K, 0x00 Ultralight/NTAG, 0x20 ISO 14443-4…
	// Detail is what ReaderConfig.Inspect found out about the card; nil
	// without an Inspect.
	Detail any
}

// ISODEP reports whether the card announces ISO/IEC 14443-4 (SAK bit
// 6, 0x20): only then may RATS follow.
func (c Card) ISODEP() bool { return c.SAK&sakISO14443_4 != 0 }

// Request sends REQA (only idle cards answer) or, with wakeHalted, WUPA
// (halted cards answer too) and returns the ATQA. ErrNoCard means silence.
func (d *Dev) Request(ctx context.Context, wakeHalted bool) (uint16, error) {
	cmd := byte(piccREQA)
	if wakeHalted {
		cmd = piccWUPA
	}
	resp, _, err := d.transceive(ctx, []byte{cmd}, 7, 0, 500*time.Microsecond)
	if errors.Is(err, ErrCollision) {
		// Several cards answered with different ATQAs; ISO 14443-3 says
		// the reader carries on with anticollision.
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	atqa, _, err := ParseATQA(resp)
	return atqa, err
}

// Select runs anticollision and SELECT through the cascade levels after a
// successful Request, and returns the selected card. With two cards in the
// field it selects one (the one with a 1 at the first differing UID bit).
func (d *Dev) Select(ctx context.Context, atqa uint16) (Card, error) {
	var levels []level
	for _, sel := range []byte{piccSEL1, piccSEL2, piccSEL3} {
		part, err := d.anticollision(ctx, sel)
		if err != nil {
			return Card{}, err
		}
		bcc := part[0] ^ part[1] ^ part[2] ^ part[3]
		frame := []byte{sel, nvbSelect, part[0], part[1], part[2], part[3], bcc}
		crc := CRCA(frame)
		resp, _, err := d.transceive(ctx, append(frame, crc[0], crc[1]), 0, 0, time.Millisecond)
		if err != nil {
			return Card{}, fmt.Errorf("select level %d: %w", len(levels)+1, err)
		}
		sak, err := ParseSAK(resp)
		if err != nil {
			return Card{}, err
		}
		levels = append(levels, level{part: part, sak: sak})
		if sak&sakCascade == 0 {
			uid, err := assembleUID(levels)
			if err != nil {
				return Card{}, err
			}
			return Card{UID: uid, ATQA: atqa, SAK: sak}, nil
		}
	}
	return Card{}, fmt.Errorf("%w: SAK still announces a cascade after level 3", ErrProtocol)
}

// anticollision learns the 4 UID bytes of one cascade level, resolving
// collisions bit by bit: at each collision it picks the cards with a 1 there.
func (d *Dev) anticollision(ctx context.Context, sel byte) ([4]byte, error) {
	var buf [5]byte // UID part and BCC
	known := 0      // bits of buf known, LSB first
	for range 33 {  // each round learns at least one bit
		nbytes, nbits := known/8, known%8
		frame := []byte{sel, byte((2+nbytes)<<4 | nbits)}
		sent := nbytes
		if nbits > 0 {
			sent++
		}
		frame = append(frame, buf[:sent]...)
		if nbits > 0 {
			frame[len(frame)-1] &= 1<<nbits - 1
		}
		resp, coll, err := d.transceive(ctx, frame, nbits, nbits, time.Millisecond)
		if err != nil && !errors.Is(err, ErrCollision) {
			return [4]byte{}, err
		}
		for i, b := range resp {
			idx := nbytes + i
			if idx >= len(buf) {
				break
			}
			if i == 0 && nbits > 0 {
				b = buf[idx]&(1<<nbits-1) | b&^(1<<nbits-1)
			}
			buf[idx] = b
		}
		if err == nil {
			return ParseAnticollision(buf[:])
		}
		if coll < 0 {
			return [4]byte{}, fmt.Errorf("%w: position unknown", ErrCollision)
		}
		pos := nbytes*8 + coll // absolute index of the colliding bit
		if pos < known || pos >= 32 {
			return [4]byte{}, fmt.Errorf("%w: at bit %d with %d bits known", ErrCollision, pos, known)
		}
		buf[pos/8] = buf[pos/8]&(1<<(pos%8)-1) | 1<<(pos%8) // keep lower bits, choose 1
		known = pos + 1
		if known == 32 {
			buf[4] = buf[0] ^ buf[1] ^ buf[2] ^ buf[3]
			return ParseAnticollision(buf[:])
		}
	}
	return [4]byte{}, fmt.Errorf("%w: no progress", ErrCollision)
}

// HaltCard sends HLTA to the selected card; it answers only to WUPA until it
// leaves the field. Halt success is silence, so it is sent with Transmit and
// no answer is awaited.
func (d *Dev) HaltCard(ctx context.Context) error {
	frame := []byte{piccHLTA, 0x00}
	crc := CRCA(frame)
	const done = irqTx | irqErr
	if err := d.start(cmdTransmit, append(frame, crc[0], crc[1]), 0, 0, time.Millisecond, false, done); err != nil {
		return err
	}
	_, err := d.wait(ctx, done, 400*time.Microsecond, d.cfg.CommandTimeout)
	return err
}

// start loads frame into the FIFO and starts cmd, all in one SPI batch.
// With an IRQ pin, only the interrupts in done reach it: the pin stays
// asserted while any enabled flag is set, so an early flag (TxIRq during a
// Transceive) would swallow the edge of the one we wait for. crc makes the
// chip append CRC_A to the frame and check and strip it on the answer.
func (d *Dev) start(cmd byte, frame []byte, txLastBits, rxAlign int, timeout time.Duration, crc bool, done byte) error {
	presc, ticks := timerFor(timeout)
	framing := byte(rxAlign<<4 | txLastBits)
	ien := byte(0)
	if d.cfg.IRQ != nil {
		ien = irqInv | done
	}
	p := []packet{
		wr(regCommand, cmdIdle),
		wr(regComIEn, ien),
		wr(regComIrq, 0x7F), // clear every interrupt flag
		wr(regFIFOLevel, flushFIFO),
		wr(regFIFOData, frame...),
	}
	if presc != d.presc {
		p = append(p, wr(regTMode, timerAuto|byte(presc>>8)), wr(regTPrescaler, byte(presc)))
		d.presc = presc
	}
	if crc != d.crcOn {
		v := byte(0)
		if crc {
			v = crcEnable
		}
		p = append(p, wr(regTxMode, v), wr(regRxMode, v))
		d.crcOn = crc
	}
	p = append(p,
		wr(regTReloadH, byte(ticks>>8)),
		wr(regTReloadL, byte(ticks)),
		wr(regBitFraming, framing),
		wr(regCommand, cmd),
	)
	if cmd == cmdTransceive {
		p = append(p, wr(regBitFraming, startSend|framing))
	}
	return d.tx(p)
}

// timerFor returns the timer prescaler and reload for a timeout: 25 µs
// ticks up to 1.6 s, a slower prescaler beyond (up to ~39 s).
func timerFor(timeout time.Duration) (presc, reload uint16) {
	presc = timerPrescaler
	ticks := int64(timeout / (timerTick * time.Microsecond))
	if ticks > 0xFFFF {
		// A tick is (2·presc+1) cycles of 13.56 MHz: take the smallest
		// prescaler that counts the timeout in 16 bits.
		cycles := int64(timeout) * 13_560_000 / int64(time.Second)
		n := (cycles + 0xFFFF - 1) / 0xFFFF
		p := min(n/2, 0x0FFF)
		presc = uint16(p)
		ticks = min(cycles/(2*p+1), 0xFFFF)
	}
	return presc, uint16(ticks)
}

// transceive sends frame and returns the answer. coll is the 0-based bit
// position of the first collision, counted from the first bit of the
// answer's first FIFO byte (RxAlign included), or -1.
func (d *Dev) transceive(ctx context.Context, frame []byte, txLastBits, rxAlign int, timeout time.Duration) (resp []byte, coll int, err error) {
	return d.exchange(ctx, frame, txLastBits, rxAlign, timeout, false)
}

// exchange runs one Transceive. The wait is bounded by the radio timeout
// plus CommandTimeout, so a chip that stops working cannot hold it.
func (d *Dev) exchange(ctx context.Context, frame []byte, txLastBits, rxAlign int, timeout time.Duration, crc bool) (resp []byte, coll int, err error) {
	const done = irqRx | irqErr | irqTimer
	if err := d.start(cmdTransceive, frame, txLastBits, rxAlign, timeout, crc, done); err != nil {
		return nil, -1, err
	}
	// A frame of n bits takes ~9.4 µs per bit each way plus ~90 µs turnaround;
	// sleep about that long before the first look.
	first := 100*time.Microsecond + time.Duration(len(frame)*8+40)*9440*time.Nanosecond
	limit := d.cfg.CommandTimeout
	if timeout > time.Millisecond {
		limit += timeout
	}
	irq, err := d.wait(ctx, done, first, limit)
	if err != nil {
		return nil, -1, err
	}
	st := d.reads(regError, regFIFOLevel, regControl, regColl)
	if st.err != nil {
		return nil, -1, st.err
	}
	errReg, level, control, collReg := st.v[0], int(st.v[1]&0x7F), st.v[2], st.v[3]
	if irq&(irqRx|irqErr) == 0 {
		return nil, -1, ErrNoCard // the chip's timer ran out: silence
	}
	switch {
	case errReg&errBufferOvfl != 0:
		return nil, -1, fmt.Errorf("%w: FIFO overflow", ErrProtocol)
	case errReg&(errProtocol|errParity) != 0:
		return nil, -1, fmt.Errorf("%w: ErrorReg 0x%02X", ErrProtocol, errReg)
	case errReg&errCRC != 0:
		return nil, -1, ErrCRC
	}
	if level > 0 {
		fifo := make([]byte, level)
		for i := range fifo {
			fifo[i] = 0x80 | regFIFOData<<1
		}
		r := make([]byte, level+1)
		if err := d.conn.Tx(append(fifo, 0), r); err != nil {
			return nil, -1, fmt.Errorf("%w: read FIFO: %w", ErrSPI, err)
		}
		resp = r[1:]
	}
	if irq&irqRx == 0 {
		return nil, -1, ErrNoCard
	}
	if errReg&errColl != 0 {
		coll = -1
		if collReg&collPosInvalid == 0 {
			coll = int(collReg & 0x1F)
			if coll == 0 {
				coll = 32
			}
			coll-- // CollPos is 1-based
		}
		return resp, coll, ErrCollision
	}
	if control&0x07 != 0 && rxAlign == 0 && len(frame) > 1 {
		// A byte-oriented answer ending mid-byte is a broken frame.
		return nil, -1, fmt.Errorf("%w: %d stray bits", ErrProtocol, control&0x07)
	}
	return resp, -1, nil
}

// wait waits for one of the interrupt bits in mask, first sleeping `first`
// (or waiting for the IRQ edge), then checking every 200 µs, less often
// (up to every millisecond) as a long wait goes on, up to limit. The IRQ
// edge is only a hint: queued or stale edges are harmless because the
// register decides.
func (d *Dev) wait(ctx context.Context, mask byte, first, limit time.Duration) (byte, error) {
	deadline := d.clock.Now().Add(limit)
	step := first
	next := 200 * time.Microsecond
	for {
		if d.cfg.IRQ != nil {
			remaining := deadline.Sub(d.clock.Now())
			if remaining <= 0 {
				remaining = time.Microsecond // positive: gpioioctl treats ≤ 0 badly
			}
			d.cfg.IRQ.WaitForEdge(remaining)
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		} else if err := d.clock.Sleep(ctx, step); err != nil {
			return 0, err
		}
		irq, err := d.read(regComIrq)
		if err != nil {
			return 0, err
		}
		if irq&mask != 0 {
			return irq, nil
		}
		if !d.clock.Now().Before(deadline) {
			return 0, fmt.Errorf("%w (ComIrq 0x%02X)", ErrTimeout, irq)
		}
		step = min(next, deadline.Sub(d.clock.Now()))
		next = min(next*3/2, time.Millisecond)
	}
}

// packet is one register write or read, one chip-select frame.
type packet struct {
	w, r []byte
}

func wr(reg byte, v ...byte) packet {
	return packet{w: append([]byte{reg << 1}, v...)}
}

// tx sends packets in one SPI transfer batch (one ioctl on spidev).
func (d *Dev) tx(ps []packet) error {
	p := make([]spi.Packet, len(ps))
	for i, x := range ps {
		p[i] = spi.Packet{W: x.w, R: x.r}
	}
	if err := d.conn.TxPackets(p); err != nil {
		return fmt.Errorf("%w: %w", ErrSPI, err)
	}
	return nil
}

func (d *Dev) write(reg, v byte) error { return d.tx([]packet{wr(reg, v)}) }

func (d *Dev) writes(pairs ...byte) error {
	ps := make([]packet, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		ps = append(ps, wr(pairs[i], pairs[i+1]))
	}
	return d.tx(ps)
}

func (d *Dev) read(reg byte) (byte, error) {
	r := make([]byte, 2)
	if err := d.conn.Tx([]byte{0x80 | reg<<1, 0}, r); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSPI, err)
	}
	return r[1], nil
}

type readResult struct {
	v   []byte
	err error
}

// reads reads several registers in one burst: each MOSI byte addresses the
// next register while MISO returns the previous one.
func (d *Dev) reads(regs ...byte) readResult {
	w := make([]byte, len(regs)+1)
	for i, reg := range regs {
		w[i] = 0x80 | reg<<1
	}
	r := make([]byte, len(w))
	if err := d.conn.Tx(w, r); err != nil {
		return readResult{err: fmt.Errorf("%w: %w", ErrSPI, err)}
	}
	return readResult{v: r[1:]}
}
