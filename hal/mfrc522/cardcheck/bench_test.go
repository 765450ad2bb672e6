package cardcheck_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
	"github.com/portier-io/portier/hal/mfrc522"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
	"github.com/portier-io/portier/hal/simtime"
	"github.com/portier-io/portier/sqlite"
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

// benchDoor is the door of the benchmarks: a card door of the site below,
// in the given card mode.
func benchDoor(mode agent.CardMode) agent.Door {
	return agent.Door{ID: "lab", Mode: agent.ModeCard, LockIDs: []string{"lock"}, CardMode: mode}
}

// benchCache is a SQLite cache (in dir) holding one member with the
// identity's tag number, who may open the door at any hour, and the UID
// enrolled for that tag number.
func benchCache(b *testing.B) *sqlite.DB {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "cache.db"), sqlite.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	tag := fmt.Sprintf("%08d", ident.TagNumber)
	users := []agent.User{{ID: "u1", PlatformID: "p1", FirstName: "Ada", TagNumber: tag, Subscription: agent.Subscribed}}
	creds, err := agent.TagCredentials(users)
	require.NoError(b, err)
	key, err := agent.UIDKey(uid)
	require.NoError(b, err)
	_, err = db.ApplySnapshot(context.Background(), &agent.Snapshot{
		Site:        agent.Site{ID: "site", Name: "bench", TimeZone: "UTC"},
		Locks:       []agent.Lock{{ID: "lock", Name: "Lab"}},
		Users:       users,
		Groups:      []agent.AccessGroup{{ID: "g1", Name: "Always", Members: []string{"p1"}, Locks: []string{"lock"}, Schedules: []agent.Schedule{agent.Always("s1")}}},
		Credentials: creds,
		Enrolments:  []agent.Enrolment{{Key: key, TagNumber: tag}},
	}, sqlite.ApplyOptions{})
	require.NoError(b, err)
	return db
}

// BenchmarkDESFireTapToDecision reports the 99th percentile, over taps at
// random phases of the 40 ms poll cycle, of the time from an issued DESFire
// EV2 entering the field to the door's decision, wired as `portier run`
// wires a door: the reader loop's poll with the door's hal.CardStation
// (selection, RATS, SelectApplication, AuthenticateEV2First with the
// diversified read key, ReadData of the enciphered identity file,
// DESELECT), the station's event (agent.KindDESFire with the tag number),
// and agent.Decider's decision from a SQLite cache (the credential, its
// holder and the card's recorded generation in one read, then the pure
// decision).
func BenchmarkDESFireTapToDecision(b *testing.B) {
	const taps = 400
	var tapP99, hostCost time.Duration
	for b.Loop() {
		r := newBenchRig(b)
		station, err := hal.NewCardStation("lab", hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": agent.CardModeDESFire}, Sites: []desfire.SiteKeys{doorKeys}})
		require.NoError(b, err)
		rd := mfrc522.NewReader(r.dev, mfrc522.ReaderConfig{Inspect: station.Inspect})
		dec := &agent.Decider{Cache: benchCache(b)}
		door := benchDoor(agent.CardModeDESFire)
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
					ev, ok := station.Event(c, r.clock.Now())
					if !ok {
						b.Fatal("no event")
					}
					d, derr := dec.Decide(ctx, door, r.clock.Now(), ev.Credential)
					if derr != nil || !d.Granted {
						b.Fatalf("tap refused: %v %s: %s", derr, d.Reason, d.Detail)
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

// BenchmarkUIDFingerprintOverhead reports what the fingerprint check adds
// to a UID tap (99th percentile over taps), the way a uid door runs it: the
// station's check after selection (RATS, GetVersion in three frames,
// Read_Sig, DESELECT, and one ECDSA P-224 verification, the generation's
// key tried first), its event, and the decision comparing the fingerprint
// with the one recorded in the SQLite cache; less the decision of the same
// UID read without a fingerprint.
func BenchmarkUIDFingerprintOverhead(b *testing.B) {
	const taps = 200
	var overhead time.Duration
	for b.Loop() {
		r := newBenchRig(b)
		signer, err := desfiresim.NewSigningKey()
		require.NoError(b, err)
		trusted := append(desfire.NXPOriginalityKeys(), desfiresim.TrustKey(signer))
		trusted = append(trusted[len(trusted)-1:], trusted[:len(trusted)-1]...)
		station, err := hal.NewCardStation("lab", hal.CardsConfig{Trusted: trusted})
		require.NoError(b, err)
		card, err := desfiresim.New(desfiresim.Config{UID: uid, SigningKey: signer})
		require.NoError(b, err)
		db := benchCache(b)
		dec := &agent.Decider{Cache: db}
		door := benchDoor(agent.CardModeUID)
		ctx := context.Background()
		tap := func() mfrc522.Card {
			r.chip.Clear()
			require.NoError(b, r.chip.Place(card.Tag()))
			r.clock.Advance(mfrc522sim.PowerUp)
			require.NoError(b, r.dev.Init(ctx))
			atqa, err := r.dev.Request(ctx, true)
			require.NoError(b, err)
			c, err := r.dev.Select(ctx, atqa)
			require.NoError(b, err)
			return c
		}
		decide := func(p agent.Presented) {
			d, err := dec.Decide(ctx, door, r.clock.Now(), p)
			if err != nil || !d.Granted {
				b.Fatalf("tap refused: %v %s: %s", err, d.Reason, d.Detail)
			}
		}
		// The card's fingerprint is recorded, as enrolment would.
		c := tap()
		res, err := station.Inspect(ctx, r.dev, c)
		require.NoError(b, err)
		c.Detail = res
		first, _ := station.Event(c, r.clock.Now())
		require.NotEmpty(b, first.Credential.Card.Fingerprint)
		require.NoError(b, db.LearnCard(ctx, agent.CardLearning{Key: "uid:" + fmt.Sprintf("%X", uid), Card: agent.CardRecord{Fingerprint: first.Credential.Card.Fingerprint}}))

		var costs, hostFP, hostPlain []time.Duration
		for range taps {
			c := tap()
			start := r.clock.Now()
			h := r.hostTime(func() {
				res, err := station.Inspect(ctx, r.dev, c)
				if err != nil {
					b.Fatal(err)
				}
				c.Detail = res
				ev, _ := station.Event(c, r.clock.Now())
				if !strings.Contains(ev.Credential.Card.Fingerprint, ";sig=") || strings.HasSuffix(ev.Credential.Card.Fingerprint, "orig=-") {
					b.Fatalf("fingerprint incomplete: %s", ev.Credential.Card.Fingerprint)
				}
				decide(ev.Credential)
			})
			costs = append(costs, r.clock.Since(start))
			hostFP = append(hostFP, h)
			hostPlain = append(hostPlain, r.hostTime(func() { decide(hal.CardEvent("lab", c.UID, r.clock.Now()).Credential) }))
		}
		overhead = p99(plus(costs, median(hostFP)-median(hostPlain)))
	}
	b.ReportMetric(ms(overhead), "uid_fingerprint_overhead_ms")
}
