package iso14443_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/mfrc522/iso14443"
	"github.com/portier-io/portier/hal/simtime"
)

var errSilence = errors.New("test: no answer")

// picc is a card-side model of the block protocol, written from ISO/IEC
// 14443-4 §7.5 (PICC rules C–E, 10, 11), with fault knobs.
type picc struct {
	ats        []byte
	fsd        int
	activated  bool
	num        byte
	rx         []byte
	tx         [][]byte
	last       []byte
	app        func([]byte) []byte
	wtx        int // waiting-time extensions before each answer
	wtxm       byte
	pendingWTX int

	loseAnswers  int  // process, then lose the answer
	loseCommands int  // lose the command unseen
	silent       bool // never answer
	endlessWTX   bool
	endlessChain bool
	wrongNum     bool
	garbage      []byte
	cid          int // ≥ 0: answer with this CID byte

	frames int             // frames received
	waits  []time.Duration // timeouts the reader asked for
	clock  *simtime.Clock
}

func newPICC(app func([]byte) []byte) *picc {
	return &picc{ats: []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}, num: 1, app: app, wtxm: 1, cid: -1}
}

func echo(b []byte) []byte { return append([]byte("re:"), b...) }

func (p *picc) MaxFrame() int { return 64 }

func (p *picc) TransceiveCRC(_ context.Context, frame []byte, timeout time.Duration) ([]byte, error) {
	p.frames++
	p.waits = append(p.waits, timeout)
	if p.clock != nil {
		p.clock.Advance(time.Millisecond)
	}
	if p.silent {
		return nil, errSilence
	}
	if p.loseCommands > 0 {
		p.loseCommands--
		return nil, errSilence
	}
	out := p.handle(frame)
	if out == nil {
		return nil, errSilence
	}
	if p.garbage != nil {
		return p.garbage, nil
	}
	if p.loseAnswers > 0 {
		p.loseAnswers--
		return nil, errSilence
	}
	return out, nil
}

func (p *picc) handle(frame []byte) []byte {
	if !p.activated {
		if len(frame) != 2 || frame[0] != 0xE0 {
			return nil
		}
		p.fsd = iso14443.FrameSize(frame[1] >> 4)
		p.activated = true
		return p.ats
	}
	blk, err := iso14443.ParseBlock(frame)
	if err != nil {
		return nil // ignore invalid blocks
	}
	switch blk.Type {
	case iso14443.IBlock:
		p.num = blk.Num
		p.rx = append(p.rx, blk.INF...)
		if blk.Chaining {
			return p.send(iso14443.Block{Type: iso14443.RAck, Num: p.num, CID: -1, NAD: -1})
		}
		resp := p.app(p.rx)
		p.rx = nil
		p.tx = nil
		room := p.fsd - 3
		for len(resp) > room {
			p.tx = append(p.tx, resp[:room])
			resp = resp[room:]
		}
		p.tx = append(p.tx, resp)
		if p.wtx > 0 || p.endlessWTX {
			p.pendingWTX = p.wtx
			return p.send(iso14443.Block{Type: iso14443.SWTX, WTXM: p.wtxm, CID: -1, NAD: -1})
		}
		return p.next()
	case iso14443.RAck:
		if blk.Num == p.num {
			return p.last
		}
		p.num = blk.Num
		return p.next()
	case iso14443.RNak:
		if blk.Num == p.num {
			return p.last
		}
		return p.send(iso14443.Block{Type: iso14443.RAck, Num: p.num, CID: -1, NAD: -1})
	case iso14443.SWTX:
		p.pendingWTX--
		if p.pendingWTX > 0 || p.endlessWTX {
			return p.send(iso14443.Block{Type: iso14443.SWTX, WTXM: p.wtxm, CID: -1, NAD: -1})
		}
		return p.next()
	case iso14443.SDeselect:
		p.activated = false
		return p.send(iso14443.Block{Type: iso14443.SDeselect, CID: -1, NAD: -1})
	}
	return nil
}

