package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/mqtt"
	"github.com/portier-io/portier/cloud/mqtt/mqtttest"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/hal/desfire"
)

// cardConfig is a gateway with a uid door (front) and a desfire door (lab),
// both opened by the demo site's residents at any hour, with an issuing
// station's key file and named simulated cards.
const cardConfig = `gateway_id: e2e
state_dir: %[1]s
clock_sync_check: "off"
cards:
  desfire_key_file: %[1]s/desfire.keys
doors:
  - id: front
    name: Front door
    mode: card_or_pin
    salto_locks: [7c1e4a52-0000-4000-8000-000000000001]
    access_time: 300ms
  - id: lab
    name: Maker lab
    mode: card
    credential: desfire
    salto_locks: [7c1e4a52-0000-4000-8000-000000000001]
    access_time: 300ms
mqtt:
  broker: tcp://%[2]s
  site_id: e2e-site
  telemetry_interval: 1s
hardware:
  driver: sim
  sim_latch_file: %[1]s/latch.json
  sim_cards:
    ada: {type: desfire_ev2, uid: "04:A1:B2:C3:D4:E5:F6", tag_number: "02301234"}
    copy: {type: classic, uid: "04:A1:B2:C3:D4:E5:F6"}
    blank: {type: desfire_ev3, uid: "04:B1:C2:D3:E4:F5:06"}
    foreign: {type: desfire_ev2, uid: "04:C1:D2:E3:F4:05:16", tag_number: "02301234", foreign_site: true}
    pulled: {type: desfire_ev2, uid: "04:D1:E2:F3:04:15:26", tag_number: "02301234", fault: removed_mid_auth}
    replay: {type: desfire_ev1, uid: "04:E1:F2:03:14:25:36", tag_number: "02301234", fault: replay_read}
  doors:
    front:
      mfrc522: {spi: SPI0.0}
      relay: {pin: GPIO17, active_low: true}
    lab:
      mfrc522: {spi: SPI0.1}
      relay: {pin: GPIO18, active_low: true}
`

// siteKeys is the test site's issuing key file.
const siteKeys = `system_id: e2e test site
keys:
  - version: 1
    picc: 0102030405060708090A0B0C0D0E0F10
    app: 1112131415161718191A1B1C1D1E1F20
    read: 2122232425262728292A2B2C2D2E2F30
`

