package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// Sizes of the benchmark runs.
const (
	benchDrain   = 50_000 // per round
	benchRaw     = 50_000 // per round
	benchRounds  = 5      // interleaved drain and raw rounds; medians reported (the VM is noisy)
	benchBacklog = 1_000_000
)

// BenchmarkLink measures, against mosquitto on loopback and in one run:
// the drain outbox → broker with PUBACK, bare paho
// QoS 1 publishing with the same in-flight window, their ratio, and the peak
// RSS of a gateway process draining a 1,000,000-event backlog. Work is fixed
// per call, whatever b.N.
func BenchmarkLink(b *testing.B) {
	broker := startMosquitto(b, "")
	ctx := context.Background()
	dir := b.TempDir()

	// Durable appends are sqlite's BenchmarkOutboxAppend (group commit, on
	// a file system with an SD card's fsync).
	// Drain (a backlog in the real outbox, through the link, PUBACKed and
	// deleted) and bare paho, interleaved for a few rounds so both see the
	// same machine; the medians are reported.
	var drains, raws []float64
	for i := range benchRounds {
		path := filepath.Join(dir, fmt.Sprintf("drain%d.db", i))
		fillOutbox(b, path, benchDrain)
		db, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(b, err)
		drains = append(drains, benchDrain/drainAll(b, db, broker.URL()).Seconds())
		require.NoError(b, db.Close())
		raws = append(raws, rawPaho(b, broker.URL(), benchRaw))
	}
	drainRate, rawRate := median(drains), median(raws)

	rss := backlogRSS(b, broker.URL(), filepath.Join(dir, "backlog.db"))

	b.ReportMetric(drainRate, "drain_events_per_s")
	b.ReportMetric(rawRate, "raw_paho_qos1_per_s")
	b.ReportMetric(drainRate/rawRate, "drain_vs_raw")
	b.ReportMetric(rss, "drain_1m_backlog_rss_mb")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func accessEvent() agent.Event {
	return agent.Event{Type: agent.EventAccessGranted, Door: "front", Reason: "granted", Kind: "card", Credential: "card:…3f9a",
		User: &agent.UserRef{ID: "7c1e4a52-0000-4000-8000-000000000001", Name: "Ada Lovelace"}, Detail: "group Members"}
}

// fillOutbox writes n events into a new database's outbox through the real
// append path, in transactions of 10,000, so a large backlog takes seconds
// rather than one commit per event.
func fillOutbox(b testing.TB, path string, n int) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(b, err)
	defer db.Close()
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	batch := make([]agent.Event, 0, 10_000)
	for i := 1; i <= n; i++ {
		e := accessEvent()
		e.Time = at.Add(time.Duration(i) * time.Millisecond)
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == n {
			_, err := db.AppendAll(ctx, batch)
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
}

// drainAll runs a link over db until its outbox is empty.
func drainAll(b testing.TB, db *sqlite.DB, url string) time.Duration {
	b.Helper()
	link, err := mqtt.New(sqliteConfig(db, url))
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- link.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatal("the outbox did not drain within 5 minutes")
		}
		left, err := db.Pending(context.Background(), 0, 1)
		require.NoError(b, err)
		if len(left) == 0 {
			return time.Since(start)
		}
	}
}

// rawPaho publishes n QoS 1 messages with bare paho, at most
// mqtt.DefaultInFlight awaiting PUBACK (the link's window), and returns the
// rate.
func rawPaho(b testing.TB, url string, n int) float64 {
	b.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("raw-bench").SetAutoReconnect(false))
	tok := c.Connect()
	require.True(b, tok.WaitTimeout(waitFor))
	require.NoError(b, tok.Error())
	defer c.Disconnect(0)
	payload, _ := json.Marshal(accessEvent())
	window := make([]paho.Token, 0, mqtt.DefaultInFlight)
	start := time.Now()
	for range n {
		if len(window) == cap(window) {
			require.True(b, window[0].WaitTimeout(waitFor))
			require.NoError(b, window[0].Error())
			window = window[1:]
		}
		window = append(window, c.Publish("raw/bench", 1, false, payload))
	}
	for _, t := range window {
		require.True(b, t.WaitTimeout(waitFor))
		require.NoError(b, t.Error())
	}
	return float64(n) / time.Since(start).Seconds()
}

// backlogRSS fills a 1,000,000-event outbox and drains it in a child process
// (this test binary in helper mode), which reports its peak RSS.
func backlogRSS(b testing.TB, url, path string) float64 {
	b.Helper()
	fillOutbox(b, path, benchBacklog)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=drain-rss", "PORTIER_DB="+path, "PORTIER_BROKER="+url)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(b, err)
	line := strings.TrimSpace(string(out))
	kb, err := strconv.ParseFloat(strings.TrimPrefix(line, "maxrss_kb="), 64)
	require.NoError(b, err, "helper said %q", line)
	return kb / 1024
}

// drainRSSHelper drains the outbox at path and prints its own peak RSS.
func drainRSSHelper(path, url string) error {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	link, err := mqtt.New(sqliteConfig(db, url))
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- link.Run(rctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		left, err := db.Pending(ctx, 0, 1)
		if err != nil {
			cancel()
			return err
		}
		if len(left) == 0 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	fmt.Printf("maxrss_kb=%d\n", ru.Maxrss)
	return nil
}
