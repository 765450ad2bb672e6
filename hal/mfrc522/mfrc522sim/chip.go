// Package mfrc522sim is a behavioural model of an MFRC522 reader chip and
// ISO/IEC 14443-A cards, behind periph's spi.Port and spi.Conn, for tests,
// benchmarks and simulated boards. It models the SPI framing, the register
// file with Set1/Set2 interrupt semantics, the 64-byte FIFO, the commands
// Idle, CalcCRC, Transmit, Transceive and SoftReset, the chip timer, the IRQ
// pin, the CRC coprocessor, and a card field holding any number of cards with
// 4-, 7- or 10-byte UIDs that answer REQA/WUPA, bit-oriented anticollision
// (with collisions between cards), SELECT at cascade levels 1–3 and HLTA.
// Faults can be injected.
//
// Time is simulated: the chip takes radio and coprocessor time from its
// Clock, and each SPI transfer advances that clock by its wire time.
package mfrc522sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Clock is the simulation's time. Sleep advances simulated time (a
// simtime.Clock does exactly that).
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Registers and bits the model interprets (MFRC522 datasheet §9).
const (
	regCommand    = 0x01
	regComIEn     = 0x02
	regDivIEn     = 0x03
	regComIrq     = 0x04
	regDivIrq     = 0x05
	regError      = 0x06
	regStatus2    = 0x08
	regFIFOData   = 0x09
	regFIFOLevel  = 0x0A
	regControl    = 0x0C
	regBitFraming = 0x0D
	regColl       = 0x0E
	regTxMode     = 0x12
	regRxMode     = 0x13
	regTxControl  = 0x14
	regCRCResultH = 0x21
	regCRCResultL = 0x22
	regTMode      = 0x2A
	regTPrescaler = 0x2B
	regTReloadH   = 0x2C
	regTReloadL   = 0x2D
	regVersion    = 0x37

	cmdIdle       = 0x00
	cmdCalcCRC    = 0x03
	cmdTransmit   = 0x04
	cmdTransceive = 0x0C
	cmdSoftReset  = 0x0F

	irqTx    = 0x40
	irqRx    = 0x20
	irqIdle  = 0x10
	irqErr   = 0x02
	irqTimer = 0x01
	irqCRC   = 0x04

	crcEnable     = 0x80 // TxModeReg.TxCRCEn, RxModeReg.RxCRCEn
	errParity     = 0x02
	errCRC        = 0x04
	errColl       = 0x08
	errBufferOvfl = 0x10

	fifoSize = 64
)

// Faults are injected misbehaviours. The zero value is a healthy chip.
type Faults struct {
	// NoChip: nothing answers on the bus; MISO reads as 0x00, or as 0xFF
	// with MISOHigh (a floating line with a pull-up).
	NoChip, MISOHigh bool
	SPIErrors        int           // the next N transfers fail
	NoIRQ            bool          // the IRQ pin never asserts
	TimerDead        bool          // the chip never ends a Transceive (no answer, no timer)
	CRCDelay         time.Duration // CRC coprocessor time (default 5 µs)
	CardCRCError     bool          // cards' SELECT answers carry a wrong CRC
	ParityError      bool          // every card answer arrives with a parity error
	// RemoveOnSelect makes the card leave the field when it receives its
	// first SELECT (a card pulled away mid-read).
	RemoveOnSelect bool
	// Garbage replaces every card answer with these bytes.
	Garbage []byte
}

// Config configures a Chip.
type Config struct {
	Clock   Clock
	Version byte // version register; 0: 0x92 (MFRC522 v2.0)
	// TransferOverhead is the simulated time of one SPI transfer besides the
	// wire time (syscall and controller set-up); 0: 15 µs.
	TransferOverhead time.Duration
	// OnTransfer, if set, is called for every SPI transfer with its byte
	// count; benchmarks use it to charge a realistic CPU cost.
	OnTransfer func(bytes int)
}

// Exchange is one radio exchange, for assertions.
type Exchange struct {
	At     time.Time
	Tx     []byte
	TxBits int // valid bits of the frame
	Rx     []byte
}

// Chip is the simulated reader chip. It implements spi.Port (Connect it once)
// and spi.Conn.
type Chip struct {
	mu        sync.Mutex
	cfg       Config
	clock     Clock
	regs      [64]byte
	fifo      []byte
	field     []*Card
	pending   []event // what the running command will do, in time order
	faults    Faults
	trace     []Exchange
	edges     int // IRQ edges queued (the kernel's event FIFO)
	irqActive bool
	speed     physic.Frequency
	connected bool
}

type event struct {
	at    time.Time
	apply func()
}

