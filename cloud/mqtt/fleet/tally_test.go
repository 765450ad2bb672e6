package fleet_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/cloud/mqtt/fleet"
)

func TestTally(t *testing.T) {
	type ev struct {
		gw, id      string
		seq         int64
		isNew       bool
		conn        int
		redelivered bool
	}
	for _, tc := range []struct {
		name   string
		events []ev
		want   fleet.Summary
	}{
		{"in order", []ev{{"a", "a1", 1, true, 0, false}, {"a", "a2", 2, true, 0, false}, {"b", "b1", 1, true, 0, false}}, fleet.Summary{Received: 3, Unique: 3}},
		{"a resend after a reconnect", []ev{{"a", "a1", 1, true, 0, false}, {"a", "a2", 2, true, 0, false}, {"a", "a2", 2, false, 0, false}, {"a", "a3", 3, true, 0, false}},
			fleet.Summary{Received: 4, Unique: 3, Duplicates: 1}},
		{"a later event first", []ev{{"a", "a2", 2, true, 0, false}, {"a", "a1", 1, true, 0, false}},
			fleet.Summary{Received: 2, Unique: 2, OutOfOrder: 1, Reordered: []string{"a seq 1 after seq 2 (connection 0 after 0, redelivered false)"}}},
		{"given back by the queue", []ev{{"a", "a3", 3, true, 0, false}, {"a", "a2", 2, true, 0, true}},
			fleet.Summary{Received: 2, Unique: 2, Requeued: 1, Reordered: []string{"a seq 2 after seq 3 (connection 0 after 0, redelivered true)"}}},
		{"after the consumer reconnected", []ev{{"a", "a3", 3, true, 0, false}, {"a", "a2", 2, true, 1, false}, {"a", "a4", 4, true, 1, false}, {"a", "a1", 1, true, 1, false}},
			fleet.Summary{Received: 4, Unique: 4, OutOfOrder: 1, Requeued: 1, Reordered: []string{
				"a seq 2 after seq 3 (connection 1 after 0, redelivered false)", "a seq 1 after seq 4 (connection 1 after 1, redelivered false)"}}},
		{"gateways are independent", []ev{{"a", "a5", 5, true, 0, false}, {"b", "b1", 1, true, 0, false}}, fleet.Summary{Received: 2, Unique: 2}},
		{"one id, two seqs", []ev{{"a", "x", 1, true, 0, false}, {"a", "x", 2, false, 0, false}},
			fleet.Summary{Received: 2, Unique: 1, Duplicates: 1, Conflicts: []string{"a event x: seq 1 and 2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := fleet.NewTally()
			for _, e := range tc.events {
				assert.Equal(t, e.isNew, tl.Add(fleet.Delivery{Gateway: e.gw, ID: e.id, Seq: e.seq, Conn: e.conn, Redelivered: e.redelivered}), "%+v", e)
			}
			assert.Equal(t, tc.want, tl.Summary())
			assert.Equal(t, tc.want.Unique, tl.Unique())
		})
	}
}

func TestTallyMissing(t *testing.T) {
	tl := fleet.NewTally()
	tl.Add(fleet.Delivery{Gateway: "a", ID: "a1", Seq: 1})
	tl.Add(fleet.Delivery{Gateway: "a", ID: "a3", Seq: 9})
	missing, wrong := tl.Missing("a", map[string]int64{"a1": 1, "a2": 2, "a3": 3, "a4": 4})
	assert.Equal(t, []string{"a2", "a4"}, missing)
	assert.Equal(t, []string{"a3"}, wrong)
	missing, _ = tl.Missing("nobody", map[string]int64{"z": 1})
	assert.Equal(t, []string{"z"}, missing)
}

func TestTallyConcurrent(t *testing.T) {
	tl := fleet.NewTally()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				tl.Add(fleet.Delivery{Gateway: string(rune('a' + g)), ID: string(rune('a'+g)) + "-" + string(rune(i)), Seq: int64(i)})
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, fleet.Summary{Received: 8000, Unique: 8000}, tl.Summary())
}
