package wiegand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// EdgeSource delivers the edges of D0 and D1 in the order they happened.
// periph's gpioioctl.LineSet (one request holding both lines, falling edges)
// satisfies it: the kernel queues edges of both lines in order, so no bit is
// reordered or lost while the reader goroutine is descheduled. A quiet line
// must surface as an error wrapping os.ErrDeadlineExceeded, as LineSet does.
type EdgeSource interface {
	WaitForEdge(timeout time.Duration) (number int, edge gpio.Edge, err error)
}

// DefaultFrameGap is the silence that closes a frame. Readers send a bit every
// 1–2 ms and keep ≥ 100 ms between frames (per the reference), so 20 ms never
// splits a frame and adds little to tap-to-decision latency.
const DefaultFrameGap = 20 * time.Millisecond

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	D0, D1   int           // line numbers as the EdgeSource reports them
	FrameGap time.Duration // 0: DefaultFrameGap
	Decoder  Decoder
	Logger   *slog.Logger // nil: discard
}

// Reader turns an edge stream into readings.
type Reader struct {
	src EdgeSource
	cfg ReaderConfig
	log *slog.Logger
}

// NewReader returns a reader over src.
func NewReader(src EdgeSource, cfg ReaderConfig) *Reader {
	if cfg.FrameGap <= 0 {
		cfg.FrameGap = DefaultFrameGap
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reader{src: src, cfg: cfg, log: log}
}

// Run reads frames until ctx ends or the source fails. emit is called with
// each reading, or with the error of a rejected frame (ErrParity, ErrLength,
// ErrKey, ErrOverflow), from Run's goroutine. Run returns nil when ctx ends.
func (r *Reader) Run(ctx context.Context, emit func(Reading, error)) error {
	var a Assembler
	for {
		if ctx.Err() != nil {
			return nil
		}
		// Always a positive timeout: gpioioctl treats -1 as "already expired".
		n, edge, err := r.src.WaitForEdge(r.cfg.FrameGap)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if fr, ok := a.Close(); ok {
				r.deliver(fr, emit)
			}
		case err != nil:
			if ctx.Err() != nil { // Halt to unblock us looks like an error
				return nil
			}
			return fmt.Errorf("wiegand: wait for edge: %w", err)
		case edge == gpio.FallingEdge:
			switch n {
			case r.cfg.D0:
				a.Add(false)
			case r.cfg.D1:
				a.Add(true)
			}
		}
	}
}

func (r *Reader) deliver(fr Frame, emit func(Reading, error)) {
	rd, err := r.cfg.Decoder.Decode(fr)
	if err != nil {
		r.log.Debug("wiegand frame rejected", "bits", fr.Bits, "err", err)
	}
	emit(rd, err)
}

// Assembler collects bits of one frame. The zero value is ready.
type Assembler struct {
	fr Frame
}

// Add appends one bit; bits past MaxBits mark the frame as overflowed.
func (a *Assembler) Add(one bool) {
	if a.fr.Bits >= MaxBits {
		a.fr.Bits++ // keep counting so Decode reports the overflow
		return
	}
	a.fr.Raw <<= 1
	if one {
		a.fr.Raw |= 1
	}
	a.fr.Bits++
}

// Close ends the frame and returns it; ok is false when no bit arrived.
// An overflowed frame is returned with its true length so Decode rejects it.
func (a *Assembler) Close() (Frame, bool) {
	fr := a.fr
	*a = Assembler{}
	return fr, fr.Bits > 0
}