// New returns a powered chip with no card in the field.
func New(cfg Config) *Chip {
	if cfg.Version == 0 {
		cfg.Version = 0x92
	}
	if cfg.TransferOverhead == 0 {
		cfg.TransferOverhead = 15 * time.Microsecond
	}
	c := &Chip{cfg: cfg, clock: cfg.Clock}
	c.reset()
	return c
}

func (c *Chip) reset() {
	c.regs = [64]byte{}
	c.regs[regCommand] = 0x20
	c.regs[regComIEn] = 0x80
	c.regs[regComIrq] = 0x14
	c.regs[regControl] = 0x10
	c.regs[regTxControl] = 0x80
	c.regs[regVersion] = c.cfg.Version
	c.fifo = c.fifo[:0]
	c.pending = nil
	c.setField(false)
	c.updateIRQ()
}

// String implements spi.Port.
func (c *Chip) String() string { return "mfrc522sim" }

// Connect implements spi.Port; like a real port it may be called once.
func (c *Chip) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		return nil, errors.New("mfrc522sim: Connect called twice")
	}
	if mode != spi.Mode0 || bits != 8 {
		return nil, fmt.Errorf("mfrc522sim: the MFRC522 needs SPI mode 0 with 8-bit words, got %s/%d", mode, bits)
	}
	if f > 10*physic.MegaHertz {
		return nil, fmt.Errorf("mfrc522sim: %s is above the chip's 10 MHz", f)
	}
	c.connected, c.speed = true, f
	return c, nil
}

// Duplex implements conn.Conn.
func (c *Chip) Duplex() conn.Duplex { return conn.Full }

// SetFaults replaces the injected faults.
func (c *Chip) SetFaults(f Faults) {
	c.mu.Lock()
	c.faults = f
	c.mu.Unlock()
}

// Trace returns the radio exchanges so far.
func (c *Chip) Trace() []Exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Exchange(nil), c.trace...)
}

// Register returns a register's current value, for assertions.
func (c *Chip) Register(addr byte) byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick()
	return c.regs[addr&0x3F]
}

// Tx implements conn.Conn: the first byte addresses a register (bit 7 set:
// read; each further MOSI byte then names the next register read), the
// following bytes of a write all go to that register.
func (c *Chip) Tx(w, r []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.transfer(len(w)); err != nil {
		return err
	}
	return c.frame(w, r)
}

// TxPackets implements spi.Conn: each packet is one chip-select frame.
func (c *Chip) TxPackets(ps []spi.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range ps {
		n += max(len(p.W), len(p.R))
	}
	if err := c.transfer(n); err != nil {
		return err
	}
	for _, p := range ps {
		if err := c.frame(p.W, p.R); err != nil {
			return err
		}
	}
	return nil
}

// transfer accounts for one SPI transfer: fault, cost, simulated time.
func (c *Chip) transfer(n int) error {
	if !c.connected {
		return errors.New("mfrc522sim: not connected")
	}
	if c.faults.SPIErrors > 0 {
		c.faults.SPIErrors--
		return errors.New("mfrc522sim: injected SPI transfer error")
	}
	if c.cfg.OnTransfer != nil {
		c.cfg.OnTransfer(n)
	}
	wire := time.Duration(n*8) * time.Second / time.Duration(c.speed/physic.Hertz)
	c.advance(c.cfg.TransferOverhead + wire)
	c.tick()
	return nil
}

func (c *Chip) advance(d time.Duration) {
	if c.clock != nil {
		_ = c.clock.Sleep(context.Background(), d)
	}
}

func (c *Chip) now() time.Time {
	if c.clock == nil {
		return time.Time{}
	}
	return c.clock.Now()
}

func (c *Chip) frame(w, r []byte) error {
	if r != nil && len(r) != len(w) {
		return fmt.Errorf("mfrc522sim: full duplex needs len(r) == len(w), got %d and %d", len(r), len(w))
	}
	if len(w) == 0 {
		return errors.New("mfrc522sim: empty frame")
	}
	addr := w[0] >> 1 & 0x3F
	if w[0]&0x01 != 0 {
		return errors.New("mfrc522sim: address byte bit 0 must be 0")
	}
	if c.faults.NoChip {
		for i := range r {
			r[i] = 0
			if c.faults.MISOHigh {
				r[i] = 0xFF
			}
		}
		return nil
	}
	if w[0]&0x80 != 0 {
		for i := 1; i < len(w); i++ {
			v := c.read(addr)
			if r != nil {
				r[i] = v
			}
			addr = w[i] >> 1 & 0x3F
		}
		return nil
	}
	for _, v := range w[1:] {
		c.write(addr, v)
	}
	c.updateIRQ()
	return nil
}

