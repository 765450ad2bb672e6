package agent

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// CardOp names a `portier card` operation that changes a card; it leads a
// failure's detail, as a reader action leads reader_setup_failed's.
type CardOp string

// Card operations that change a card (inspect changes nothing and is not
// recorded).
const (
	CardOpIssue CardOp = "issue"
	CardOpRekey CardOp = "rekey"
)

// CardFailure is a `portier card issue` or `rekey` that failed, for the
// audit trail (Event). It holds no key, by design, and its event names the
// card and the tag number only masked, also where the error names them.
type CardFailure struct {
	Command // who asked: the control socket's caller
	Op      CardOp
	Door    string
	// TagNumber: for issue the tag number asked for; for rekey the
	// card's, once read from it ("" before).
	TagNumber string
	// UID is the presented card's; nil when no card was presented.
	UID []byte
	// Named is the card named with --uid, if any.
	Named []byte
	User  *UserRef // the tag number's holder, when known
	Err   error
}

// Event is the failure's card_operation_failed event. Its detail starts
// with the command, as every command's events do, then what was asked, the
// card and why it failed.
func (f CardFailure) Event(at time.Time) Event {
	e := f.stamp(Event{Time: at, Type: EventCardOperationFailed, Door: f.Door, User: f.User})
	asked := string(f.Op)
	if f.Op == CardOpIssue && f.TagNumber != "" {
		asked += " " + CardTagNumber(f.TagNumber).Masked()
	}
	card := "no card presented"
	if len(f.UID) > 0 {
		card = "card " + uidMasked(f.UID)
		e.Kind, e.Credential = KindDESFire, CardDESFire(f.UID, f.TagNumber, CardCheck{}).Masked()
	}
	why := "failed"
	if f.Err != nil {
		why = f.Err.Error()
	}
	// The operator's error names the card and the tag number in full (they
	// need them to carry on); the audit trail keeps them masked.
	for _, uid := range [][]byte{f.UID, f.Named} {
		if len(uid) > 0 {
			h := hex.EncodeToString(uid)
			why = strings.ReplaceAll(strings.ReplaceAll(why, strings.ToUpper(h), uidMasked(uid)), h, uidMasked(uid))
		}
	}
	if f.TagNumber != "" {
		why = strings.ReplaceAll(why, f.TagNumber, CardTagNumber(f.TagNumber).Masked())
	}
	e.Detail = f.detail(fmt.Sprintf("%s: %s: %s", asked, card, why))
	return e
}

func uidMasked(uid []byte) string { return Presented{Kind: KindUID, UID: uid}.Masked() }