func (p *picc) next() []byte {
	if len(p.tx) == 0 {
		if p.endlessChain {
			p.tx = [][]byte{{0xEE}}
		} else {
			return nil
		}
	}
	inf := p.tx[0]
	p.tx = p.tx[1:]
	num := p.num
	if p.wrongNum {
		num ^= 1
	}
	return p.send(iso14443.Block{Type: iso14443.IBlock, Num: num, Chaining: len(p.tx) > 0 || p.endlessChain, INF: inf, CID: -1, NAD: -1})
}

func (p *picc) send(b iso14443.Block) []byte {
	if p.cid >= 0 {
		b.CID = p.cid
	}
	p.last = b.Encode()
	return p.last
}

func activate(t *testing.T, p *picc, cfg iso14443.Config) (*iso14443.Link, *simtime.Clock) {
	t.Helper()
	clock := simtime.New()
	p.clock = clock
	l, err := iso14443.Activate(context.Background(), p, clock, cfg)
	require.NoError(t, err)
	return l, clock
}

func TestParseATS(t *testing.T) {
	tests := []struct {
		name string
		ats  []byte
		want iso14443.ATS
		err  bool
	}{
		{name: "DESFire EV1/EV2/EV3", ats: []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80},
			want: iso14443.ATS{FSCI: 5, TA: 0x77, FWI: 8, SFGI: 1, CID: true, NAD: false, Historical: []byte{0x80}}},
		{name: "TL only: defaults", ats: []byte{0x01}, want: iso14443.ATS{FSCI: 2, FWI: 4, CID: true}},
		{name: "no interface bytes", ats: []byte{0x02, 0x08}, want: iso14443.ATS{FSCI: 8, FWI: 4, CID: true}},
		{name: "TB only, reserved FWI", ats: []byte{0x03, 0x25, 0xF0}, want: iso14443.ATS{FSCI: 5, FWI: 4, CID: true}},
		{name: "TL disagrees", ats: []byte{0x05, 0x75, 0x77}, err: true},
		{name: "TB announced, missing", ats: []byte{0x03, 0x75, 0x77}, err: true},
		{name: "reserved T0 bit", ats: []byte{0x02, 0x85}, err: true},
		{name: "empty", ats: nil, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := iso14443.ParseATS(tt.ats)
			if tt.err {
				require.ErrorIs(t, err, iso14443.ErrATS)
				return
			}
			require.NoError(t, err)
			tt.want.Raw = tt.ats
			assert.Equal(t, tt.want, got)
		})
	}
	a, _ := iso14443.ParseATS([]byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80})
	assert.Equal(t, 64, a.FSC())
	assert.Equal(t, 77320*time.Microsecond, a.FWT().Truncate(10*time.Microsecond), "FWI 8: 256·16/fc·2^8 ≈ 77.33 ms")
	assert.Equal(t, 302*time.Microsecond, iso14443.FWT(0).Truncate(time.Microsecond))
	assert.Equal(t, 4949*time.Millisecond, iso14443.FWT(14).Truncate(time.Millisecond))
}

func TestBlocks(t *testing.T) {
	tests := []struct {
		raw  []byte
		want iso14443.Block
	}{
		{[]byte{0x02, 0x90, 0x00}, iso14443.Block{Type: iso14443.IBlock, Num: 0, CID: -1, NAD: -1, INF: []byte{0x90, 0x00}}},
		{[]byte{0x13, 0xAA}, iso14443.Block{Type: iso14443.IBlock, Num: 1, Chaining: true, CID: -1, NAD: -1, INF: []byte{0xAA}}},
		{[]byte{0x0A, 0x00, 0x01}, iso14443.Block{Type: iso14443.IBlock, CID: 0, NAD: -1, INF: []byte{0x01}}},
		{[]byte{0x06, 0x12, 0x01}, iso14443.Block{Type: iso14443.IBlock, CID: -1, NAD: 0x12, INF: []byte{0x01}}},
		{[]byte{0xA2}, iso14443.Block{Type: iso14443.RAck, CID: -1, NAD: -1}},
		{[]byte{0xB3}, iso14443.Block{Type: iso14443.RNak, Num: 1, CID: -1, NAD: -1}},
		{[]byte{0xC2}, iso14443.Block{Type: iso14443.SDeselect, CID: -1, NAD: -1}},
		{[]byte{0xF2, 0x3B}, iso14443.Block{Type: iso14443.SWTX, WTXM: 59, CID: -1, NAD: -1}},
	}
	for _, tt := range tests {
		got, err := iso14443.ParseBlock(tt.raw)
		require.NoError(t, err, "% X", tt.raw)
		if tt.want.INF == nil && got.INF != nil && len(got.INF) == 0 {
			got.INF = nil
		}
		assert.Equal(t, tt.want, got, "% X", tt.raw)
		assert.Equal(t, tt.raw, got.Encode(), "round trip % X", tt.raw)
	}
	for _, bad := range [][]byte{nil, {0x00}, {0xA2, 0x00}, {0xF2}, {0xF2, 0x00}, {0xF2, 0x3C}, {0xC2, 0x01}, {0x0A}, {0x06}, {0xE2}} {
		_, err := iso14443.ParseBlock(bad)
		assert.ErrorIs(t, err, iso14443.ErrProtocol, "% X", bad)
	}
}

