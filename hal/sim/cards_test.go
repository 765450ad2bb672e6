package sim_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/sim"
	"github.com/portier-io/portier/hal/simtime"
)

var testSite = desfire.SiteKeys{
	SystemID: []byte("test site"),
	PICC:     bytes.Repeat([]byte{0x11}, 16),
	App:      bytes.Repeat([]byte{0x22}, 16),
	Read:     bytes.Repeat([]byte{0x33}, 16),
	Version:  1,
}

const adaUID = "04:A1:B2:C3:D4:E5:F6"

// cardConfig is config() with lab a desfire door and the named cards.
func cardConfig() hal.Config {
	c := config()
	c.Cards = hal.CardsConfig{Modes: map[string]agent.CardMode{"lab": agent.CardModeDESFire}, Sites: []desfire.SiteKeys{testSite}}
	c.SimCards = map[string]hal.SimCard{
		"ada":     {Type: hal.SimDESFireEV2, UID: adaUID, TagNumber: "2301234"},
		"copy":    {Type: hal.SimClassic, UID: adaUID},
		"blank":   {Type: hal.SimDESFireEV3, UID: "04:10:20:30:40:50:60"},
		"foreign": {Type: hal.SimDESFireEV2, UID: "04:11:22:33:44:55:66", TagNumber: "2301234", ForeignSite: true},
		"pulled":  {Type: hal.SimDESFireEV2, UID: "04:22:33:44:55:66:77", TagNumber: "2301234", Fault: hal.SimFaultRemovedMidAuth},
		"replay":  {Type: hal.SimDESFireEV1, UID: "04:33:44:55:66:77:88", TagNumber: "2301234", Generation: 2, Fault: hal.SimFaultReplayRead},
		"fob":     {Type: hal.SimUltralight, UID: "04:44:55:66:77:88:99"},
	}
	return c
}

func newCardBoard(t *testing.T) *sim.Board {
	t.Helper()
	b, err := sim.New(cardConfig(), doorIDs, sim.Options{Clock: simtime.New()})
	require.NoError(t, err)
	return b
}

// present runs a sim command and returns the credential it produced.
func present(t *testing.T, b *sim.Board, line string) agent.Presented {
	t.Helper()
	require.NoError(t, b.Exec(context.Background(), line, &bytes.Buffer{}))
	evs := drain(t, b)
	require.Len(t, evs, 1, line)
	require.Equal(t, hal.EventCredential, evs[0].Kind)
	return evs[0].Credential
}

func TestNamedCardsAtAUIDDoor(t *testing.T) {
	b := newCardBoard(t)
	ada := present(t, b, "card front ada")
	assert.Equal(t, agent.KindUID, ada.Kind)
	require.NotNil(t, ada.Card)
	assert.Equal(t, agent.CardOK, ada.Card.Outcome)
	assert.Contains(t, ada.Card.Fingerprint, "sak=20;ats=067577810280;ver=04010112")
	assert.NotContains(t, ada.Card.Fingerprint, "orig=-", "the simulated vendor is trusted on the sim board")
	assert.Equal(t, "DESFire EV2, originality signature verified", ada.Card.Summary)
	assert.Equal(t, ada.Card.Fingerprint, present(t, b, "card front ada").Card.Fingerprint, "the same card answers the same")

	copied := present(t, b, "card front copy")
	assert.Equal(t, ada.UID, copied.UID, "same UID")
	assert.NotEqual(t, ada.Card.Fingerprint, copied.Card.Fingerprint, "another chip")
	assert.Subset(t, agent.FingerprintDiff(copied.Card.Fingerprint, ada.Card.Fingerprint), []string{"atqa", "sak", "ats", "ver", "sig"})
	tapped := present(t, b, "tap front "+adaUID)
	assert.Equal(t, "MIFARE Ultralight or NTAG", tapped.Card.Summary)
	assert.Equal(t, "MIFARE Ultralight or NTAG", present(t, b, "card front fob").Card.Summary)

	// Fingerprints do not depend on the board: a restart answers the same.
	again := newCardBoard(t)
	assert.Equal(t, ada.Card.Fingerprint, present(t, again, "card front ada").Card.Fingerprint)
}

