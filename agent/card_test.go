package agent_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/agent/agenttest"
)

// cardReasons are the reasons of the card checks (card.go).
var cardReasons = []agent.Reason{agent.ReasonCardReadFailed, agent.ReasonCardNotAuthenticated,
	agent.ReasonCardMismatch, agent.ReasonCardUnverified, agent.ReasonCardSuperseded}

func TestDecideCards(t *testing.T) {
	tue10 := time.Date(2026, 11, 24, 10, 0, 0, 0, mustLoc(t, "Europe/Berlin"))
	uidDoor := agent.Door{ID: "front", Mode: agent.ModeCardOrPIN, LockIDs: []string{agenttest.LockFront}}
	strict := uidDoor
	strict.Unfingerprinted = agent.FingerprintRequire
	desDoor := agent.Door{ID: "lab", Mode: agent.ModeCardOrPIN, CardMode: agent.CardModeDESFire, LockIDs: []string{agenttest.LockFront}}
	desTwo := desDoor
	desTwo.Mode = agent.ModeCardAndPIN

	const (
		fpAda   = "fp1;uid=04A1B2C3;atqa=0004;sak=08;ats=-;ver=-"
		fpClone = "fp1;uid=04A1B2C3;atqa=0044;sak=08;ats=-;ver=-"
		fpBob   = "fp1;uid=04B0B1B2;atqa=0004;sak=08;ats=-;ver=-"
	)
	site := agenttest.Site()
	site.Credentials = append(site.Credentials, agent.Credential{Key: "uid:04B0B1B2", Kind: agent.KindUID, Origin: agent.OriginLocal, UserID: "u-bob"})
	require.NoError(t, site.Validate())
	cache := agenttest.NewCache(site)
	cache.SetCard("uid:04A1B2C3", agent.CardRecord{Fingerprint: fpAda})
	cache.SetCard("tag:00000002", agent.CardRecord{Generation: 3})
	dc := &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}

	ada, bob := []byte{0x04, 0xA1, 0xB2, 0xC3}, []byte{0x04, 0xB0, 0xB1, 0xB2}
	uid := func(u []byte, check *agent.CardCheck) agent.Presented {
		p := agent.CardUID(u)
		p.Card = check
		return p
	}
	desUID := []byte{0x04, 1, 2, 3, 4, 5, 6}
	proven := func(tag string, gen uint32) agent.Presented {
		return agent.CardDESFire(desUID, tag, agent.CardCheck{Outcome: agent.CardOK, Generation: gen, KeyVersion: 1, Summary: "DESFire EV2"})
	}
	refused := func(cause string) agent.Presented {
		return agent.CardDESFire(desUID, "", agent.CardCheck{Outcome: agent.CardRefused, Cause: cause, Summary: "DESFire EV2"})
	}
	tests := []struct {
		name   string
		door   agent.Door
		creds  []agent.Presented
		reason agent.Reason
		user   string
		alarm  bool
		learn  *agent.CardLearning
		detail string
	}{
		{"uid: no fingerprint taken (Wiegand-like path)", uidDoor, []agent.Presented{agent.CardUID(ada)}, agent.ReasonGranted, "u-ada", false, nil, ""},
		{"uid: the enrolled card", uidDoor, []agent.Presented{uid(ada, &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fpAda})}, agent.ReasonGranted, "u-ada", false, nil, ""},
		{"uid: a copied UID on another chip", uidDoor, []agent.Presented{uid(ada, &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fpClone, Summary: "ISO/IEC 14443-3 card"})}, agent.ReasonCardMismatch, "u-ada", true, nil, "atqa"},
		{"uid: no fingerprint recorded, learn", uidDoor, []agent.Presented{uid(bob, &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fpBob})}, agent.ReasonGranted, "u-bob", false,
			&agent.CardLearning{Key: "uid:04B0B1B2", Card: agent.CardRecord{Fingerprint: fpBob}}, ""},
		{"uid: no fingerprint recorded, require", strict, []agent.Presented{uid(bob, &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fpBob})}, agent.ReasonCardUnverified, "u-bob", false, nil, "enrol it again"},
		{"uid: card pulled during the fingerprint", uidDoor, []agent.Presented{uid(ada, &agent.CardCheck{Outcome: agent.CardInterrupted, Cause: "removed"})}, agent.ReasonCardReadFailed, "", false, nil, "present it again"},
		{"uid: card broke the protocol", uidDoor, []agent.Presented{uid(ada, &agent.CardCheck{Outcome: agent.CardRefused, Cause: "protocol"})}, agent.ReasonCardReadFailed, "", false, nil, "protocol"},
		{"uid: unknown card", uidDoor, []agent.Presented{uid([]byte{9, 9, 9, 9}, &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fpBob})}, agent.ReasonUnknownCredential, "", false, nil, ""},
		{"uid door: a proven DESFire card", uidDoor, []agent.Presented{proven("00000001", 0)}, agent.ReasonGranted, "u-ada", false, nil, ""},

		{"desfire: proven card, first generation seen", desDoor, []agent.Presented{proven("00000001", 1)}, agent.ReasonGranted, "u-ada", false,
			&agent.CardLearning{Key: "tag:00000001", Card: agent.CardRecord{Generation: 1}}, ""},
		{"desfire: the current generation", desDoor, []agent.Presented{proven("00000002", 3)}, agent.ReasonGranted, "u-bob", false, nil, ""},
		{"desfire: a replaced card", desDoor, []agent.Presented{proven("00000002", 2)}, agent.ReasonCardSuperseded, "u-bob", false, nil, "replaced by generation 3"},
		{"desfire: a newer card", desDoor, []agent.Presented{proven("00000002", 4)}, agent.ReasonGranted, "u-bob", false,
			&agent.CardLearning{Key: "tag:00000002", Card: agent.CardRecord{Generation: 4}}, ""},
		{"desfire: proven but the tag is nobody's", desDoor, []agent.Presented{proven("12345678", 1)}, agent.ReasonUnknownCredential, "", false, nil, ""},
		{"desfire: proven, user blocked", desDoor, []agent.Presented{proven("00000003", 1)}, agent.ReasonUserBlocked, "u-carol", false,
			&agent.CardLearning{Key: "tag:00000003", Card: agent.CardRecord{Generation: 1}}, ""},
		{"desfire: wrong key", desDoor, []agent.Presented{refused("wrong_key")}, agent.ReasonCardNotAuthenticated, "", false, nil, "wrong_key"},
		{"desfire: a Classic with a copied UID", desDoor, []agent.Presented{refused("not_desfire")}, agent.ReasonCardNotAuthenticated, "", false, nil, "not_desfire"},
		{"desfire: replayed answer", desDoor, []agent.Presented{refused("integrity")}, agent.ReasonCardNotAuthenticated, "", true, nil, "integrity"},
		{"desfire: the card failed its side of the proof", desDoor, []agent.Presented{refused("card_auth")}, agent.ReasonCardNotAuthenticated, "", true, nil, "card_auth"},
		{"desfire: card pulled mid-authentication", desDoor, []agent.Presented{agent.CardDESFire(desUID, "", agent.CardCheck{Outcome: agent.CardInterrupted, Cause: "removed"})}, agent.ReasonCardReadFailed, "", false, nil, "removed"},
		{"desfire: a bare UID proves nothing", desDoor, []agent.Presented{agent.CardUID(ada)}, agent.ReasonWrongCredentialType, "", false, nil, "DESFire"},
		{"desfire: a Wiegand card proves nothing", desDoor, []agent.Presented{agent.CardWiegand(agent.Wiegand{Format: "H10301", Facility: 12, Card: 3456})}, agent.ReasonWrongCredentialType, "", false, nil, "DESFire"},
		{"desfire: a typed tag number proves nothing", desDoor, []agent.Presented{agent.CardTagNumber("00000001")}, agent.ReasonWrongCredentialType, "", false, nil, "DESFire"},
		{"desfire: a PIN is still a PIN", desDoor, []agent.Presented{agent.KeypadPIN("111111")}, agent.ReasonGranted, "u-ada", false, nil, ""},
		{"desfire card_and_pin: card and PIN", desTwo, []agent.Presented{proven("00000001", 1), agent.KeypadPIN("111111")}, agent.ReasonGranted, "u-ada", false,
			&agent.CardLearning{Key: "tag:00000001", Card: agent.CardRecord{Generation: 1}}, ""},
		{"desfire card_and_pin: refused card and PIN", desTwo, []agent.Presented{refused("wrong_key"), agent.KeypadPIN("111111")}, agent.ReasonCardNotAuthenticated, "", false, nil, ""},
	}
	seen := map[agent.Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dc.Decide(context.Background(), tt.door, tue10, tt.creds...)
			require.NoError(t, err)
			assert.Equal(t, tt.reason, d.Reason, d.Detail)
			assert.Equal(t, tt.reason == agent.ReasonGranted, d.Granted)
			if tt.user != "" {
				require.NotNil(t, d.User, d.Detail)
				assert.Equal(t, tt.user, d.User.ID)
			}
			assert.Equal(t, tt.alarm, d.Alarm != "", "alarm %q", d.Alarm)
			if tt.learn == nil {
				assert.Nil(t, d.Learn)
			} else if assert.NotNil(t, d.Learn) {
				assert.Equal(t, tt.learn.Key, d.Learn.Key)
				assert.Equal(t, tt.learn.Card, d.Learn.Card)
				assert.NotEmpty(t, d.Learn.What)
			}
			assert.Contains(t, d.Detail, tt.detail)
			seen[d.Reason] = true
		})
	}
	for _, r := range cardReasons {
		assert.True(t, seen[r], "no test produced %s", r)
	}
}

