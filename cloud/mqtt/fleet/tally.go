package fleet

import (
	"fmt"
	"sort"
	"sync"
)

// Tally is what a fleet consumer saw: every event once by id, the
// duplicates delivery at least once brings, and per gateway whether events
// arrived in seq order. It is safe for concurrent use.
type Tally struct {
	mu         sync.Mutex
	gateways   map[string]*gatewayTally
	received   int
	duplicates int
	outOfOrder int
	conflicts  []string
}

type gatewayTally struct {
	seqs   map[string]int64 // event id → seq
	maxSeq int64
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{gateways: map[string]*gatewayTally{}} }

// Add records one received event and reports whether it is new. An event
// that arrives after a later one of its gateway (a higher seq) counts as out
// of order; the same id with another seq is a conflict, which a correct
// gateway never produces.
func (t *Tally) Add(gateway, id string, seq int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.received++
	g := t.gateways[gateway]
	if g == nil {
		g = &gatewayTally{seqs: map[string]int64{}}
		t.gateways[gateway] = g
	}
	if old, ok := g.seqs[id]; ok {
		t.duplicates++
		if old != seq {
			t.conflicts = append(t.conflicts, fmt.Sprintf("%s event %s: seq %d and %d", gateway, id, old, seq))
		}
		return false
	}
	g.seqs[id] = seq
	if seq < g.maxSeq {
		t.outOfOrder++
	}
	g.maxSeq = max(g.maxSeq, seq)
	return true
}

// Summary is the tally's figures.
type Summary struct {
	Received   int      // every message, duplicates included
	Unique     int      // distinct event ids
	Duplicates int      // Received - Unique
	OutOfOrder int      // new events that arrived after a later one of their gateway
	Conflicts  []string // ids seen with two seqs
}

// Summary returns the figures so far.
func (t *Tally) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{Received: t.received, Duplicates: t.duplicates, OutOfOrder: t.outOfOrder, Conflicts: append([]string(nil), t.conflicts...)}
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
