//go:build fleet

package fleet_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/mqtt/fleet"
)

// settings of a fleet run, from the environment (the make targets set them).
type settings struct {
	gateways  int     // FLEET_GATEWAYS: in-process links, default 200
	processes int     // FLEET_PROCESSES: `portier run` processes, default 4
	burst     int     // FLEET_BURST: events per gateway in the throughput burst, default 100
	rate      float64 // FLEET_RATE: events per second per gateway during the faults, default 0.5
	faults    string  // FLEET_FAULTS: "all" (kill each node in turn, then restart the cluster) or "ci" (one node, then the cluster)
}

func loadSettings(t testing.TB) settings {
	t.Helper()
	s := settings{gateways: 200, processes: 4, burst: 100, rate: 0.5, faults: "all"}
	ints := map[string]*int{"FLEET_GATEWAYS": &s.gateways, "FLEET_PROCESSES": &s.processes, "FLEET_BURST": &s.burst}
	for name, p := range ints {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			require.NoError(t, err, name)
			*p = n
		}
	}
	if v := os.Getenv("FLEET_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, "FLEET_RATE")
		s.rate = f
	}
	if v := os.Getenv("FLEET_FAULTS"); v != "" {
		s.faults = v
	}
	require.Contains(t, []string{"all", "ci"}, s.faults, "FLEET_FAULTS")
	require.Positive(t, s.gateways+s.processes, "a fleet needs gateways")
	return s
}

// figure prints one of the harness's figures as name=value.
func figure(name string, v any) {
	if f, ok := v.(float64); ok {
		v = strconv.FormatFloat(f, 'f', 2, 64)
	}
	fmt.Printf("%s=%v\n", name, v)
}

// fleetRun is one run of the fleet harness.
type fleetRun struct {
	t         *testing.T
	s         settings
	c         *cluster
	links     []*linkGateway
	procs     []*procGateway
	all       []gateway
	tally     *fleet.Tally
	cons      *consumer
	producing atomic.Bool
	produced  atomic.Int64
	prodErrs  atomic.Int64
	lost      int           // events lost, over every settle
	retained  retainedCheck // the last retained check
}

// TestFleet is the fleet harness (`make fleet`, `make fleet-ci`): gateways
// on a three-node RabbitMQ cluster, nodes killed and restarted one at a
// time and then all together, and after each fault: no event lost,
// duplicates counted, order per gateway kept, the retained status and door
// states current on the node each gateway is connected to.
func TestFleet(t *testing.T) {
	s := loadSettings(t)
	c := startCluster(t)
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "links.log"))
	require.NoError(t, err)
	defer logf.Close()
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			if keep, err := os.MkdirTemp("", "portier-fleet-logs-"); err == nil {
				os.CopyFS(keep, os.DirFS(dir))
				t.Logf("gateway logs kept in %s", keep)
			}
		}
	})

	declareQueue(t, c.amqpURL(1))
	r := &fleetRun{t: t, s: s, c: c, tally: fleet.NewTally()}
	amqpURLs := []string{c.amqpURL(1), c.amqpURL(2), c.amqpURL(3)}
	r.cons = &consumer{urls: amqpURLs, tally: r.tally}
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	defer func() { cancel(); bg.Wait() }()
	bg.Add(1)
	go func() { defer bg.Done(); r.cons.run(ctx) }()

	began := time.Now()
	for i := range s.gateways {
		g := startLinkGateway(t, dir, fmt.Sprintf("gw%04d", i), c.urls, log)
		r.links = append(r.links, g)
		r.all = append(r.all, g)
	}
	if s.processes > 0 {
		bin := buildPortier(t, dir)
		for i := range s.processes {
			g := startProcGateway(t, bin, dir, fmt.Sprintf("proc%02d", i), c.urls)
			r.procs = append(r.procs, g)
			r.all = append(r.all, g)
		}
	}
	figure("fleet_gateways", len(r.all))
	figure("fleet_processes", len(r.procs))
	r.settle("the fleet started")
	t.Logf("fleet up after %s: gateways per node %v", time.Since(began).Round(time.Second), r.perNode())

	r.burst()

	bg.Add(1)
	go func() { defer bg.Done(); r.produce(ctx) }()

	first := r.nodeOf(r.all[len(r.all)-1]) // a `portier run` gateway's node, when there is one
	order := []int{first}
	if s.faults == "all" {
		for n := 1; n <= len(c.urls); n++ {
			if n != first {
				order = append(order, n)
			}
		}
	}
	for _, n := range order {
		r.killNode(n)
	}
	r.restartCluster()

	sum := r.tally.Summary()
	figure("fleet_lost", r.lost)
	figure("fleet_events", sum.Unique)
	figure("fleet_duplicates", sum.Duplicates)
	figure("fleet_out_of_order", sum.OutOfOrder)
	figure("fleet_out_of_order_requeued", sum.Requeued)
	figure("fleet_consumer_redelivered", r.cons.redelivered.Load())
	figure("fleet_retained_other_nodes_stale", r.retained.otherStale)
	figure("fleet_retained_other_nodes_missing", r.retained.otherNone)
	assert.Zero(t, r.prodErrs.Load(), "every event was recorded")
	assert.Zero(t, r.cons.bad.Load(), "every message was an event")
	t.Logf("the run took %s", time.Since(began).Round(time.Second))
}