func TestDESFirePresented(t *testing.T) {
	p := agent.CardDESFire([]byte{0x04, 1, 2, 3, 4, 5, 6}, "2301234", agent.CardCheck{Outcome: agent.CardOK})
	key, err := p.Key(nil)
	require.NoError(t, err)
	assert.Equal(t, "tag:02301234", key)
	assert.Equal(t, "desfire:tag …234", p.Masked())
	assert.NotContains(t, p.Masked(), "2301234")
	p = agent.CardDESFire([]byte{0x04, 1, 2, 3, 4, 5, 6}, "", agent.CardCheck{Outcome: agent.CardRefused, Cause: "wrong_key"})
	_, err = p.Key(nil)
	assert.ErrorIs(t, err, agent.ErrInvalidCredential)
	assert.Equal(t, "desfire:uid 7 bytes …0506", p.Masked())
	assert.True(t, agent.KindDESFire.IsCard())
}

func TestFingerprintDiff(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want []string
	}{
		{"fp1;uid=01;sak=08;ats=-", "fp1;uid=01;sak=20;ats=0675", []string{"sak", "ats"}},
		{"fp1;uid=01", "fp1;uid=01", nil},
		{"fp1;uid=01", "fp2;uid=01", []string{"fingerprint"}},
		{"fp1;uid=01;sak=08", "fp1;uid=01", []string{"fingerprint"}},
		{"fp1;uid=01;sak=08", "fp1;uid=01;atqa=08", []string{"fingerprint"}},
		{"", "fp1;uid=01", []string{"fingerprint"}},
	} {
		assert.Equal(t, tt.want, agent.FingerprintDiff(tt.a, tt.b), "%s vs %s", tt.a, tt.b)
	}
}

