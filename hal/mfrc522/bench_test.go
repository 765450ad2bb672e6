package mfrc522_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3/physic"

	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

// CPU model for the idle-poll benchmark. The simulator answers in
// nanoseconds; a Pi does not. Each SPI transfer is charged what a spidev
// ioctl costs on a Pi 4 (syscall, message set-up, and the spi-bcm2835
// driver busy-polling short transfers: ~20 µs) plus its wire time at the
// SPI clock, spent as real CPU. Each sleep of the poll loop is charged a
// timer wake-up (~5 µs). Go code itself runs at this machine's speed.
const (
	transferCPU = 20 * time.Microsecond
	wakeCPU     = 5 * time.Microsecond
)

func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// chargedClock charges wakeCPU per sleep and ends the run at `end`.
type chargedClock struct {
	*simtime.Clock
	end  time.Time
	stop context.CancelFunc
}

func (c chargedClock) Sleep(ctx context.Context, d time.Duration) error {
	spin(wakeCPU)
	if c.Now().After(c.end) {
		c.stop()
	}
	return c.Clock.Sleep(ctx, d)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPollIdleCPU reports the CPU share of one core spent polling an
// empty field at the default rate, over 60 s of simulated time.
func BenchmarkPollIdleCPU(b *testing.B) {
	const span = 60 * time.Second
	var pct float64
	for b.Loop() {
		clock := simtime.New()
		chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock, OnTransfer: func(n int) {
			spin(transferCPU + time.Duration(n*8)*time.Second/time.Duration(mfrc522.DefaultSPISpeed/physic.Hertz))
		}})
		ctx, cancel := context.WithCancel(context.Background())
		start := clock.Now()
		cc := chargedClock{Clock: clock, end: start.Add(span), stop: cancel}
		dev, err := mfrc522.New(chip, mfrc522.Config{Clock: cc})
		require.NoError(b, err)
		rd := mfrc522.NewReader(dev, mfrc522.ReaderConfig{})
		_, err = rd.Poll(ctx) // init outside the measurement
		require.NoError(b, err)
		cpu0 := cpuTime()
		sim0 := clock.Now()
		require.NoError(b, rd.Run(ctx, func(mfrc522.Card) { b.Fatal("no card in the field") }, func(err error) { b.Fatal(err) }))
		pct = float64(cpuTime()-cpu0) / float64(clock.Since(sim0)) * 100
		cancel()
	}
	b.ReportMetric(pct, "mfrc522_poll_cpu_pct")
}

// BenchmarkTapToUID reports the 99th percentile of simulated time from a
// card entering the field (at a random phase of the poll cycle, with a mix
// of 4-, 7- and 10-byte UIDs) to the UID being delivered, at the default
// poll rate.
func BenchmarkTapToUID(b *testing.B) {
	const taps = 2000
	var p99 time.Duration
	for b.Loop() {
		clock := simtime.New()
		chip := mfrc522sim.New(mfrc522sim.Config{Clock: clock})
		dev, err := mfrc522.New(chip, mfrc522.Config{Clock: clock})
		require.NoError(b, err)
		rnd := rand.New(rand.NewPCG(1, 2))
		uids := [][]byte{uid4, uid7, uid10}
		ctx, cancel := context.WithCancel(context.Background())
		var lat []time.Duration
		var arrive time.Time
		var card []byte
		next := func(after time.Time) {
			card = uids[len(lat)%len(uids)]
			arrive = after.Add(time.Duration(rnd.Int64N(int64(200 * time.Millisecond))))
			require.NoError(b, chip.PlaceAt(mfrc522sim.Card{UID: card, SAK: 0x08}, arrive))
		}
		next(clock.Now())
		err = mfrc522.NewReader(dev, mfrc522.ReaderConfig{}).Run(ctx, func(c mfrc522.Card) {
			if !slices.Equal(c.UID, card) {
				b.Fatalf("read % X, card was % X", c.UID, card)
			}
			lat = append(lat, clock.Since(arrive))
			if len(lat) == taps {
				cancel()
				return
			}
			leave := clock.Now().Add(300 * time.Millisecond)
			chip.RemoveAt(card, leave)
			next(leave.Add(200 * time.Millisecond)) // after the reader saw it go
		}, func(err error) { b.Fatal(err) })
		require.NoError(b, err)
		slices.Sort(lat)
		p99 = lat[len(lat)*99/100]
	}
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "mfrc522_tap_to_uid_ms")
}