// perNode counts the gateways connected to each node.
func (r *fleetRun) perNode() map[int]int {
	out := map[int]int{}
	for _, g := range r.all {
		out[r.nodeOf(g)]++
	}
	return out
}

// nodeOf is the node a gateway is connected to (0: none).
func (r *fleetRun) nodeOf(g gateway) int {
	st, err := g.Link(context.Background())
	if err != nil || !st.Connected {
		return 0
	}
	return r.c.node(st.Broker)
}

// waitProgress polls state until done says so, failing only when the
// progress figure did not change for stall.
func (r *fleetRun) waitProgress(what string, poll time.Duration, state func() (done bool, progress string)) {
	r.t.Helper()
	last, since := "", time.Now()
	for {
		done, p := state()
		if done {
			return
		}
		if p != last {
			last, since = p, time.Now()
		} else if time.Since(since) > stall {
			r.t.Fatalf("%s: nothing moved for %s (%s)", what, stall, p)
		}
		time.Sleep(poll)
	}
}

// settle pauses the producers, waits until every gateway is connected, its
// outbox empty and the consumer has every event, then checks: nothing lost,
// order per gateway kept, the retained state current on each gateway's node.
func (r *fleetRun) settle(label string) {
	t := r.t
	t.Helper()
	r.producing.Store(false)
	defer r.producing.Store(true)
	ctx := context.Background()
	r.waitProgress(label+": every gateway connected and drained", 200*time.Millisecond, func() (bool, string) {
		up, depth := 0, 0
		for _, g := range r.all {
			if st, err := g.Link(ctx); err == nil && st.Connected {
				up++
			}
			if d, err := g.Depth(ctx); err == nil {
				depth += d
			} else {
				depth++
			}
		}
		return up == len(r.all) && depth == 0, fmt.Sprintf("%d of %d connected, %d events in outboxes, %d received", up, len(r.all), depth, r.tally.Unique())
	})
	want := map[string]map[string]int64{}
	total := 0
	for _, g := range r.all {
		ids, err := g.Recorded(ctx)
		require.NoError(t, err, g.ID())
		want[g.ID()] = ids
		total += len(ids)
	}
	r.waitProgress(label+": the consumer has every event", 100*time.Millisecond, func() (bool, string) {
		n := r.tally.Unique()
		return n >= total, fmt.Sprintf("%d of %d events received", n, total)
	})
	lost := 0
	for id, ids := range want {
		missing, wrong := r.tally.Missing(id, ids)
		lost += len(missing)
		assert.Empty(t, missing, "%s: events never received", id)
		assert.Empty(t, wrong, "%s: events received with another seq", id)
	}
	r.lost += lost
	sum := r.tally.Summary()
	t.Logf("%s: %d events, %d lost, %d duplicates, %d out of order, %d given back out of order by the queue; gateways per node %v",
		label, total, lost, sum.Duplicates, sum.OutOfOrder, sum.Requeued, r.perNode())
	for _, d := range sum.Reordered {
		t.Logf("%s: behind a later event: %s", label, d)
	}
	require.Zero(t, lost, "%s: events lost", label)
	require.Zero(t, sum.OutOfOrder, "%s: order per gateway", label)
	require.Empty(t, sum.Conflicts, label)
	r.checkRetained(label)
}

