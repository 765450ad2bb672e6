package osdpsim

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/simtime"
)

type timedByte struct {
	at time.Time
	b  byte
}

// Line is an RS-485 bus in simulated time with PDs on it; it is the CP's
// osdp.Port. Every byte occupies the line for 10 bit times at the baud
// rate: Write returns once the CP's frame has left (Write and Drain in
// one), and Read advances the clock to each reply byte's arrival or to the
// read timeout. Two transmitters at once collide and garble each other.
// One goroutine drives it (the bus's Run); PD controls may be called from
// others.
type Line struct {
	mu       sync.Mutex
	clock    *simtime.Clock
	charTime time.Duration
	pds      []*PD
	rx       osdp.Receiver // what the PDs hear
	toCP     []timedByte   // reply bytes on their way to the CP, in time order
	timeout  time.Duration
	rts      []bool
	closed   bool
}

// NewLine returns a line at baud with the given readers on it.
func NewLine(clock *simtime.Clock, baud int, pds ...*PD) *Line {
	l := &Line{
		clock: clock, charTime: time.Duration(10 * int64(time.Second) / int64(baud)),
		pds: pds, timeout: time.Second,
	}
	l.rx.InterChar = osdp.DefaultInterChar
	return l
}

// CharTime is the time one byte takes on this line.
func (l *Line) CharTime() time.Duration { return l.charTime }

// Write transmits p from the CP.
func (l *Line) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	t0 := l.clock.Now()
	end := t0.Add(time.Duration(len(p)) * l.charTime)
	// A PD still talking while the CP transmits: both are lost.
	collided := false
	for i := range l.toCP {
		if l.toCP[i].at.After(t0) && !l.toCP[i].at.After(end.Add(l.charTime)) {
			l.toCP[i].b ^= 0xA5
			collided = true
		}
	}
	for i, c := range p {
		at := t0.Add(time.Duration(i+1) * l.charTime)
		if collided {
			c ^= 0xA5
		}
		if frame := l.rx.Push(c, at); frame != nil {
			l.dispatch(frame, at)
		}
	}
	l.mu.Unlock()
	l.clock.AdvanceTo(end)
	return len(p), nil
}

// dispatch lets every PD see a frame; l.mu is held.
func (l *Line) dispatch(frame []byte, at time.Time) {
	for _, pd := range l.pds {
		r, ok := pd.handle(frame, at)
		if !ok || r.bytes == nil {
			continue
		}
		start := at.Add(r.delay)
		for j, c := range r.bytes {
			l.schedule(timedByte{at: start.Add(time.Duration(j+1) * l.charTime), b: c})
		}
	}
}

// schedule queues a byte for the CP; a byte overlapping another
// transmitter's byte garbles both.
func (l *Line) schedule(tb timedByte) {
	i, _ := slices.BinarySearchFunc(l.toCP, tb.at, func(e timedByte, t time.Time) int { return e.at.Compare(t) })
	for _, k := range []int{i - 1, i} {
		if k >= 0 && k < len(l.toCP) {
			if d := l.toCP[k].at.Sub(tb.at); d < l.charTime && d > -l.charTime {
				l.toCP[k].b ^= 0x3C
				tb.b ^= 0xC3
			}
		}
	}
	l.toCP = slices.Insert(l.toCP, i, tb)
}

// Read returns the reply bytes that reached the CP, waiting (in simulated
// time) up to the read timeout for the first.
func (l *Line) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	now := l.clock.Now()
	if len(l.toCP) == 0 || l.toCP[0].at.After(now.Add(l.timeout)) {
		l.mu.Unlock()
		l.clock.AdvanceTo(now.Add(l.timeout))
		return 0, nil
	}
	if l.toCP[0].at.After(now) {
		now = l.toCP[0].at
	}
	n := 0
	for n < len(p) && n < len(l.toCP) && !l.toCP[n].at.After(now) {
		p[n] = l.toCP[n].b
		n++
	}
	l.toCP = l.toCP[n:]
	l.mu.Unlock()
	l.clock.AdvanceTo(now)
	return n, nil
}

// SetReadTimeout sets how long Read waits for a first byte.
func (l *Line) SetReadTimeout(d time.Duration) error {
	if d < 0 {
		return errors.New("osdpsim: negative read timeout")
	}
	l.mu.Lock()
	l.timeout = d
	l.mu.Unlock()
	return nil
}

// ResetInputBuffer drops bytes that already reached the CP.
func (l *Line) ResetInputBuffer() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	i := 0
	for i < len(l.toCP) && !l.toCP[i].at.After(now) {
		i++
	}
	l.toCP = l.toCP[i:]
	return nil
}

// Drain returns at once: Write already took the frame's wire time.
func (l *Line) Drain() error { return nil }

// SetRTS records the RTS line, for direction-control tests.
func (l *Line) SetRTS(on bool) error {
	l.mu.Lock()
	l.rts = append(l.rts, on)
	l.mu.Unlock()
	return nil
}

// RTS returns the RTS levels set so far.
func (l *Line) RTS() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.rts...)
}

// Close makes further reads and writes fail.
func (l *Line) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

// Serve answers the PDs' part on a real byte stream (a pty master, a pipe)
// until rw fails; close rw to end it. Received bytes are framed with the
// 20 ms inter-character timeout, and each reply is written when it would
// have finished arriving on a real line: after the command's wire time, the
// reader's processing delay and the reply's own wire time at baud. Once ctx
// ends the readers fall silent but Serve keeps reading until rw is closed,
// so a CP still writing (and draining) is never blocked by the simulator.
// It returns nil when rw fails after ctx ended.
func Serve(ctx context.Context, rw io.ReadWriter, baud int, clock Clock, pds ...*PD) error {
	charTime := time.Duration(10 * int64(time.Second) / int64(baud))
	rx := osdp.Receiver{InterChar: osdp.DefaultInterChar}
	buf := make([]byte, 256)
	for {
		n, err := rw.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			continue
		}
		now := clock.Now()
		for _, c := range buf[:n] {
			frame := rx.Push(c, now)
			if frame == nil {
				continue
			}
			wire := time.Duration(len(frame)) * charTime
			for _, pd := range pds {
				r, ok := pd.handle(frame, now.Add(wire))
				if !ok || r.bytes == nil {
					continue
				}
				if clock.Sleep(ctx, wire+r.delay+time.Duration(len(r.bytes))*charTime) != nil {
					break
				}
				if _, err := rw.Write(r.bytes); err != nil {
					if ctx.Err() != nil {
						break
					}
					return err
				}
			}
		}
	}
}