func TestNamedCardsAtADESFireDoor(t *testing.T) {
	b := newCardBoard(t)
	ada := present(t, b, "card lab ada")
	assert.Equal(t, agent.KindDESFire, ada.Kind)
	assert.Equal(t, "02301234", ada.TagNumber)
	assert.Equal(t, agent.CardCheck{Outcome: agent.CardOK, Generation: 1, KeyVersion: 1, Summary: "DESFire, site key version 1, card generation 1"}, *ada.Card)

	for _, tt := range []struct {
		card    string
		outcome agent.CardOutcome
		cause   string
	}{
		{"copy", agent.CardRefused, "not_desfire"},
		{"fob", agent.CardRefused, "not_desfire"},
		{"foreign", agent.CardRefused, "wrong_key"},
		{"blank", agent.CardRefused, "not_issued"},
		{"pulled", agent.CardInterrupted, "removed"},
		{"pulled", agent.CardInterrupted, "removed"},
	} {
		p := present(t, b, "card lab "+tt.card)
		assert.Equal(t, agent.KindDESFire, p.Kind, tt.card)
		assert.Empty(t, p.TagNumber, tt.card)
		assert.Equal(t, tt.outcome, p.Card.Outcome, tt.card)
		assert.Equal(t, tt.cause, p.Card.Cause, tt.card)
	}
	first := present(t, b, "card lab replay")
	assert.Equal(t, agent.CardOK, first.Card.Outcome, "nothing recorded to replay yet")
	assert.Equal(t, uint32(2), first.Card.Generation)
	second := present(t, b, "card lab replay")
	assert.Equal(t, agent.CardRefused, second.Card.Outcome, "the previous session's answer fails this session's MAC")
	assert.Equal(t, "integrity", second.Card.Cause)
}

func TestIssueASimulatedCard(t *testing.T) {
	b := newCardBoard(t)
	ctx := context.Background()
	before := present(t, b, "card front blank").Card.Fingerprint
	done, waiting := make(chan error, 1), make(chan struct{})
	var seen hal.PresentedCard
	go func() {
		done <- b.CardJob(ctx, "lab", func(ctx context.Context, c hal.PresentedCard) error {
			seen = c
			if c.Link == nil {
				return errors.New("not ISO/IEC 14443-4")
			}
			return desfire.Issue(ctx, desfire.New(c.Link, desfire.Options{}), c.UID, testSite,
				desfire.Identity{TagNumber: 2301235, Generation: 1, Issued: time.Unix(1_800_000_000, 0)}, desfire.IssueOptions{})
		}, func() { close(waiting) })
	}()
	<-waiting
	require.NoError(t, b.Exec(ctx, "card lab blank", &bytes.Buffer{}))
	require.NoError(t, <-done)
	assert.Equal(t, byte(0x20), seen.SAK)
	assert.NotEmpty(t, seen.ATS)
	assert.Empty(t, drain(t, b), "the job took the card: no tap")
	p := present(t, b, "card lab blank")
	assert.Equal(t, "02301235", p.TagNumber, "the issued card now opens")
	assert.Equal(t, agent.CardOK, p.Card.Outcome)
	assert.Equal(t, before, present(t, b, "card front blank").Card.Fingerprint,
		"issuing changes no answer a fingerprint takes (the card left the field: no session lingers)")
}

func TestCardJobRules(t *testing.T) {
	b := newCardBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	cancel()
	assert.ErrorIs(t, b.CardJob(ctx, "lab", func(context.Context, hal.PresentedCard) error { return nil }, nil), context.Canceled)
	assert.ErrorContains(t, b.CardJob(context.Background(), "studio", nil, nil), "no MFRC522")
	assert.ErrorContains(t, b.CardJob(context.Background(), "attic", nil, nil), "no door")
}