func TestDoorValidateCards(t *testing.T) {
	d := agent.Door{ID: "a", Mode: agent.ModeCard, LockIDs: []string{"x"}, CardMode: "nfc"}
	assert.ErrorContains(t, d.Validate(), `card mode "nfc"`)
	d = agent.Door{ID: "a", Mode: agent.ModeCard, LockIDs: []string{"x"}, Unfingerprinted: "maybe"}
	assert.ErrorContains(t, d.Validate(), `fingerprint policy "maybe"`)
	d = agent.Door{ID: "a", Mode: agent.ModeCard, LockIDs: []string{"x"}, CardMode: agent.CardModeDESFire, Unfingerprinted: agent.FingerprintRequire}
	assert.NoError(t, d.Validate())
}

// cardRig is a door whose decider and card store are one in-memory cache.
func cardRig(t *testing.T, door func(*agent.Door)) (*rig, *agenttest.Cache) {
	t.Helper()
	cache := agenttest.NewCache(agenttest.Site())
	r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) {
		c.Decider = &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}
		c.Cards = cache
		c.Enrolments = cache
		door(&c.Door)
	})
	return r.start(), cache
}

func TestControllerCardAlarmAndLearning(t *testing.T) {
	const fp, clone = "fp1;uid=04A1B2C3;atqa=0004;sak=20;ats=0675", "fp1;uid=04A1B2C3;atqa=0004;sak=08;ats=-"
	withFP := func(fp string) agent.Presented {
		p := agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3})
		p.Card = &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fp, Summary: "DESFire EV2"}
		return p
	}
	t.Run("uid door learns, then refuses a copy with an alarm", func(t *testing.T) {
		r, cache := cardRig(t, func(*agent.Door) {})
		r.present(withFP(fp))
		assert.True(t, r.relay.On())
		assert.ElementsMatch(t, []agent.EventType{agent.EventAccessGranted, agent.EventRelayOn, agent.EventCardLearned}, r.types())
		learned := r.last(agent.EventCardLearned)
		assert.Equal(t, "u-ada", learned.User.ID)
		assert.Contains(t, learned.Detail, "first fingerprint")
		f, _, err := cache.Lookup(context.Background(), "uid:04A1B2C3")
		require.NoError(t, err)
		assert.Equal(t, fp, f.Card.Fingerprint)

		r.advance(10 * time.Second)
		r.present(withFP(clone))
		assert.False(t, r.relay.On())
		denied := r.last(agent.EventAccessDenied)
		assert.Equal(t, agent.ReasonCardMismatch, denied.Reason)
		alarm := r.last(agent.EventCardAlarm)
		assert.Equal(t, agent.ReasonCardMismatch, alarm.Reason)
		assert.Equal(t, "u-ada", alarm.User.ID, "whose card was copied")
		assert.Contains(t, alarm.Detail, "sak")
		assert.NotContains(t, eventsJSON(t, r.sink.all()), "04A1B2C3", "the full UID never reaches an event")
		assert.Equal(t, 1, r.count(agent.EventCardLearned), "a mismatch teaches nothing")

		r.present(withFP(fp)) // the real card still opens
		assert.True(t, r.relay.On())
	})
	t.Run("desfire door: a replayed answer is an alarm", func(t *testing.T) {
		r, _ := cardRig(t, func(d *agent.Door) { d.CardMode = agent.CardModeDESFire })
		r.present(agent.CardDESFire([]byte{4, 1, 2, 3, 4, 5, 6}, "", agent.CardCheck{Outcome: agent.CardRefused, Cause: "integrity"}))
		assert.False(t, r.relay.On())
		assert.Equal(t, []agent.EventType{agent.EventAccessDenied, agent.EventCardAlarm}, r.types())
		r.present(agent.CardDESFire([]byte{4, 1, 2, 3, 4, 5, 6}, "", agent.CardCheck{Outcome: agent.CardRefused, Cause: "wrong_key"}))
		assert.Equal(t, 1, r.count(agent.EventCardAlarm), "a foreign card is no alarm")
		assert.Equal(t, agent.ReasonCardNotAuthenticated, r.last(agent.EventAccessDenied).Reason)
	})
	t.Run("desfire door: a newer generation is recorded once", func(t *testing.T) {
		r, cache := cardRig(t, func(d *agent.Door) { d.CardMode = agent.CardModeDESFire })
		card := func(gen uint32) agent.Presented {
			return agent.CardDESFire([]byte{4, 1, 2, 3, 4, 5, 6}, "00000001", agent.CardCheck{Outcome: agent.CardOK, Generation: gen})
		}
		r.present(card(2))
		assert.True(t, r.relay.On())
		assert.Equal(t, 1, r.count(agent.EventCardLearned))
		r.advance(10 * time.Second)
		r.present(card(2))
		assert.Equal(t, 1, r.count(agent.EventCardLearned))
		r.advance(10 * time.Second)
		r.present(card(1))
		assert.False(t, r.relay.On())
		assert.Equal(t, agent.ReasonCardSuperseded, r.last(agent.EventAccessDenied).Reason)
		f, _, err := cache.Lookup(context.Background(), "tag:00000001")
		require.NoError(t, err)
		assert.Equal(t, uint32(2), f.Card.Generation)
	})
	t.Run("card_and_pin learns at the card", func(t *testing.T) {
		cache := agenttest.NewCache(agenttest.Site())
		r := newRig(t, agent.ModeCardAndPIN, func(c *agent.ControllerConfig) {
			c.Decider = &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}
			c.Cards = cache
		}).start()
		r.present(withFP(fp))
		assert.Equal(t, []agent.EventType{agent.EventAwaitingPIN, agent.EventCardLearned}, r.types())
		r.keys("111111#")
		assert.True(t, r.relay.On())
		assert.Equal(t, 1, r.count(agent.EventCardLearned))
	})
	t.Run("a failing store leaves the card unlearned and the door open", func(t *testing.T) {
		r, cache := cardRig(t, func(*agent.Door) {})
		cache.Fail(errors.New("disk I/O error")) // lookups fail too: fail secure
		r.present(withFP(fp))
		assert.False(t, r.relay.On())
		assert.Zero(t, r.count(agent.EventCardLearned))
	})
}

