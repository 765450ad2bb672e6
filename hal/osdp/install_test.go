package osdp_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/osdp"
	"github.com/portier-io/portier/hal/osdp/osdpsim"
)

// A reader without a key of its own is identified, then refused: it is never
// used under the published key by itself.
func TestUninstalledReaderIsRefusedWithoutKey(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "new", Addr: 5, Uninstalled: true}},
		pds:     []osdpsim.Config{{Addr: 5, Install: true}},
	})
	r.waitFor(t, "identity", kind(osdp.ReportIdentity, 5), nil)
	rep := r.waitFor(t, "refusal", kind(osdp.ReportOffline, 5), kind(osdp.ReportOnline, 5))
	assert.Equal(t, osdp.ReasonNoKey, rep.Reason)
	assert.Equal(t, "no_key", rep.Reason.String())
	assert.ErrorIs(t, rep.Err, osdp.ErrRefused)
	st := status(t, r.bus, 5)
	assert.False(t, st.Online)
	require.NotNil(t, st.Identity, "the installer sees which reader it is")
	assert.False(t, pds[0].Secure(), "no session under SCBK-D")
}

// Bus.Install on a running bus: the other readers keep working, the new one
// comes online under its new key, and a card read meanwhile under SCBK-D is
// dropped.
func TestInstallOnARunningBus(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("old", 1, key1), {Name: "new", Addr: 5, Uninstalled: true}},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}, {Addr: 5, Install: true}},
	})
	seen := map[osdp.ReportKind]bool{}
	for !seen[osdp.ReportOnline] || !seen[osdp.ReportOffline] {
		rep := r.waitFor(t, "old online, new refused", func(rep osdp.Report) bool {
			return rep.Kind == osdp.ReportOnline && rep.Addr == 1 || rep.Kind == osdp.ReportOffline && rep.Addr == 5
		}, nil)
		seen[rep.Kind] = true
	}

	require.NoError(t, r.bus.Install(context.Background(), 5, key2))
	k, install := pds[1].Key()
	assert.Equal(t, key2, k)
	assert.False(t, install)
	on := r.waitFor(t, "new online under its key", kind(osdp.ReportOnline, 5), offline)
	assert.True(t, on.Secure)
	st := status(t, r.bus, 5)
	assert.True(t, st.Online)
	assert.False(t, st.DefaultKey)

	pds[1].PresentWiegand(h10301, 26)
	r.waitFor(t, "card under the new key", kind(osdp.ReportCard, 5), offline)
	assert.True(t, status(t, r.bus, 1).Online, "the bus's other reader kept working")

	err := r.bus.Install(context.Background(), 5, key1)
	assert.ErrorIs(t, err, osdp.ErrHasKey, "an installed reader needs no install")
}

// A reader that holds another key refuses SCBK-D: the install fails and the
// reader stays as it was, without a report of the attempt.
func TestInstallRefusedByAKeyedReader(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "new", Addr: 5, Uninstalled: true}},
		pds:     []osdpsim.Config{{Addr: 5, Key: key1}},
	})
	r.waitFor(t, "refused", kind(osdp.ReportOffline, 5), kind(osdp.ReportOnline, 5))
	err := r.bus.Install(context.Background(), 5, key2)
	require.ErrorIs(t, err, osdp.ErrRefused)
	assert.ErrorContains(t, err, "wrong_key")
	k, _ := pds[0].Key()
	assert.Equal(t, key1, k)
	assert.Equal(t, osdp.ReasonNoKey, status(t, r.bus, 5).Reason)
	select {
	case rep := <-r.reports:
		if rep.Kind == osdp.ReportOffline || rep.Kind == osdp.ReportOnline {
			t.Fatalf("the failed install was reported: %s", rep)
		}
	default:
	}
}

// A silent reader is waited for until the caller gives up; the reader then
// goes back to its configured key.
func TestInstallGivenUp(t *testing.T) {
	r, pds := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{{Name: "new", Addr: 5, Uninstalled: true}},
		pds:     []osdpsim.Config{{Addr: 5, Install: true}},
	})
	r.waitFor(t, "refused", kind(osdp.ReportOffline, 5), nil)
	pds[0].SetFaults(osdpsim.Faults{Silent: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := r.bus.Install(ctx, 5, key2)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	pds[0].SetFaults(osdpsim.Faults{})
	// Still in install mode, still refused for lack of a key: nothing moved.
	_, install := pds[0].Key()
	assert.True(t, install)
	require.NoError(t, r.bus.Install(context.Background(), 5, key2), "a later install works")
}

func TestReceivedBytes(t *testing.T) {
	r, _ := newRig(t, rigConfig{
		readers: []osdp.ReaderConfig{secureReader("r", 1, key1)},
		pds:     []osdpsim.Config{{Addr: 1, Key: key1}},
	})
	r.waitFor(t, "online", kind(osdp.ReportOnline, 1), offline)
	assert.NotZero(t, r.bus.ReceivedBytes())

	silent, _ := newRig(t, rigConfig{readers: []osdp.ReaderConfig{secureReader("r", 1, key1)}})
	silent.waitFor(t, "offline", kind(osdp.ReportOffline, 1), nil)
	assert.Zero(t, silent.bus.ReceivedBytes(), "nobody on the line")
}
