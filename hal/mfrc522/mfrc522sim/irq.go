package mfrc522sim

import (
	"errors"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/pin"
)

// IRQ returns the chip's IRQ pin as a gpio.PinIn. Edges queue like the
// kernel's GPIO event FIFO; WaitForEdge advances simulated time up to the
// next chip event or the timeout.
func (c *Chip) IRQ() gpio.PinIn { return &irqPin{c: c} }

type irqPin struct{ c *Chip }

func (p *irqPin) String() string   { return "mfrc522sim IRQ" }
func (p *irqPin) Name() string     { return "IRQ" }
func (p *irqPin) Number() int      { return -1 }
func (p *irqPin) Function() string { return "In/High" }
func (p *irqPin) Halt() error      { return nil }

func (p *irqPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.FallingEdge && edge != gpio.BothEdges {
		return errors.New("mfrc522sim: the IRQ pin is active low: wait for falling edges")
	}
	p.c.mu.Lock()
	p.c.edges = 0
	p.c.mu.Unlock()
	return nil
}

// Read returns the pin level (IRQ is active low with IRqInv set, which the
// driver does; the model assumes it).
func (p *irqPin) Read() gpio.Level {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	p.c.tick()
	return gpio.Level(!p.c.irqActive)
}

func (p *irqPin) Pull() gpio.Pull        { return gpio.PullUp }
func (p *irqPin) DefaultPull() gpio.Pull { return gpio.PullUp }

func (p *irqPin) WaitForEdge(timeout time.Duration) bool {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if timeout < 0 {
		return false // gpioioctl's behaviour, which the driver must not rely on
	}
	c.tick()
	if c.edges > 0 {
		c.edges--
		return true
	}
	deadline := c.now().Add(timeout)
	for len(c.pending) > 0 && !c.pending[0].at.After(deadline) {
		c.advance(c.pending[0].at.Sub(c.now()))
		c.tick()
		if c.edges > 0 {
			c.edges--
			return true
		}
	}
	c.advance(deadline.Sub(c.now()))
	return false
}

// ResetPin returns the chip's NRSTPD pin: driving it low powers the chip
// down, driving it high again resets it.
func (c *Chip) ResetPin() gpio.PinOut { return &resetPin{c: c} }

type resetPin struct {
	c   *Chip
	low bool
}

func (p *resetPin) String() string   { return "mfrc522sim NRSTPD" }
func (p *resetPin) Name() string     { return "NRSTPD" }
func (p *resetPin) Number() int      { return -1 }
func (p *resetPin) Function() string { return "Out" }
func (p *resetPin) Halt() error      { return nil }

func (p *resetPin) Out(l gpio.Level) error {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if l == gpio.Low {
		p.low = true
		return nil
	}
	if p.low {
		faults, field := c.faults, c.field
		c.reset()
		c.faults, c.field = faults, field
	}
	p.low = false
	return nil
}

func (p *resetPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("mfrc522sim: no PWM on NRSTPD")
}

var (
	_ gpio.PinIn  = (*irqPin)(nil)
	_ gpio.PinOut = (*resetPin)(nil)
	_ pin.Pin     = (*irqPin)(nil)
)
