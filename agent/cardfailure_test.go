package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/portier-io/portier/agent"
)

// TestCardFailureEvent: a failed card issue or rekey becomes
// card_operation_failed with who asked, what was asked, the card and why,
// the card's UID and the tag number masked also where the error names them.
func TestCardFailureEvent(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cmd := agent.Command{ID: "local-0123456789abcdef", Actor: "local:uid=1000"}
	blank := []byte{0x04, 0xB1, 0xC2, 0xD3, 0xE4, 0xF5, 0x06}
	ada := &agent.UserRef{ID: "u1", Name: "Ada Lovelace"}
	for _, tc := range []struct {
		name       string
		failure    agent.CardFailure
		credential string
		detail     string
	}{
		{"already issued", agent.CardFailure{Op: agent.CardOpIssue, TagNumber: "02301234", UID: blank, User: ada,
			Err: errors.New("the card already carries this site's application: run again with --reissue --uid 04B1C2D3E4F506 to replace it")},
			"desfire:tag …234", "issue tag:…234: card uid:7 bytes …F506: the card already carries this site's application: run again with --reissue --uid uid:7 bytes …F506 to replace it"},
		{"another card than the one named", agent.CardFailure{Op: agent.CardOpIssue, TagNumber: "02301234", UID: blank, Named: []byte{0x04, 0xa1, 0xb2, 0xc3},
			Err: errors.New("the card presented (UID 04B1C2D3E4F506) is not the one named (--uid 04a1b2c3)")},
			"desfire:tag …234", "issue tag:…234: card uid:7 bytes …F506: the card presented (UID uid:7 bytes …F506) is not the one named (--uid uid:4 bytes …B2C3)"},
		{"no card", agent.CardFailure{Op: agent.CardOpIssue, TagNumber: "02301234", Err: errors.New("no card was presented within 1m0s")},
			"", "issue tag:…234: no card presented: no card was presented within 1m0s"},
		{"rekey of a card read", agent.CardFailure{Op: agent.CardOpRekey, TagNumber: "02301234", UID: blank, User: ada,
			Err: errors.New("the card already uses site key version 1, the newest")},
			"desfire:tag …234", "rekey: card uid:7 bytes …F506: the card already uses site key version 1, the newest"},
		{"rekey of a card not read", agent.CardFailure{Op: agent.CardOpRekey, UID: blank, Err: errors.New("tag number 02301234 unknown")},
			"desfire:uid 7 bytes …F506", "rekey: card uid:7 bytes …F506: tag number 02301234 unknown"},
		{"the tag number in the error", agent.CardFailure{Op: agent.CardOpIssue, TagNumber: "02301234", Err: errors.New(`tag number "02301234"`)},
			"", `issue tag:…234: no card presented: tag number "tag:…234"`},
		{"no error", agent.CardFailure{Op: agent.CardOpRekey}, "", "rekey: no card presented: failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.failure
			f.Command, f.Door = cmd, "lab"
			e := f.Event(at)
			want := agent.Event{Time: at, Type: agent.EventCardOperationFailed, Door: "lab", User: f.User, Credential: tc.credential,
				Detail: "command local-0123456789abcdef by local:uid=1000: " + tc.detail, CommandID: cmd.ID, Actor: cmd.Actor}
			if tc.credential != "" {
				want.Kind = agent.KindDESFire
			}
			assert.Equal(t, want, e)
			assert.Contains(t, agent.EventTypes, e.Type)
		})
	}
}
