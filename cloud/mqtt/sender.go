package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/portier-io/portier/agent"
)

// pendingBatch is how many outbox rows one read fetches.
const pendingBatch = 512

// ackBatch is how many acknowledged events are deleted in one transaction.
const ackBatch = 256

// idlePoll re-reads the outbox when nothing signalled an append, for events
// written by other processes (operator commands).
const idlePoll = time.Second

type flight struct {
	seq  int64
	door string
	tok  paho.Token
}

// send drains the outbox over one session, oldest first, with at most
// InFlight events awaiting their PUBACK. An event is acknowledged in the
// outbox only when its token completed without error on this session: paho
// never reconnects a session (AutoReconnect is off), so a completed token
// means the broker's PUBACK arrived. When the session breaks, the remaining
// events stay in the outbox and the next session sends them again, from the
// oldest, in order (at-least-once; consumers de-duplicate by event_id).
func (l *Link) send(ctx context.Context, s *session) error {
	var (
		after  int64 // highest seq published on this session
		queue  []agent.Event
		window = make([]flight, 0, l.cfg.InFlight)
		acks   = make([]int64, 0, ackBatch)
	)
	flush := func() error {
		if len(acks) == 0 {
			return nil
		}
		// The acks must land even when ctx just ended: they are PUBACKs.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := l.cfg.Outbox.Ack(actx, acks...); err != nil {
			return fmt.Errorf("ack outbox: %w", err)
		}
		acks = acks[:0]
		return nil
	}
	ackTimer := time.NewTimer(l.cfg.AckTimeout)
	defer ackTimer.Stop()
	for {
		if len(queue) == 0 && len(window) < l.cfg.InFlight {
			evs, err := l.cfg.Outbox.Pending(ctx, after, pendingBatch)
			if err != nil {
				if ctx.Err() != nil {
					return flush()
				}
				return fmt.Errorf("read outbox: %w", err)
			}
			queue = evs
		}
		for len(queue) > 0 && len(window) < l.cfg.InFlight {
			e := queue[0]
			queue = queue[1:]
			tok, err := l.publishEvent(s, e)
			if err != nil {
				return err
			}
			window = append(window, flight{seq: e.Seq, door: e.Door, tok: tok})
			after = e.Seq
		}
		if len(window) == 0 {
			if err := flush(); err != nil {
				return err
			}
			idle, stop := l.after(idlePoll)
			select {
			case <-l.cfg.Outbox.Appended():
			case <-idle:
			case <-ctx.Done():
				stop()
				return nil
			}
			stop()
			continue
		}
		head := window[0]
		ackTimer.Reset(l.cfg.AckTimeout)
		select {
		case <-head.tok.Done():
		case <-ackTimer.C:
			ferr := flush()
			return fmt.Errorf("no PUBACK for event seq %d within %s (%v)", head.seq, l.cfg.AckTimeout, ferr)
		case <-ctx.Done():
			return flush()
		}
		if err := head.tok.Error(); err != nil {
			ferr := flush()
			return fmt.Errorf("publish event seq %d: %w (%v)", head.seq, err, ferr)
		}
		window = window[1:]
		acks = append(acks, head.seq)
		l.published.Add(1)
		if head.door != "" {
			select {
			case l.doorKick <- head.door:
			default:
			}
		}
		if len(acks) == cap(acks) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// publishEvent publishes one outbox event at QoS 1, not retained.
func (l *Link) publishEvent(s *session, e agent.Event) (paho.Token, error) {
	p := l.eventPayload(e)
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode event seq %d: %w", e.Seq, err)
	}
	tok := s.client.Publish(l.cfg.Topics.Event(p.Category), 1, false, b)
	if l.cfg.HomeAssistant.Enabled && p.Category == CategoryAccess && p.Door != "" {
		ha, _ := json.Marshal(map[string]any{"event_type": string(e.Type), "reason": e.Reason, "event_id": e.ID, "ts": p.Time})
		s.client.Publish(l.cfg.Topics.HAAccess(p.Door), 0, false, ha)
	}
	return tok, nil
}

// after returns a channel closed once d has passed on the link's clock, and
// a function that cancels the timer.
func (l *Link) after(d time.Duration) (<-chan struct{}, func() bool) {
	c := make(chan struct{})
	t := l.cfg.Clock.AfterFunc(d, func() { close(c) })
	return c, t.Stop
}
