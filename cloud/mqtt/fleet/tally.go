package fleet

import (
	"fmt"
	"sort"
	"sync"
)

// Tally is what a fleet consumer saw: every event once by id, the
// duplicates delivery at least once brings, and per gateway whether events
// arrived in seq order. It is safe for concurrent use.
//
// Order is judged where the gateway answers for it. A queue that gives
// messages back after its consumer's connection broke (a RabbitMQ quorum
// queue returns them in no particular order, rabbitmq-server#6804 and
// #14386) can put an event behind a later one although the gateway
// published them in order; such an event is counted as Requeued. An event
// that arrives after a later one on the same consumer connection, neither
// of them a redelivery, is OutOfOrder: the gateway or the broker's publish
// path broke the order.
type Tally struct {
	mu         sync.Mutex
	gateways   map[string]*gatewayTally
	received   int
	duplicates int
	outOfOrder int
	requeued   int
	conflicts  []string
	reordered  []string
}

type gatewayTally struct {
	seqs    map[string]int64 // event id → seq
	maxSeq  int64
	maxConn int // the consumer connection the event with maxSeq came on
}

// Delivery is one event as the consumer received it.
type Delivery struct {
	Gateway, ID string
	Seq         int64
	Conn        int  // which consumer connection (counted from 0) received it
	Redelivered bool // the queue had delivered it before
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{gateways: map[string]*gatewayTally{}} }

// Add records one received event and reports whether it is new. The same id
// with another seq is a conflict, which a correct gateway never produces.
func (t *Tally) Add(d Delivery) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.received++
	g := t.gateways[d.Gateway]
	if g == nil {
		g = &gatewayTally{seqs: map[string]int64{}}
		t.gateways[d.Gateway] = g
	}
	if old, ok := g.seqs[d.ID]; ok {
		t.duplicates++
		if old != d.Seq {
			t.conflicts = append(t.conflicts, fmt.Sprintf("%s event %s: seq %d and %d", d.Gateway, d.ID, old, d.Seq))
		}
		return false
	}
	g.seqs[d.ID] = d.Seq
	if d.Seq < g.maxSeq {
		requeued := d.Redelivered || d.Conn != g.maxConn
		if requeued {
			t.requeued++
		} else {
			t.outOfOrder++
		}
		t.reordered = append(t.reordered, fmt.Sprintf("%s seq %d after seq %d (connection %d after %d, redelivered %t)",
			d.Gateway, d.Seq, g.maxSeq, d.Conn, g.maxConn, d.Redelivered))
	}
	if d.Seq > g.maxSeq {
		g.maxSeq, g.maxConn = d.Seq, d.Conn
	}
	return true
}

// Summary is the tally's figures.
type Summary struct {
	Received   int      // every message, duplicates included
	Unique     int      // distinct event ids
	Duplicates int      // Received - Unique
	OutOfOrder int      // new events behind a later one of their gateway on the same connection, not redelivered
	Requeued   int      // new events behind a later one after the queue gave them back
	Conflicts  []string // ids seen with two seqs
	Reordered  []string // every event behind a later one, described
}

// Summary returns the figures so far.
func (t *Tally) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{Received: t.received, Duplicates: t.duplicates, OutOfOrder: t.outOfOrder, Requeued: t.requeued,
		Conflicts: append([]string(nil), t.conflicts...), Reordered: append([]string(nil), t.reordered...)}
	for _, g := range t.gateways {
		s.Unique += len(g.seqs)
	}
	return s
}

// Unique is the number of distinct events received.
func (t *Tally) Unique() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, g := range t.gateways {
		n += len(g.seqs)
	}
	return n
}

// Missing returns, sorted by seq, the ids of want (id → seq, what a gateway
// recorded) that were never received from gateway, and the ids received
// with another seq than recorded.
func (t *Tally) Missing(gateway string, want map[string]int64) (missing []string, wrongSeq []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.gateways[gateway]
	for id, seq := range want {
		got, ok := int64(0), false
		if g != nil {
			got, ok = g.seqs[id]
		}
		switch {
		case !ok:
			missing = append(missing, id)
		case got != seq:
			wrongSeq = append(wrongSeq, id)
		}
	}
	bySeq := func(ids []string) {
		sort.Slice(ids, func(i, j int) bool { return want[ids[i]] < want[ids[j]] })
	}
	bySeq(missing)
	bySeq(wrongSeq)
	return missing, wrongSeq
}