func TestExchange(t *testing.T) {
	ctx := context.Background()
	p := newPICC(echo)
	l, clock := activate(t, p, iso14443.Config{})
	assert.Equal(t, 64, l.ATS().FSC())
	start := clock.Now()
	resp, err := l.Transmit(ctx, []byte{0x90, 0x60, 0x00, 0x00, 0x00})
	require.NoError(t, err)
	assert.Equal(t, echo([]byte{0x90, 0x60, 0x00, 0x00, 0x00}), resp)
	resp, err = l.Transmit(ctx, []byte{1})
	require.NoError(t, err, "block numbers alternate")
	assert.Equal(t, echo([]byte{1}), resp)
	assert.Equal(t, 2*time.Millisecond, clock.Since(start))
	require.NoError(t, l.Deselect(ctx))
	assert.False(t, p.activated)
	_, err = l.Transmit(ctx, []byte{1})
	assert.ErrorIs(t, err, iso14443.ErrClosed)
}

func TestActivationWaitsSFGT(t *testing.T) {
	p := newPICC(echo)
	p.ats = []byte{0x03, 0x25, 0x8C} // FWI 8, SFGI 12: ~1.2 s guard time
	clock := simtime.New()
	start := clock.Now()
	_, err := iso14443.Activate(context.Background(), p, clock, iso14443.Config{})
	require.NoError(t, err)
	assert.Equal(t, iso14443.SFGT(12), clock.Since(start))
}

func TestChaining(t *testing.T) {
	ctx := context.Background()
	long := bytes.Repeat([]byte{0x42}, 300)
	t.Run("reader chains to the card's frame size", func(t *testing.T) {
		p := newPICC(func(b []byte) []byte { return []byte{byte(len(b)), byte(len(b) >> 8)} })
		p.ats = []byte{0x05, 0x72, 0x80, 0x00, 0x80} // FSCI 2: 32-byte frames
		l, _ := activate(t, p, iso14443.Config{})
		resp, err := l.Transmit(ctx, long)
		require.NoError(t, err)
		assert.Equal(t, []byte{44, 1}, resp, "the card got all 300 bytes")
		assert.Equal(t, 11, p.frames-1, "ceil(300/29) I-blocks")
	})
	t.Run("card chains to the reader's FSD", func(t *testing.T) {
		p := newPICC(func([]byte) []byte { return long })
		l, _ := activate(t, p, iso14443.Config{})
		resp, err := l.Transmit(ctx, []byte{1})
		require.NoError(t, err)
		assert.Equal(t, long, resp)
		assert.Equal(t, 64, p.fsd, "FSD announced from the FIFO size")
		resp, err = l.Transmit(ctx, []byte{2})
		require.NoError(t, err, "numbering still in step")
		assert.Equal(t, long, resp)
	})
}