func TestEnrolRecordsTheFingerprint(t *testing.T) {
	const fp = "fp1;uid=04112233;atqa=0004;sak=08;ats=-"
	r, cache := cardRig(t, func(*agent.Door) {})
	_, ch := arm(t, r, "2")
	p := agent.CardUID([]byte{0x04, 0x11, 0x22, 0x33})
	p.Card = &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: fp, Summary: "MIFARE Classic"}
	r.present(p)
	got := <-ch
	require.Equal(t, agent.EnrolEnrolled, got.Outcome, "%v", got.Err)
	assert.Contains(t, r.last(agent.EventEnrolled).Detail, "with its fingerprint (MIFARE Classic)")
	f, _, err := cache.Lookup(context.Background(), "uid:04112233")
	require.NoError(t, err)
	assert.Equal(t, fp, f.Card.Fingerprint)

	for _, tt := range []struct {
		name string
		p    agent.Presented
		want string
	}{
		{"a DESFire card", agent.CardDESFire([]byte{4, 1, 2, 3, 4, 5, 6}, "00000001", agent.CardCheck{Outcome: agent.CardOK}), "portier card issue"},
		{"a card pulled mid-read", func() agent.Presented {
			q := agent.CardUID([]byte{0x04, 0x11, 0x22, 0x33})
			q.Card = &agent.CardCheck{Outcome: agent.CardInterrupted, Cause: "removed"}
			return q
		}(), "present it again"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ch := arm(t, r, "2")
			r.present(tt.p)
			got := <-ch
			assert.Equal(t, agent.EnrolFailed, got.Outcome)
			assert.ErrorContains(t, got.Err, tt.want)
		})
	}
}

