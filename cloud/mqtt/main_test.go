package mqtt_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/sqlite"
)

// helperEnv makes the test binary run as a gateway process (drainHelper)
// instead of the tests, so a test can SIGKILL a real sender.
const helperEnv = "PORTIER_MQTT_TEST_HELPER"

func TestMain(m *testing.M) {
	helpers := map[string]func(path, url string) error{"drain": drainHelper, "drain-rss": drainRSSHelper, "oversize": oversizeHelper}
	if h, ok := helpers[os.Getenv(helperEnv)]; ok {
		if err := h(os.Getenv("PORTIER_DB"), os.Getenv("PORTIER_BROKER")); err != nil {
			fmt.Fprintln(os.Stderr, os.Getenv(helperEnv)+" helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sqliteMeter adapts the sqlite outbox's stats to mqtt.OutboxMeter, as
// cmd/portier does.
type sqliteMeter struct{ db *sqlite.DB }

func (m sqliteMeter) OutboxDepth(ctx context.Context) (int, time.Time, error) {
	st, err := m.db.OutboxStats(ctx)
	return st.Depth, st.Oldest, err
}

// sqliteConfig is a link config over a real sqlite database.
func sqliteConfig(db *sqlite.DB, url string) mqtt.Config {
	return mqtt.Config{
		Brokers: []string{url},
		Topics:  mqtt.Topics{Site: "site1", Gateway: "gw1"},
		Outbox:  db, Meter: sqliteMeter{db}, Events: db, CommandLog: db, Doors: newFakeDoors("front", "back"),
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	}
}

// drainHelper runs a link over the database until it is killed.
func drainHelper(path, url string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	link, err := mqtt.New(sqliteConfig(db, url))
	if err != nil {
		return err
	}
	return link.Run(ctx)
}