func TestWaitingTimeExtension(t *testing.T) {
	p := newPICC(echo)
	p.wtx, p.wtxm = 3, 10
	l, _ := activate(t, p, iso14443.Config{})
	resp, err := l.Transmit(context.Background(), []byte{7})
	require.NoError(t, err)
	assert.Equal(t, echo([]byte{7}), resp)
	fwt := l.ATS().FWT()
	require.Len(t, p.waits, 5, "RATS, I-block, 3 × S(WTX)")
	assert.Less(t, p.waits[1], 2*fwt, "plain FWT (+ΔFWT) for the I-block")
	for _, w := range p.waits[2:] {
		assert.Greater(t, w, 10*fwt, "WTXM 10 extends the wait")
		assert.Less(t, w, 11*fwt)
	}

	p = newPICC(echo)
	p.wtx, p.wtxm = 1, 59
	p.ats = []byte{0x03, 0x25, 0xE0} // FWI 14: WTX may not go beyond FWTmax
	l, _ = activate(t, p, iso14443.Config{})
	_, err = l.Transmit(context.Background(), []byte{7})
	require.NoError(t, err)
	assert.Less(t, p.waits[2], iso14443.FWT(14)+10*time.Millisecond, "capped at FWT(14) + ΔFWT")
}

func TestRecovery(t *testing.T) {
	ctx := context.Background()
	t.Run("answer lost: R(NAK) gets it again", func(t *testing.T) {
		p := newPICC(echo)
		l, _ := activate(t, p, iso14443.Config{})
		p.loseAnswers = 1
		resp, err := l.Transmit(ctx, []byte{1})
		require.NoError(t, err)
		assert.Equal(t, echo([]byte{1}), resp)
		resp, err = l.Transmit(ctx, []byte{2})
		require.NoError(t, err)
		assert.Equal(t, echo([]byte{2}), resp)
	})
	t.Run("command lost: the card's R(ACK) asks for it again", func(t *testing.T) {
		p := newPICC(echo)
		l, _ := activate(t, p, iso14443.Config{})
		p.loseCommands = 1
		resp, err := l.Transmit(ctx, []byte{1})
		require.NoError(t, err)
		assert.Equal(t, echo([]byte{1}), resp)
	})
	t.Run("lost in the middle of chaining", func(t *testing.T) {
		p := newPICC(func([]byte) []byte { return bytes.Repeat([]byte{9}, 200) })
		l, _ := activate(t, p, iso14443.Config{})
		p.loseAnswers = 2 // the first block, then its retransmission
		resp, err := l.Transmit(ctx, []byte{1})
		require.NoError(t, err)
		assert.Len(t, resp, 200)
	})
	t.Run("CID 0 in the card's blocks is accepted", func(t *testing.T) {
		p := newPICC(echo)
		l, _ := activate(t, p, iso14443.Config{})
		p.cid = 0
		_, err := l.Transmit(ctx, []byte{1})
		require.NoError(t, err)
	})
}

