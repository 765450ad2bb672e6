package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/portier-io/portier/agent"
)

// pendingBatch is how many outbox rows one read fetches.
const pendingBatch = 2048

// ackBatch is how many PUBACKed events at most wait before the outbox
// records them (one small write per batch).
const ackBatch = 1024

// idlePoll re-reads the outbox when nothing signalled an append, for events
// written by other processes (operator commands).
const idlePoll = time.Second

// outgoing is one event read from the outbox and encoded for publishing.
type outgoing struct {
	seq     int64
	door    string
	topic   string
	payload []byte
	ha      []haMessage // Home Assistant mirrors (haMirrors)
}

type flight struct {
	seq  int64
	door string
	tok  paho.Token
}

// send drains the outbox over one session, oldest first, with at most
// InFlight events awaiting their PUBACK. An event is acknowledged in the
// outbox only when its token completed without error on this session: paho
// never reconnects a session (AutoReconnect is off), so a completed token
// means the broker's PUBACK arrived. Tokens are taken only at the head of
// the window, so what is acknowledged is always a contiguous prefix of the
// outbox and one watermark records it. When the session breaks, the
// remaining events stay in the outbox and the next session sends them
// again, from the oldest, in order (at-least-once; consumers de-duplicate
// by event_id).
//
// Three goroutines form a pipeline so neither SQLite nor JSON stalls the
// publishing: a reader reads and encodes the next batch, this loop
// publishes and collects PUBACKs, an acker records the watermark.
func (l *Link) send(ctx context.Context, s *session) error {
	rctx, stopReader := context.WithCancel(ctx)
	batches := make(chan []outgoing, 2)
	readErr := make(chan error, 1)
	go func() { readErr <- l.readOutbox(rctx, batches) }()

	acks := make(chan int64, 8)
	ackErr := make(chan error, 1)
	go func() { ackErr <- l.ackOutbox(ctx, acks) }()

	err := l.publishLoop(ctx, s, batches, readErr, acks)
	stopReader()
	close(acks)
	if aerr := <-ackErr; aerr != nil && err == nil {
		err = aerr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (l *Link) publishLoop(ctx context.Context, s *session, batches <-chan []outgoing, readErr <-chan error, acks chan<- int64) error {
	var (
		cur     []outgoing
		window  = make([]flight, 0, l.cfg.InFlight)
		through int64 // the newest PUBACKed seq not yet handed to the acker
		unacked int   // how many PUBACKs that covers
	)
	flush := func() {
		if unacked > 0 {
			acks <- through
			unacked = 0
		}
	}
	defer flush() // PUBACKs already received are acknowledged whatever ends the loop
	ackTimer := time.NewTimer(l.cfg.AckTimeout)
	defer ackTimer.Stop()
	var headSeq int64 = -1
	for {
		for len(cur) > 0 && len(window) < l.cfg.InFlight {
			o := cur[0]
			cur = cur[1:]
			window = append(window, flight{seq: o.seq, door: o.door, tok: s.client.Publish(o.topic, 1, false, o.payload)})
			for _, m := range o.ha {
				s.client.Publish(m.topic, 0, m.retained, m.payload)
			}
		}
		var in <-chan []outgoing
		if len(cur) == 0 {
			in = batches
		}
		var headDone <-chan struct{}
		if len(window) > 0 {
			headDone = window[0].tok.Done()
			if window[0].seq != headSeq {
				headSeq = window[0].seq
				ackTimer.Reset(l.cfg.AckTimeout)
			}
		} else {
			flush()
		}
		select {
		case b := <-in:
			cur = b
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return nil
		case <-ackTimer.C:
			if len(window) > 0 {
				return fmt.Errorf("no PUBACK for event seq %d within %s", window[0].seq, l.cfg.AckTimeout)
			}
		case <-headDone:
			// Take every completed token at the head, in order.
			for len(window) > 0 && isDone(window[0].tok) {
				f := window[0]
				if err := f.tok.Error(); err != nil {
					return fmt.Errorf("publish event seq %d: %w", f.seq, err)
				}
				window = window[1:]
				through = f.seq
				unacked++
				l.published.Add(1)
				if f.door != "" {
					l.markDoor(f.door)
				}
				if unacked == ackBatch {
					flush()
				}
			}
		}
	}
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// readOutbox reads the outbox from the oldest event on, encodes each batch
// and hands it over; when the outbox is empty it waits for an append.
func (l *Link) readOutbox(ctx context.Context, out chan<- []outgoing) error {
	var after int64
	for {
		evs, err := l.cfg.Outbox.Pending(ctx, after, pendingBatch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read outbox: %w", err)
		}
		if len(evs) == 0 {
			idle, stop := l.after(idlePoll)
			select {
			case <-l.cfg.Outbox.Appended():
			case <-idle:
			case <-ctx.Done():
				stop()
				return ctx.Err()
			}
			stop()
			continue
		}
		batch := make([]outgoing, len(evs))
		for i, e := range evs {
			o, err := l.encodeEvent(e)
			if err != nil {
				return err
			}
			batch[i] = o
		}
		after = evs[len(evs)-1].Seq
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ackOutbox records the delivered watermark, batch by batch, until acks is
// closed. The writes run even after ctx ended: they record PUBACKs.
func (l *Link) ackOutbox(ctx context.Context, acks <-chan int64) error {
	var first error
	for through := range acks {
		if first != nil {
			continue // keep draining so the publisher never blocks
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := l.cfg.Outbox.AckThrough(actx, through); err != nil {
			first = fmt.Errorf("ack outbox: %w", err)
		}
		cancel()
	}
	return first
}

// encodeEvent encodes one outbox event for publishing at QoS 1.
func (l *Link) encodeEvent(e agent.Event) (outgoing, error) {
	cat := EventCategory(e.Type)
	topic, ok := l.eventTopics[cat]
	if !ok {
		topic = l.cfg.Topics.Event(cat)
	}
	ha, err := l.haMirrors(e)
	if err != nil {
		return outgoing{}, err
	}
	return outgoing{seq: e.Seq, door: e.Door, topic: topic, payload: l.appendEvent(make([]byte, 0, 512), e, cat), ha: ha}, nil
}

// after returns a channel closed once d has passed on the link's clock, and
// a function that cancels the timer.
func (l *Link) after(d time.Duration) (<-chan struct{}, func() bool) {
	c := make(chan struct{})
	t := l.cfg.Clock.AfterFunc(d, func() { close(c) })
	return c, t.Stop
}