// checkRetained waits until fresh subscribers find every gateway's retained
// status and door states current on the node it is connected to (the
// broker stores a retained message a moment after its PUBACK), and reports
// what the other nodes hold.
func (r *fleetRun) checkRetained(label string) {
	r.t.Helper()
	var res retainedCheck
	r.waitProgress(label+": retained state current", 500*time.Millisecond, func() (bool, string) {
		node := map[string]int{}
		for _, g := range r.all {
			node[g.ID()] = r.nodeOf(g)
		}
		res = checkRetained(r.t, r.c, r.all, node)
		first := ""
		if len(res.wrong) > 0 {
			first = res.wrong[0]
		}
		return len(res.wrong) == 0, fmt.Sprintf("%d wrong, e.g. %s", len(res.wrong), first)
	})
	r.t.Logf("%s: retained state current on every gateway's node; on the other nodes %d current, %d stale, %d missing",
		label, res.otherOK, res.otherStale, res.otherNone)
	r.retained = res
}

// burst records FLEET_BURST events on every in-process gateway at once and
// measures how fast the fleet delivers them to the consumer.
func (r *fleetRun) burst() {
	t := r.t
	if r.s.burst == 0 || len(r.links) == 0 {
		return
	}
	ctx := context.Background()
	before := r.tally.Unique()
	n := r.s.burst * len(r.links)
	start := time.Now()
	var wg sync.WaitGroup
	for _, g := range r.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.ProduceN(ctx, r.s.burst); err != nil {
				r.prodErrs.Add(1)
			}
		}()
	}
	wg.Wait()
	r.waitProgress("the burst", 20*time.Millisecond, func() (bool, string) {
		got := r.tally.Unique() - before
		return got >= n, fmt.Sprintf("%d of %d received", got, n)
	})
	rate := float64(n) / time.Since(start).Seconds()
	t.Logf("burst: %d events from %d gateways delivered in %s", n, len(r.links), time.Since(start).Round(time.Millisecond))
	figure("fleet_events_per_s", rate)
	r.settle("after the burst")
}

// produce records events at FLEET_RATE per gateway while producing is on;
// `portier run` gateways get a card tap every 2 s.
func (r *fleetRun) produce(ctx context.Context) {
	r.producing.Store(true)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, g := range r.all {
		every := time.Duration(float64(time.Second) / r.s.rate)
		if _, ok := g.(*procGateway); ok {
			every = 2 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if !r.producing.Load() {
					continue
				}
				if err := g.Produce(ctx); err != nil && ctx.Err() == nil {
					r.prodErrs.Add(1)
				}
				r.produced.Add(1)
			}
		}()
	}
}

// flipAll changes every gateway's door state, so the retained state after
// the fault must be the new one.
func (r *fleetRun) flipAll() {
	for _, g := range r.all {
		g.Flip()
	}
}

// killNode kills node n while the fleet produces events, changes every
// door's state while the node's gateways are away, waits until they are
// all connected to the other nodes, restarts the node and settles.
func (r *fleetRun) killNode(n int) {
	t := r.t
	before := map[string]int{}
	var victims []gateway
	for _, g := range r.all {
		before[g.ID()] = r.nodeOf(g)
		if before[g.ID()] == n {
			victims = append(victims, g)
		}
	}
	label := fmt.Sprintf("node %d killed and restarted", n)
	t.Logf("killing node %d: %d gateways are connected to it", n, len(victims))
	r.c.kill(t, n)
	killed := time.Now()
	r.flipAll()
	r.waitProgress(fmt.Sprintf("node %d killed: its gateways on other nodes", n), 200*time.Millisecond, func() (bool, string) {
		moved := 0
		for _, g := range victims {
			if m := r.nodeOf(g); m != 0 && m != n {
				moved++
			}
		}
		return moved == len(victims), fmt.Sprintf("%d of %d moved", moved, len(victims))
	})
	went := map[int]int{}
	for _, g := range victims {
		went[r.nodeOf(g)]++
	}
	t.Logf("node %d killed: its %d gateways moved within %s, to nodes %v", n, len(victims), time.Since(killed).Round(100*time.Millisecond), went)
	for _, g := range r.procs {
		if before[g.ID()] == n {
			t.Logf("the `portier run` gateway %s was on node %d and is now on node %d", g.ID(), n, r.nodeOf(g))
		}
	}
	r.c.start(t, n)
	r.settle(label)
}