func TestMisbehavingCards(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		fault  func(*picc)
		err    error
		frames int // at most this many frames after activation
	}{
		{"card pulled away", func(p *picc) { p.silent = true }, iso14443.ErrNoResponse, 3},
		{"endless waiting-time extensions", func(p *picc) { p.endlessWTX = true }, iso14443.ErrProtocol, 10},
		{"endless chaining", func(p *picc) { p.endlessChain = true }, iso14443.ErrProtocol, 4100},
		{"wrong block number", func(p *picc) { p.wrongNum = true }, iso14443.ErrProtocol, 1},
		{"garbage", func(p *picc) { p.garbage = []byte{0xFF, 0xFF} }, iso14443.ErrProtocol, 3},
		{"answers for CID 3", func(p *picc) { p.cid = 3 }, iso14443.ErrProtocol, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPICC(echo)
			l, clock := activate(t, p, iso14443.Config{})
			tt.fault(p)
			before := p.frames
			start := clock.Now()
			_, err := l.Transmit(ctx, []byte{1})
			require.ErrorIs(t, err, tt.err)
			assert.LessOrEqual(t, p.frames-before, tt.frames)
			assert.Less(t, clock.Since(start), 5*time.Second)
			_, err = l.Transmit(ctx, []byte{1})
			assert.ErrorIs(t, err, iso14443.ErrClosed, "a broken link stays closed")
		})
	}
	t.Run("exchange time bound", func(t *testing.T) {
		p := newPICC(echo)
		l, _ := activate(t, p, iso14443.Config{MaxExchange: 3 * time.Millisecond, MaxWTX: 100})
		p.endlessWTX = true
		_, err := l.Transmit(ctx, []byte{1})
		require.ErrorIs(t, err, iso14443.ErrProtocol)
		assert.LessOrEqual(t, p.frames, 6)
	})
	t.Run("slow card: no single wait beyond the exchange bound", func(t *testing.T) {
		p := newPICC(echo)
		p.ats = []byte{0x03, 0x25, 0xE0} // FWI 14: 4.9 s per frame
		l, _ := activate(t, p, iso14443.Config{MaxExchange: time.Second})
		p.silent = true
		_, err := l.Transmit(ctx, []byte{1})
		require.Error(t, err)
		for _, w := range p.waits[1:] {
			assert.LessOrEqual(t, w, time.Second)
		}
	})
	t.Run("no ATS", func(t *testing.T) {
		p := newPICC(echo)
		p.silent = true
		_, err := iso14443.Activate(ctx, p, simtime.New(), iso14443.Config{})
		require.ErrorIs(t, err, iso14443.ErrNoResponse)
	})
	t.Run("cancelled", func(t *testing.T) {
		p := newPICC(echo)
		l, _ := activate(t, p, iso14443.Config{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := l.Transmit(cctx, []byte{1})
		require.ErrorIs(t, err, context.Canceled)
	})
}

// FuzzParseBlock: never panics; what it accepts re-encodes to a block that
// parses the same.
func FuzzParseBlock(f *testing.F) {
	for _, s := range [][]byte{{0x02, 0x90, 0x00}, {0x1B, 0x00, 0x01}, {0xA3}, {0xB2}, {0xC2}, {0xFA, 0x00, 0x01}, {0x06, 0x00}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := iso14443.ParseBlock(b)
		if err != nil {
			return
		}
		again, err := iso14443.ParseBlock(blk.Encode())
		if err != nil {
			t.Fatalf("% X parsed as %+v, which does not parse again: %v", b, blk, err)
		}
		if again.Type != blk.Type || again.Num != blk.Num || again.Chaining != blk.Chaining || !bytes.Equal(again.INF, blk.INF) || again.WTXM != blk.WTXM {
			t.Fatalf("% X: %+v then %+v", b, blk, again)
		}
	})
}

// FuzzParseATS: never panics; an accepted ATS is consistent.
func FuzzParseATS(f *testing.F) {
	f.Add([]byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80})
	f.Add([]byte{0x01})
	f.Add([]byte{0x05, 0x78, 0x80, 0x70, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := iso14443.ParseATS(b)
		if err != nil {
			return
		}
		if int(b[0]) != len(b) || a.FSC() < 16 || a.FWI > 14 || a.SFGI > 14 {
			t.Fatalf("% X accepted as %+v", b, a)
		}
	})
}

// FuzzCardAnswers: a card that answers every frame with arbitrary bytes
// after a valid activation. The link must end with an answer or an error
// after a bounded number of frames.
func FuzzCardAnswers(f *testing.F) {
	f.Add([]byte{0x02, 0x90, 0x00}, uint8(1))
	f.Add([]byte{0xF2, 0x01}, uint8(3))
	f.Add([]byte{0x12, 0x00}, uint8(2))
	f.Add([]byte{0xA3}, uint8(1))
	f.Fuzz(func(t *testing.T, answer []byte, n uint8) {
		a := &arbitrary{answer: answer, every: int(n%4) + 1}
		clock := simtime.New()
		l, err := iso14443.Activate(context.Background(), a, clock, iso14443.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = l.Transmit(context.Background(), []byte{1, 2, 3})
		if a.frames > 64 {
			t.Fatalf("%d frames for one exchange", a.frames)
		}
	})
}

// arbitrary activates properly, then answers every n-th frame with the
// same bytes and stays silent otherwise.
type arbitrary struct {
	answer        []byte
	every, frames int
	activated     bool
}

func (a *arbitrary) MaxFrame() int { return 64 }

func (a *arbitrary) TransceiveCRC(context.Context, []byte, time.Duration) ([]byte, error) {
	if !a.activated {
		a.activated = true
		return []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}, nil
	}
	a.frames++
	if a.frames%a.every != 0 {
		return nil, errSilence
	}
	return append([]byte(nil), a.answer...), nil
}
