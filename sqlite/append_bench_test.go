package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/sqlite"
	"github.com/portier-io/portier/sqlite/sqlitetest/powerfs"
)

// sdCardFsync is the flush time of the test file system in the figures: an
// SD card's fsync takes milliseconds.
const sdCardFsync = 10 * time.Millisecond

// BenchmarkOutboxAppend measures how fast events are recorded durably
// (synchronous=FULL) on storage whose every fsync takes 10 ms, the way the
// agent records them: through the event spool, which writes whatever waits
// in one transaction. Four producers (doors, the MQTT link, the clock
// guard…) record 20,000 events as fast as they can; the figure is events
// per second until the last one is committed. Beside it, for comparison,
// the rate of one transaction per event.
//
//	outbox_append_per_s          events committed per second (group commit)
//	events_per_fsync             events per fsync of the database's files
//	outbox_append_single_per_s   one transaction per event, same storage
func BenchmarkOutboxAppend(b *testing.B) {
	const events, producers, single = 20_000, 4, 200
	fsys := powerfs.New(b, powerfs.Options{FsyncDelay: sdCardFsync})
	ctx := context.Background()
	for range b.N {
		db, err := sqlite.Open(ctx, filepath.Join(fsys.Dir(), "append.db"), sqlite.Options{})
		require.NoError(b, err)
		spool := agent.NewEventSpool(agent.EventSpoolConfig{Store: db, Clock: agent.NewSystemClock()})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- spool.Run(rctx) }()

		before, err := fsys.Stats()
		require.NoError(b, err)
		start := time.Now()
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := p; i < events; i += producers {
					if err := spool.Record(ctx, accessEvent(i)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		require.NoError(b, spool.Sync(ctx))
		elapsed := time.Since(start)
		after, err := fsys.Stats()
		require.NoError(b, err)
		stop()
		require.NoError(b, <-done)
		st, err := db.OutboxStats(ctx)
		require.NoError(b, err)
		require.Equal(b, events, st.Depth, "every event is in the outbox")

		start = time.Now()
		for i := range single {
			_, err := db.Append(ctx, accessEvent(i))
			require.NoError(b, err)
		}
		singleRate := single / time.Since(start).Seconds()
		require.NoError(b, db.Close())

		fsyncs := after.Fsyncs - before.Fsyncs
		b.ReportMetric(events/elapsed.Seconds(), "outbox_append_per_s")
		b.ReportMetric(float64(events)/float64(max(fsyncs, 1)), "events_per_fsync")
		b.ReportMetric(singleRate, "outbox_append_single_per_s")
		if testing.Verbose() {
			b.Logf("%d events in %s: %d transactions, %d fsyncs (+%d of directories)", events, elapsed.Round(time.Millisecond),
				spool.Batches(), fsyncs, after.FsyncDirs-before.FsyncDirs)
		}
	}
}

func accessEvent(i int) agent.Event {
	return agent.Event{Type: agent.EventAccessGranted, Door: []string{"front", "back"}[i%2], Reason: agent.ReasonGranted,
		Kind: agent.KindUID, Credential: "uid:4 bytes …3F9A", User: &agent.UserRef{ID: "7c1e4a52-0000-4000-8000-000000000001", Name: "Ada Lovelace"}}
}