// schedule replaces what the chip is doing: a new command aborts the last.
func (c *Chip) schedule(evs ...event) { c.pending = evs }

// tick applies the pending chip events whose time has come, one by one, so
// each raises its own IRQ edge.
func (c *Chip) tick() {
	for len(c.pending) > 0 && !c.now().Before(c.pending[0].at) {
		e := c.pending[0]
		c.pending = c.pending[1:]
		e.apply()
		c.updateIRQ()
	}
}

func (c *Chip) read(a byte) byte {
	switch a {
	case regFIFOData:
		if len(c.fifo) == 0 {
			return 0
		}
		v := c.fifo[0]
		c.fifo = c.fifo[1:]
		return v
	case regFIFOLevel:
		return byte(len(c.fifo)) | c.regs[regFIFOLevel]&0x80
	}
	return c.regs[a]
}

func (c *Chip) write(a, v byte) {
	switch a {
	case regComIrq, regDivIrq:
		if v&0x80 != 0 {
			c.regs[a] |= v & 0x7F
		} else {
			c.regs[a] &^= v & 0x7F
		}
	case regFIFOData:
		if len(c.fifo) >= fifoSize {
			c.regs[regError] |= errBufferOvfl
			return
		}
		c.fifo = append(c.fifo, v)
	case regFIFOLevel:
		if v&0x80 != 0 {
			c.fifo = c.fifo[:0]
			c.regs[regError] &^= errBufferOvfl
		}
	case regCommand:
		c.command(v)
	case regBitFraming:
		c.regs[a] = v
		if v&0x80 != 0 && c.regs[regCommand]&0x0F == cmdTransceive {
			c.regs[a] &^= 0x80
			c.transmit(true)
		}
	case regTxControl:
		c.regs[a] = v
		c.setField(v&0x03 != 0)
	case regVersion, regStatus2:
		// read-only
	default:
		c.regs[a] = v
	}
}

func (c *Chip) command(v byte) {
	c.regs[regCommand] = v & 0x3F
	switch v & 0x0F {
	case cmdIdle:
		c.pending = nil
	case cmdSoftReset:
		faults, field := c.faults, c.field
		c.reset()
		c.faults, c.field = faults, field
		// The chip reports PowerDown for the first part of the reset.
		c.regs[regCommand] = 0x30
		c.schedule(event{at: c.now().Add(500 * time.Microsecond), apply: func() { c.regs[regCommand] = 0x20 }})
	case cmdCalcCRC:
		data := append([]byte(nil), c.fifo...)
		c.fifo = c.fifo[:0]
		d := c.faults.CRCDelay
		if d == 0 {
			d = 5 * time.Microsecond
		}
		c.schedule(event{at: c.now().Add(d), apply: func() {
			crc := crcA(data)
			c.regs[regCRCResultL], c.regs[regCRCResultH] = crc[0], crc[1]
			c.regs[regDivIrq] |= irqCRC
		}})
	case cmdTransmit:
		c.transmit(false)
	case cmdTransceive:
		// waits for BitFraming.StartSend
	}
}

// bitTime is one bit at 106 kbit/s with its parity overhead folded in.
const bitTime = 9440 * time.Nanosecond

// fdt is the card's frame delay time (≈ 1172/fc for bit 1… ≈ 86 µs).
const fdt = 86 * time.Microsecond

