package cardcheck_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/cardcheck"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
)

// The CPU model. Simulated time covers the radio (bit times, frame delay,
// the card's computing time from desfiresim's Timing) and the SPI bus:
// each transfer costs what a spidev ioctl costs on a Pi 4 (~20 µs, as in
// hal/mfrc522's benchmarks) plus its wire time at 4 MHz. The host's own
// work (driver, ISO/IEC 14443-4, DESFire crypto, ECDSA) is measured on this
// machine, minus the time spent inside the simulators, and charged at
// piSlowdown times: a Pi 4's Cortex-A72 runs Go several times slower than
// this x86-64 and has no AES instructions. The figures are a model, to be
// confirmed on a Pi (docs/hardware.md).
const (
	spidevCost = 20 * time.Microsecond
	piSlowdown = 10
)

type benchRig struct {
	clock *simtime.Clock
	chip  *mfrc522sim.Chip
	dev   *mfrc522.Dev
	spent atomic.Int64
}

func newBenchRig(b testing.TB) *benchRig {
	r := &benchRig{clock: simtime.New()}
	r.chip = mfrc522sim.New(mfrc522sim.Config{Clock: r.clock, TransferOverhead: spidevCost})
	// The real time spent in the chip simulator (and the card model it
	// calls) is not host work.
	timed := func(transfer func() error) error {
		start := time.Now()
		defer func() { r.spent.Add(int64(time.Since(start))) }()
		return transfer()
	}
	dev, err := mfrc522.New(hookPort{r.chip, timed}, mfrc522.Config{Clock: r.clock})
	require.NoError(b, err)
	r.dev = dev
	return r
}

// hostTime runs f and returns the host work it did, scaled to a Pi.
func (r *benchRig) hostTime(f func()) time.Duration {
	wall, sim := time.Now(), r.spent.Load()
	f()
	return (time.Since(wall) - time.Duration(r.spent.Load()-sim)) * piSlowdown
}

func p99(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)*99/100]
}

// median of host costs: on a shared machine a single measurement can carry
// a scheduler hiccup, which the Pi scaling would magnify; the work itself
// is the same every tap.
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

func plus(d []time.Duration, c time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x + c
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkDESFireTapToDecision reports the 99th percentile, over taps at
// random phases of the 40 ms poll cycle, of the time from an issued DESFire
// EV2 entering the field to the door's decision input: selection, RATS,
// SelectApplication, AuthenticateEV2First with the diversified read key,
// ReadData of the enciphered identity file, DESELECT, then a lookup of the
// tag number. (The agent's decision proper comes with its wiring; a map
// lookup stands in for it.)
func BenchmarkDESFireTapToDecision(b *testing.B) {
	const taps = 400
	var tapP99, hostCost time.Duration
	for b.Loop() {
		r := newBenchRig(b)
		cfg := cardcheck.Config{Mode: cardcheck.ModeDESFire, Sites: []desfire.SiteKeys{doorKeys}}
		rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{Inspect: cfg.Inspect})
		users := map[uint32]string{ident.TagNumber: "member"}
		var cards []*desfiresim.Card
		for i := range 8 {
			u := append([]byte(nil), uid...)
			u[6] = byte(i)
			c, err := desfiresim.NewIssued(u, site, ident, nil)
			require.NoError(b, err)
			cards = append(cards, c)
		}
		rnd := rand.New(rand.NewPCG(3, 4))
		ctx := context.Background()
		var lat, host []time.Duration
		next := r.clock.Now()
		arrive := next.Add(time.Duration(rnd.Int64N(int64(200 * time.Millisecond))))
		card := cards[0]
		require.NoError(b, r.chip.PlaceAt(card.Tag(), arrive))
		for len(lat) < taps {
			var got []mfrc522.Card
			var err error
			h := r.hostTime(func() {
				got, err = rd.Poll(ctx)
				for _, c := range got {
					res := c.Detail.(*cardcheck.Result)
					if res.Outcome != cardcheck.OK || users[res.Identity.TagNumber] == "" {
						b.Fatalf("tap refused: %v", res.Err)
					}
				}
			})
			require.NoError(b, err)
			if len(got) > 0 {
				lat = append(lat, r.clock.Since(arrive))
				host = append(host, h)
				leave := r.clock.Now().Add(300 * time.Millisecond)
				r.chip.RemoveAt(card.Tag().UID, leave)
				card = cards[len(lat)%len(cards)]
				arrive = leave.Add(200*time.Millisecond + time.Duration(rnd.Int64N(int64(200*time.Millisecond))))
				require.NoError(b, r.chip.PlaceAt(card.Tag(), arrive))
			}
			// Polls on a fixed grid, as Reader.Run does.
			next = next.Add(mfrc522.DefaultPollInterval)
			r.clock.AdvanceTo(next)
		}
		hostCost = median(host)
		tapP99 = p99(plus(lat, hostCost))
	}
	b.ReportMetric(ms(tapP99), "desfire_tap_to_decision_p99_ms")
	b.ReportMetric(ms(hostCost), "desfire_tap_host_cpu_ms")
}

// BenchmarkUIDFingerprintOverhead reports what capturing the fingerprint
// adds to a plain UID read (99th percentile over taps): RATS, GetVersion
// (three frames), Read_Sig, DESELECT, and verifying the signature (one
// ECDSA P-224 verification: the generation's key is tried first).
func BenchmarkUIDFingerprintOverhead(b *testing.B) {
	const taps = 200
	var overhead time.Duration
	for b.Loop() {
		r := newBenchRig(b)
		signer, err := desfiresim.NewSigningKey()
		require.NoError(b, err)
		trusted := append(desfire.NXPOriginalityKeys(), desfiresim.TrustKey(signer))
		trusted = append(trusted[len(trusted)-1:], trusted[:len(trusted)-1]...)
		cfg := cardcheck.Config{Mode: cardcheck.ModeUID, Trusted: trusted}
		card, err := desfiresim.New(desfiresim.Config{UID: uid, SigningKey: signer})
		require.NoError(b, err)
		ctx := context.Background()
		var costs, host []time.Duration
		for range taps {
			r.chip.Clear()
			require.NoError(b, r.chip.Place(card.Tag()))
			r.clock.Advance(mfrc522sim.PowerUp)
			require.NoError(b, r.dev.Init(ctx))
			atqa, err := r.dev.Request(ctx, true)
			require.NoError(b, err)
			c, err := r.dev.Select(ctx, atqa)
			require.NoError(b, err)
			start := r.clock.Now()
			var res any
			h := r.hostTime(func() { res, err = cfg.Inspect(ctx, r.dev, c) })
			require.NoError(b, err)
			if fp := res.(*cardcheck.Result); fp.Outcome != cardcheck.OK || fp.Fingerprint.Original == "" {
				b.Fatalf("fingerprint incomplete: %+v", fp)
			}
			costs = append(costs, r.clock.Since(start))
			host = append(host, h)
		}
		overhead = p99(plus(costs, median(host)))
	}
	b.ReportMetric(ms(overhead), "uid_fingerprint_overhead_ms")
}