// heldCards is a card store whose writes wait until the test lets them go
// (storage that takes its time: an SD card's fsync, or a stall).
type heldCards struct {
	*agenttest.Cache
	entered chan struct{}
	release chan struct{}
}

func (h *heldCards) LearnCard(ctx context.Context, l agent.CardLearning) error {
	h.entered <- struct{}{}
	<-h.release
	return h.Cache.LearnCard(ctx, l)
}

// notifySink passes events on a channel as they are recorded.
type notifySink chan agent.Event

func (s notifySink) Record(_ context.Context, e agent.Event) error {
	s <- e
	return nil
}

// TestCardLearningNeverHoldsTheDoor: a card record waits for storage off
// the door's loop, so the next tap is decided while the last one's record
// is still being written; card_learned follows the stored record, and
// Flush returns only once it is stored.
func TestCardLearningNeverHoldsTheDoor(t *testing.T) {
	cache := agenttest.NewCache(agenttest.Site())
	cards := &heldCards{Cache: cache, entered: make(chan struct{}), release: make(chan struct{})}
	events := make(notifySink, 64)
	r := newRig(t, agent.ModeCard, func(c *agent.ControllerConfig) {
		c.Decider = &agent.Decider{Cache: cache, PINKey: agenttest.PINKey()}
		c.Cards = cards
		c.Events = events
	}).start()
	tap := func() {
		p := agent.CardUID([]byte{0x04, 0xA1, 0xB2, 0xC3})
		p.Card = &agent.CardCheck{Outcome: agent.CardOK, Fingerprint: "fp1;uid=04A1B2C3;atqa=0004;sak=20;ats=0675", Summary: "DESFire EV2"}
		require.NoError(t, r.ctl.Present(p))
	}
	next := func(types ...agent.EventType) agent.Event {
		t.Helper()
		for e := range events {
			if slices.Contains(types, e.Type) {
				return e
			}
		}
		t.Fatal("event stream closed")
		return agent.Event{}
	}

	tap()
	assert.Equal(t, agent.EventAccessGranted, next(agent.EventAccessGranted, agent.EventCardLearned).Type)
	<-cards.entered // the first record is being written, and stays so
	tap()
	assert.Equal(t, agent.EventAccessGranted, next(agent.EventAccessGranted, agent.EventCardLearned).Type,
		"the second tap is decided while the first record is still being written")

	flushed := make(chan error, 1)
	go func() { flushed <- r.ctl.Flush(context.Background()) }()
	close(cards.release)
	<-cards.entered // the second tap's record (it was not stored when decided)
	assert.Equal(t, agent.EventCardLearned, next(agent.EventCardLearned).Type)
	require.NoError(t, <-flushed)
	f, _, err := cache.Lookup(context.Background(), "uid:04A1B2C3")
	require.NoError(t, err)
	assert.NotEmpty(t, f.Card.Fingerprint)
}