func (c *Chip) transmit(receive bool) {
	frame := append([]byte(nil), c.fifo...)
	c.fifo = c.fifo[:0]
	framing := c.regs[regBitFraming]
	txLast, rxAlign := int(framing&0x07), int(framing>>4&0x07)
	nbits := len(frame) * 8
	if txLast != 0 && len(frame) > 0 {
		nbits = (len(frame)-1)*8 + txLast
	} else if c.regs[regTxMode]&crcEnable != 0 && len(frame) > 0 {
		// TxCRCEn: the chip appends CRC_A on air.
		crc := crcA(frame)
		frame = append(frame, crc[0], crc[1])
		nbits += 16
	}
	c.regs[regError] = c.regs[regError] & errBufferOvfl
	c.regs[regColl] = 0x80
	start := c.now()
	txDone := start.Add(time.Duration(nbits) * bitTime)
	ex := Exchange{At: start, Tx: frame, TxBits: nbits}
	var answer []bool
	coll := -1
	var busy time.Duration
	if c.regs[regTxControl]&0x03 != 0 {
		answer, coll, busy = c.radio(frame, nbits, start)
	}
	if !receive {
		c.trace = append(c.trace, ex)
		c.schedule(event{at: txDone, apply: func() {
			c.regs[regComIrq] |= irqTx | irqIdle
			c.regs[regCommand] = cmdIdle
		}})
		return
	}
	// TxIRq rises when the frame is out, before any answer: a driver that
	// enables it on the IRQ pin for a Transceive sees only that edge.
	sent := event{at: txDone, apply: func() { c.regs[regComIrq] |= irqTx }}
	if answer == nil {
		c.trace = append(c.trace, ex)
		if c.faults.TimerDead || c.regs[regTMode]&0x80 == 0 {
			c.schedule(sent)
			return
		}
		c.schedule(sent, event{at: txDone.Add(c.timerPeriod()), apply: func() { c.regs[regComIrq] |= irqTimer }})
		return
	}
	data, lastBits := pack(answer, rxAlign)
	ex.Rx = data
	c.trace = append(c.trace, ex)
	answerStart := txDone.Add(fdt + busy)
	if c.regs[regTMode]&0x80 != 0 && !c.faults.TimerDead && answerStart.After(txDone.Add(c.timerPeriod())) {
		// The timer ran out before the card started answering: the driver
		// sees TimerIRq and gives up on this exchange.
		c.schedule(sent, event{at: txDone.Add(c.timerPeriod()), apply: func() { c.regs[regComIrq] |= irqTimer }})
		return
	}
	errs := byte(0)
	if c.regs[regRxMode]&crcEnable != 0 && coll < 0 {
		// RxCRCEn: the chip checks CRC_A and keeps it out of the FIFO.
		n := len(data)
		if lastBits != 0 || rxAlign != 0 || n < 2 || crcA(data[:n-2]) != [2]byte{data[n-2], data[n-1]} {
			errs |= errCRC
		} else {
			data = data[:n-2]
		}
	}
	if coll >= 0 {
		errs |= errColl
		pos := rxAlign + coll + 1
		if pos >= 32 {
			pos = 0
		}
		c.regs[regColl] = byte(pos) & 0x1F
	}
	if c.faults.ParityError {
		errs |= errParity
	}
	done := answerStart.Add(time.Duration(len(answer)) * bitTime)
	c.schedule(sent, event{at: done, apply: func() {
		c.fifo = append(c.fifo[:0], data...)
		if len(c.fifo) > fifoSize {
			c.fifo = c.fifo[:fifoSize]
			errs |= errBufferOvfl
		}
		c.regs[regControl] = c.regs[regControl]&^0x07 | byte(lastBits)
		c.regs[regError] |= errs
		irq := byte(irqRx)
		if errs != 0 {
			irq |= irqErr
		}
		c.regs[regComIrq] |= irq
	}})
}

// timerPeriod is TReload+1 ticks of the prescaled 13.56 MHz clock.
func (c *Chip) timerPeriod() time.Duration {
	presc := int(c.regs[regTMode]&0x0F)<<8 | int(c.regs[regTPrescaler])
	reload := int(c.regs[regTReloadH])<<8 | int(c.regs[regTReloadL])
	return time.Duration(float64(reload+1) * float64(2*presc+1) / 13.56e6 * float64(time.Second))
}

// pack turns answer bits (LSB first) into FIFO bytes starting at bit rxAlign
// of the first byte. It returns the bytes and RxLastBits.
func pack(answer []bool, rxAlign int) ([]byte, int) {
	total := rxAlign + len(answer)
	out := make([]byte, (total+7)/8)
	for i, b := range answer {
		if b {
			p := rxAlign + i
			out[p/8] |= 1 << (p % 8)
		}
	}
	return out, total % 8
}

// setField switches the RF field; cards lose power when it goes off.
func (c *Chip) setField(on bool) {
	for _, card := range c.field {
		if !on {
			card.state = stateOff
		}
	}
}

// updateIRQ drives the IRQ pin from ComIrq&ComIEn and DivIrq&DivIEn and
// queues an edge on each inactive→active transition, like the kernel's
// event FIFO does.
func (c *Chip) updateIRQ() {
	active := c.regs[regComIrq]&c.regs[regComIEn]&0x7F != 0 || c.regs[regDivIrq]&c.regs[regDivIEn]&0x7F != 0
	if active && !c.irqActive && !c.faults.NoIRQ {
		c.edges++
	}
	c.irqActive = active
}

// crcA is ISO/IEC 14443-3 CRC_A, computed independently of the driver's.
func crcA(data []byte) [2]byte {
	crc := uint32(0x6363)
	for _, b := range data {
		for i := range 8 {
			bit := (uint32(b) >> i & 1) ^ (crc & 1)
			crc >>= 1
			if bit != 0 {
				crc ^= 0x8408
			}
		}
	}
	return [2]byte{byte(crc), byte(crc >> 8)}
}