func TestCardCommands(t *testing.T) {
	b := newCardBoard(t)
	var out bytes.Buffer
	require.NoError(t, b.Exec(context.Background(), "cards", &out))
	assert.Contains(t, out.String(), "ada          DESFire EV2, UID uid:7 bytes …E5F6, issued for tag:…234")
	assert.Contains(t, out.String(), "blank        DESFire EV3, UID uid:7 bytes …5060, blank (factory keys)")
	assert.Contains(t, out.String(), "copy         MIFARE Classic")
	assert.Contains(t, out.String(), "fault removed_mid_auth")
	assert.NotContains(t, out.String(), "D4E5F6", "UIDs are masked")
	for line, want := range map[string]string{
		"card front nobody": `no card "nobody" (cards: ada, blank, copy, fob, foreign, pulled, replay)`,
		"card studio ada":   "no MFRC522",
		"card front":        "usage: card DOOR NAME",
		"cards x":           "usage: cards",
	} {
		assert.ErrorContains(t, b.Exec(context.Background(), line, &bytes.Buffer{}), want, line)
	}
	out.Reset()
	require.NoError(t, b.Exec(context.Background(), "help", &out))
	assert.Contains(t, out.String(), "card DOOR NAME")
}

func TestSimCardConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*hal.Config)
		want string
	}{
		{"issued without the masters", func(c *hal.Config) {
			c.Cards.Sites = []desfire.SiteKeys{{Read: testSite.Read, SystemID: testSite.SystemID, Version: 1}}
		}, "no key set with all three masters"},
		{"desfire door without keys", func(c *hal.Config) { c.Cards.Sites = nil; c.SimCards = nil }, "no site read key"},
		{"bad type", func(c *hal.Config) { c.SimCards["x"] = hal.SimCard{Type: "felica", UID: "01020304"} }, `sim_cards.x.type: "felica"`},
		{"DESFire with 4 bytes", func(c *hal.Config) { c.SimCards["x"] = hal.SimCard{Type: hal.SimDESFireEV2, UID: "01020304"} }, "7-byte UID"},
		{"fault on a Classic", func(c *hal.Config) {
			c.SimCards["x"] = hal.SimCard{Type: hal.SimClassic, UID: "01020304", Fault: hal.SimFaultReplayRead}
		}, "are for DESFire cards"},
		{"foreign without tag", func(c *hal.Config) {
			c.SimCards["x"] = hal.SimCard{Type: hal.SimDESFireEV2, UID: "04010203040506", ForeignSite: true}
		}, "give its tag_number"},
		{"unknown fault", func(c *hal.Config) {
			c.SimCards["x"] = hal.SimCard{Type: hal.SimDESFireEV2, UID: "04010203040506", Fault: "melts"}
		}, `fault: "melts"`},
		{"periph", func(c *hal.Config) { c.Driver = hal.DriverPeriph }, "only the simulated board"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cardConfig()
			tt.edit(&c)
			_, err := sim.New(c, doorIDs, sim.Options{})
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.want), "%v", err)
		})
	}
}

func TestSelfTestExercisesISO14443_4(t *testing.T) {
	b := newCardBoard(t)
	checks := b.SelfTest(context.Background(), false)
	var iso []hal.Check
	for _, c := range checks {
		assert.True(t, c.OK, "%s: %s", c.Name, c.Detail)
		if strings.Contains(c.Name, "ISO/IEC 14443-4") {
			iso = append(iso, c)
		}
	}
	require.Len(t, iso, 2, "front and lab")
	assert.Equal(t, "front: ISO/IEC 14443-4 (card mode uid)", iso[0].Name)
	assert.Equal(t, "lab: ISO/IEC 14443-4 (card mode desfire)", iso[1].Name)
	assert.Contains(t, iso[1].Detail, "simulated, with sim card ada on the reader: RATS and card commands work (ATS 06 75 77 81 02 80): DESFire EV2, originality signature verified")
}