// TestCardsEndToEnd runs the real binary on the simulated board: a copied
// UID refused at a uid door with an alarm on MQTT; at a desfire door the
// site's card opens and a copy, another site's card, a card pulled
// mid-authentication and a replayed answer are refused; a blank card is
// issued with `portier card issue` (the card it replaces is refused from
// then on), opens both doors and is inspected. Every message the gateway
// publishes holds to docs/asyncapi.yaml.
func TestCardsEndToEnd(t *testing.T) {
	srv, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	tp := mqtt.Topics{Site: "e2e-site", Gateway: "e2e"}.WithDefaults()
	c := captureContract(t, srv, tp)
	g := newGatewayConfig(t, func(dir string) string {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "desfire.keys"), []byte(siteKeys), 0o600))
		return fmt.Sprintf(cardConfig, dir, srv.Addr())
	})
	out, errOut, code := runPortier(t, g.env, "check-config", "--config", g.cfg)
	require.Equal(t, 0, code, "%s%s", out, errOut)
	g.start()
	g.follow()
	g.waitEvent(agent.EventControllerStarted)

	type result struct {
		typ    agent.EventType
		reason agent.Reason
	}
	// present shows a card and returns the door's access decision event
	// (and the alarm that follows a forged card).
	present := func(door, card string) agent.Event {
		t.Helper()
		g.sim("card " + door + " " + card)
		for {
			e := g.waitAny(agent.EventAccessGranted, agent.EventAccessDenied)
			if e.Door == door {
				return e
			}
		}
	}
	decided := func(e agent.Event) result { return result{e.Type, e.Reason} }
	granted := result{agent.EventAccessGranted, agent.ReasonGranted}

	// A uid door: the card's fingerprint is learned, a copied UID refused.
	assert.Equal(t, granted, decided(present("front", "ada")))
	assert.Contains(t, g.waitEvent(agent.EventCardLearned).Detail, "first fingerprint")
	copied := present("front", "copy")
	assert.Equal(t, result{agent.EventAccessDenied, agent.ReasonCardMismatch}, decided(copied))
	assert.Equal(t, "Ada Lovelace", copied.User.Name, "whose card was copied")
	alarm := g.waitEvent(agent.EventCardAlarm)
	assert.Equal(t, agent.ReasonCardMismatch, alarm.Reason)
	onAlarm := c.await("the card alarm on MQTT", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": "card_alarm"}))
	assert.Equal(t, tp.Event(mqtt.CategoryAlarm), onAlarm.topic)
	assert.Equal(t, "card_mismatch", onAlarm.json()["reason"])
	assert.Equal(t, granted, decided(present("front", "ada")), "the real card still opens")

	// A desfire door.
	ada := present("lab", "ada")
	assert.Equal(t, granted, decided(ada))
	assert.Equal(t, agent.KindDESFire, ada.Kind)
	assert.Equal(t, "desfire:tag …234", ada.Credential)
	assert.Contains(t, g.waitEvent(agent.EventCardLearned).Detail, "card generation 1")
	for _, tt := range []struct {
		card   string
		reason agent.Reason
		detail string
	}{
		{"copy", agent.ReasonCardNotAuthenticated, "not_desfire"},
		{"foreign", agent.ReasonCardNotAuthenticated, "wrong_key"},
		{"pulled", agent.ReasonCardReadFailed, "removed"},
		{"blank", agent.ReasonCardNotAuthenticated, "not_issued"},
	} {
		e := present("lab", tt.card)
		assert.Equal(t, result{agent.EventAccessDenied, tt.reason}, decided(e), tt.card)
		assert.Contains(t, e.Detail, tt.detail, tt.card)
	}
	assert.Equal(t, granted, decided(present("lab", "replay")), "nothing recorded to replay yet")
	replayed := present("lab", "replay")
	assert.Equal(t, result{agent.EventAccessDenied, agent.ReasonCardNotAuthenticated}, decided(replayed))
	assert.Contains(t, replayed.Detail, "integrity")
	assert.Contains(t, g.waitEvent(agent.EventCardAlarm).Detail, "replayed")

	// Issue the blank card as Ada's replacement at the lab's reader. Its
	// generation is the minute of issue (desfire.NextGeneration): far past
	// Ada's card's 1, whichever station issued that one.
	before := desfire.NextGeneration(1, time.Now())
	out, steps, err := g.cardCommand("card lab blank", "issue", "lab", "--tag-number", "2301234")
	require.NoError(t, err, steps)
	gen := generationIn(t, steps, `card generation (\d+): the card issued before for this tag number \(generation 1\) is refused`)
	assert.GreaterOrEqual(t, gen, before)
	assert.LessOrEqual(t, gen, desfire.NextGeneration(1, time.Now()))
	assert.Contains(t, steps, "held by Ada Lovelace")
	assert.Contains(t, steps, "replacing the factory card master key")
	assert.Contains(t, out, fmt.Sprintf("issued: tag number 02301234, card generation %d, site key version 1, held by Ada Lovelace", gen))
	issued := g.waitEvent(agent.EventCardIssued)
	assert.Equal(t, "lab", issued.Door)
	assert.Equal(t, "Ada Lovelace", issued.User.Name)
	assert.Equal(t, localActor(), issued.Actor, "who issued it")
	assert.True(t, strings.HasPrefix(issued.CommandID, "local-"), issued.CommandID)
	for _, k := range []string{"0102030405060708", "2122232425262728"} {
		assert.NotContains(t, steps+out+issued.Detail, k, "no key is ever shown")
	}

	assert.Equal(t, granted, decided(present("lab", "blank")), "the new card opens the desfire door")
	assert.Equal(t, granted, decided(present("front", "blank")), "and the uid door, by its UID and fingerprint")
	assert.Equal(t, result{agent.EventAccessDenied, agent.ReasonCardSuperseded}, decided(present("lab", "ada")), "the card it replaced is refused")

	// Inspect tells what the card is, and no key.
	report, steps, err := g.cardCommand("card lab blank", "inspect", "lab", "--json")
	require.NoError(t, err, steps)
	var rep control.CardReport
	require.NoError(t, json.Unmarshal([]byte(report), &rep), report)
	assert.Equal(t, "issued", rep.Site)
	assert.Equal(t, "02301234", rep.TagNumber)
	assert.Equal(t, gen, rep.Generation)
	assert.Equal(t, "this site's (key version 1)", rep.CardMasterKey)
	assert.Equal(t, "DESFire EV3, originality signature verified", rep.Product)

	// A named card: another one presented is left alone.
	_, steps, err = g.cardCommand("card lab ada", "issue", "lab", "--tag-number", "2301234", "--uid", "04:B1:C2:D3:E4:F5:06")
	require.Error(t, err)
	assert.Contains(t, steps, "the card presented (UID 04A1B2C3D4E5F6) is not the one named (--uid 04B1C2D3E4F506): it was left untouched")
	g.waitCardFailure("issue tag:…234: card uid:7 bytes …E5F6: the card presented (UID uid:7 bytes …E5F6) is not the one named (--uid uid:7 bytes …F506): it was left untouched")
	_, steps, err = g.cardCommand("card lab blank", "issue", "lab", "--tag-number", "2301234")
	require.Error(t, err)
	assert.Contains(t, steps, "run again with --reissue --uid 04B1C2D3E4F506")
	failed := g.waitCardFailure("issue tag:…234: card uid:7 bytes …F506: the card already carries this site's application: run again with --reissue --uid uid:7 bytes …F506 to replace it (its old identity stops working; also after an issue that was interrupted)")
	onFailed := c.await("the failed issue on MQTT", 0, on("{prefix}/{site}/{gateway}/event/{category}", map[string]any{"type": "card_operation_failed"}))
	assert.Equal(t, tp.Event(mqtt.CategoryCommand), onFailed.topic)
	assert.Equal(t, failed.Actor, onFailed.json()["actor"])
	out, steps, err = g.cardCommand("card lab blank", "issue", "lab", "--tag-number", "2301234", "--reissue", "--uid", "04B1C2D3E4F506")
	require.NoError(t, err, steps)
	assert.Contains(t, steps, "deleting the card's old site application (reissue)")
	assert.Greater(t, generationIn(t, out, `card generation (\d+)`), gen, "a reissue is a newer generation")
	assert.Equal(t, granted, decided(present("lab", "blank")))

	// A card command with no card ends with a clear error.
	_, errOut, code = runPortier(t, g.env, "card", "inspect", "lab", "--wait", "50ms", "--config", g.cfg)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "no card was presented within 50ms")
	// An issue that saw no card is recorded; the inspect before it, which
	// changes nothing, is not (this is the next failure recorded).
	_, errOut, code = runPortier(t, g.env, "card", "issue", "lab", "--tag-number", "2301234", "--wait", "50ms", "--config", g.cfg)
	assert.Equal(t, 3, code)
	assert.Contains(t, errOut, "no card was presented within 50ms")
	g.waitCardFailure("issue tag:…234: no card presented: no card was presented within 50ms")
	_, steps, err = g.cardCommand("", "rekey", "lab")
	require.Error(t, err, steps)
	g.waitCardFailure("rekey: no card presented: the operator's command gave up before it ended: context canceled")
	_, errOut, code = runPortier(t, g.env, "card", "issue", "front", "--config", g.cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--tag-number is required")
	_, errOut, code = runPortier(t, g.env, "card", "issue", "front", "--tag-number", "1", "--reissue", "--config", g.cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--reissue needs --uid")

	require.Equal(t, 0, g.signal(syscall.SIGTERM))
	c.verify()
}

// cardCommand runs `portier card ARGS` against the running gateway,
// presents a card with the sim command present once it asks for one (with
// present "", the operator gives up instead: Ctrl-C), and returns its
// standard output, its steps (standard error) and its end.
func (g *gateway) cardCommand(present string, args ...string) (stdout, steps string, err error) {
	g.t.Helper()
	cmd := exec.Command(portierBin, append(append([]string{"card"}, args...), "--config", g.cfg)...)
	cmd.Env = g.env
	stderr, err := cmd.StderrPipe()
	require.NoError(g.t, err)
	var out strings.Builder
	cmd.Stdout = &out
	require.NoError(g.t, cmd.Start())
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var all []string
	for asked := false; !asked; {
		select {
		case l, ok := <-lines:
			require.True(g.t, ok, "portier card %s ended before it asked for the card:\n%s", args[0], strings.Join(all, "\n"))
			all = append(all, l)
			asked = strings.Contains(l, "present the card")
		case <-time.After(30 * time.Second):
			g.t.Fatalf("portier card %s did not ask for the card:\n%s", args[0], strings.Join(all, "\n"))
		}
	}
	if present == "" {
		require.NoError(g.t, cmd.Process.Signal(os.Interrupt))
	} else {
		g.sim(present)
	}
	for l := range lines {
		all = append(all, l)
	}
	err = cmd.Wait()
	return out.String(), strings.Join(all, "\n"), err
}

// TestCardKeyRotationEndToEnd follows docs/install.md's key rotation with
// the real binary (one gateway is issuing station and door): the doors have
// version 2's read key beside version 1's, the issuing station has only
// version 1's masters, so a card is issued on version 1; with version 2's
// masters added, `portier card rekey` moves the card, which still opens.
func TestCardKeyRotationEndToEnd(t *testing.T) {
	srv, err := mqtttest.Start(mqtttest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	const v2 = `  - version: 2
    read: 5152535455565758595A5B5C5D5E5F60
`
	var keyFile string
	g := newGatewayConfig(t, func(dir string) string {
		keyFile = filepath.Join(dir, "desfire.keys")
		require.NoError(t, os.WriteFile(keyFile, []byte(siteKeys+v2), 0o600))
		return fmt.Sprintf(cardConfig, dir, srv.Addr())
	})
	g.start()
	g.follow()
	g.waitEvent(agent.EventControllerStarted)
	present := func(card string) agent.Event {
		t.Helper()
		g.sim("card lab " + card)
		for {
			if e := g.waitAny(agent.EventAccessGranted, agent.EventAccessDenied); e.Door == "lab" {
				return e
			}
		}
	}

	out, steps, err := g.cardCommand("card lab blank", "issue", "lab", "--tag-number", "02301234")
	require.NoError(t, err, steps)
	assert.Contains(t, out, "site key version 1")
	assert.Equal(t, agent.EventAccessGranted, present("blank").Type)

	// No newer masters yet: nothing to move to.
	_, steps, err = g.cardCommand("card lab blank", "rekey", "lab")
	require.Error(t, err)
	assert.Contains(t, steps, "the card already uses site key version 1, the newest")
	failed := g.waitCardFailure("rekey: card uid:7 bytes …F506: the card already uses site key version 1, the newest")
	assert.Equal(t, "desfire:tag …234", failed.Credential)
	assert.Equal(t, "Ada Lovelace", failed.User.Name)
	// A card taken away mid-way.
	_, steps, err = g.cardCommand("card lab pulled", "rekey", "lab")
	require.Error(t, err)
	assert.Contains(t, steps, "the card stopped answering")
	g.waitCardFailure("rekey: card uid:7 bytes …1526: the card stopped answering (taken away too early?): present it again")

	// The issuing station gets version 2's masters; the card is moved.
	require.NoError(t, os.WriteFile(keyFile, []byte(siteKeys+v2+`    picc: 3132333435363738393A3B3C3D3E3F40
    app: 4142434445464748494A4B4C4D4E4F50
`), 0o600))
	out, steps, err = g.cardCommand("card lab blank", "rekey", "lab")
	require.NoError(t, err, steps)
	assert.Contains(t, steps, "moving the card from site key version 1 to 2")
	assert.Contains(t, out, "The card now uses site key version 2.")
	rekeyed := g.waitEvent(agent.EventCardRekeyed)
	assert.Equal(t, "Ada Lovelace", rekeyed.User.Name)
	assert.Equal(t, localActor(), rekeyed.Actor)
	assert.Contains(t, rekeyed.Detail, "site key version 2")

	opened := present("blank")
	assert.Equal(t, agent.EventAccessGranted, opened.Type, opened.Detail)
	report, steps, err := g.cardCommand("card lab blank", "inspect", "lab", "--json")
	require.NoError(t, err, steps)
	var rep control.CardReport
	require.NoError(t, json.Unmarshal([]byte(report), &rep), report)
	require.NotNil(t, rep.KeyVersion)
	assert.Equal(t, 2, *rep.KeyVersion)
	assert.Equal(t, "this site's (key version 2)", rep.CardMasterKey)
	assert.Equal(t, "02301234", rep.TagNumber)
	require.Equal(t, 0, g.signal(syscall.SIGTERM))
}

// waitCardFailure waits for the next card_operation_failed and checks it:
// at the lab's reader, asked by this process's user, with what (after the
// command: what, or what its detail starts with) and never a key, a whole
// UID or a whole tag number.
func (g *gateway) waitCardFailure(what string) agent.Event {
	g.t.Helper()
	e := g.waitEvent(agent.EventCardOperationFailed)
	assert.Equal(g.t, "lab", e.Door)
	assert.Equal(g.t, localActor(), e.Actor)
	want := fmt.Sprintf("command %s by %s: %s", e.CommandID, e.Actor, what)
	assert.True(g.t, strings.HasPrefix(e.Detail, want), "%q\ndoes not start with\n%q", e.Detail, want)
	assert.True(g.t, strings.HasPrefix(e.CommandID, "local-"), e.CommandID)
	for _, secret := range []string{"0102030405060708", "1112131415161718", "2122232425262728", "3132333435363738", "4142434445464748",
		"02301234", "04B1C2D3E4F506", "04A1B2C3D4E5F6"} {
		assert.NotContains(g.t, e.Detail+e.Credential, secret, "no key, whole UID or tag number")
	}
	return e
}

// localActor is the actor the control socket names for this process.
func localActor() string { return fmt.Sprintf("local:uid=%d", os.Getuid()) }

// generationIn returns the card generation that pattern's group matches in s.
func generationIn(t *testing.T, s, pattern string) uint32 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	require.Len(t, m, 2, "%q in:\n%s", pattern, s)
	n, err := strconv.ParseUint(m[1], 10, 32)
	require.NoError(t, err)
	return uint32(n)
}