// restartCluster kills every node at once, starts them again and measures
// when each in-process gateway is connected again, counted from the moment
// the cluster first accepts an MQTT session again: the reconnect storm, and
// how the jittered backoff spreads it.
func (r *fleetRun) restartCluster() {
	t := r.t
	nodes := make([]int, len(r.c.urls))
	for i := range nodes {
		nodes[i] = i + 1
	}
	r.c.kill(t, nodes...)
	killed := time.Now()
	r.flipAll()

	back := make([]time.Time, len(r.links))
	down := make([]bool, len(r.links))
	serving := make([]time.Time, len(r.c.urls)) // when each node accepted an MQTT session again
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range r.c.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// A node's listener accepts TCP well before it can register a
				// client id (that needs the cluster's Raft quorum): only a
				// CONNACK counts.
				if mqttServes(u) {
					serving[i] = time.Now()
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, g := range r.links {
				up := g.link.Status().Connected
				switch {
				case !up:
					down[i] = true
				case down[i] && back[i].IsZero():
					back[i] = time.Now()
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	r.c.start(t, nodes...)
	t.Logf("cluster killed; every node started again after %s", time.Since(killed).Round(100*time.Millisecond))
	r.waitProgress("every gateway connected after the cluster restart", 200*time.Millisecond, func() (bool, string) {
		n := 0
		for _, g := range r.links {
			if g.link.Status().Connected {
				n++
			}
		}
		return n == len(r.links), fmt.Sprintf("%d of %d connected", n, len(r.links))
	})
	close(stop)
	wg.Wait()

	first := time.Time{}
	for i, at := range serving {
		t.Logf("node %d accepted an MQTT session %s after the kill", i+1, at.Sub(killed).Round(100*time.Millisecond))
		if !at.IsZero() && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	require.False(t, first.IsZero(), "no node was seen accepting an MQTT session")
	figure("fleet_cluster_restart_s", first.Sub(killed).Seconds())
	if len(r.links) > 0 {
		delays := make([]float64, 0, len(r.links))
		perSecond := map[int]int{}
		for i := range r.links {
			at := back[i]
			if at.IsZero() { // up again between two samples, never seen down: the last sample
				at = time.Now()
			}
			d := math.Max(0, at.Sub(first).Seconds())
			delays = append(delays, d)
			perSecond[int(d)]++
		}
		slices.Sort(delays)
		pct := func(p float64) float64 { return delays[min(len(delays)-1, int(math.Ceil(p*float64(len(delays))))-1)] }
		peak := 0
		var hist []string
		for s := 0; s <= int(delays[len(delays)-1]); s++ {
			peak = max(peak, perSecond[s])
			if perSecond[s] > 0 {
				hist = append(hist, fmt.Sprintf("%ds:%d", s, perSecond[s]))
			}
		}
		t.Logf("reconnects per second after the cluster first accepted an MQTT session again: %s", strings.Join(hist, " "))
		figure("fleet_reconnect_50pct_s", pct(0.5))
		figure("fleet_reconnect_99pct_s", pct(0.99))
		figure("fleet_reconnect_max_s", delays[len(delays)-1])
		figure("fleet_reconnect_peak_per_s", peak)
	}
	r.settle("cluster killed and restarted")
}

// mqttServes reports whether a broker accepts an MQTT session now.
func mqttServes(url string) bool {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("fleet-watch-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return false
	}
	c.Disconnect(0)
	return true
}
