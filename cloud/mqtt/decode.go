package mqtt

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Command names: the last level of a command topic.
const (
	CmdUnlock           = "unlock"
	CmdLockdown         = "lockdown"
	CmdOfficeMode       = "office_mode"
	CmdSync             = "sync"
	CmdAccessCodeCreate = "access_code_create"
	CmdAccessCodeDelete = "access_code_delete"
	CmdAccessCodeList   = "access_code_list"
	CmdEnroll           = "enroll"
)

// CommandNames lists every command in documentation order.
var CommandNames = []string{CmdUnlock, CmdLockdown, CmdOfficeMode, CmdSync, CmdAccessCodeCreate, CmdAccessCodeDelete, CmdAccessCodeList, CmdEnroll}

// Error types of command responses and command_rejected/command_failed
// events. Door refusals use the door's reason (door_lockdown,
// invalid_command, unsupported); access code failures use the access code
// service's types (e.g. salto_site_user_not_subscribed).
const (
	ErrOversized        = "oversized"
	ErrRetained         = "retained"
	ErrMalformed        = "malformed"
	ErrUnknownCommand   = "unknown_command"
	ErrSignatureMissing = "signature_missing"
	ErrSignatureInvalid = "signature_invalid"
	ErrExpired          = "expired"
	ErrExpiryTooFar     = "expiry_too_far"
	ErrDuplicate        = "duplicate"
	ErrUnknownDoor      = "unknown_door"
	ErrClockNotTrusted  = "clock_not_trusted"
	ErrUnavailable      = "unavailable" // the gateway has no service for it (no Salto, no access codes)
	ErrBusy             = "busy"
	ErrActionFailed     = "action_failed"
	ErrEnrolment        = "enrolment_"  // + the outcome: enrolment_failed, enrolment_expired, …
	ErrSyncFailed       = "sync_failed" // the Syncer's failure (after pending)
)

// ErrorTypes lists the link's own error types in documentation order.
var ErrorTypes = []string{ErrOversized, ErrRetained, ErrMalformed, ErrUnknownCommand, ErrSignatureMissing, ErrSignatureInvalid,
	ErrExpired, ErrExpiryTooFar, ErrDuplicate, ErrUnknownDoor, ErrClockNotTrusted, ErrUnavailable, ErrBusy, ErrActionFailed}

// Command is a decoded command. Only the fields of its Name are set.
type Command struct {
	Name      string    `json:"-"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
	Actor     string    `json:"actor"`

	Door      string     `json:"door,omitempty"`
	DurationS *int64     `json:"duration_s,omitempty"` // unlock: 0 = one access-time pulse
	Override  bool       `json:"override,omitempty"`   // unlock during lockdown
	On        *bool      `json:"on,omitempty"`         // lockdown, office_mode
	Until     *time.Time `json:"until,omitempty"`      // office_mode on
	TagNumber string     `json:"tag_number,omitempty"` // enroll

	CodeName     string     `json:"name,omitempty"` // access_code_create
	StartsAt     *time.Time `json:"starts_at,omitempty"`
	EndsAt       *time.Time `json:"ends_at,omitempty"`
	AccessCodeID string     `json:"access_code_id,omitempty"` // access_code_delete

	signed bool
}

// Rejection is why a command was refused before anything ran.
type Rejection struct {
	Type    string
	Message string
}

func (r *Rejection) Error() string { return r.Type + ": " + r.Message }

func reject(typ, format string, args ...any) *Rejection {
	return &Rejection{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// sigMember is how a signature is appended to the signed JSON object.
const sigMember = `,"sig":"`

// Sign returns payload with its signature appended: the HMAC-SHA256, under
// key, of the command's topic, a newline and the JSON object exactly as
// written, added as a last member "sig" in lower-case hex. Senders sign the
// bytes they send; no JSON canonicalisation is involved. Anything that does
// not end in '}' is returned unchanged (it is no command object).
func Sign(key []byte, topic string, object []byte) []byte {
	object = bytes.TrimRight(object, " \t\r\n")
	if len(object) < 2 || object[len(object)-1] != '}' {
		return object
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(topic))
	mac.Write([]byte{'\n'})
	mac.Write(object)
	out := make([]byte, 0, len(object)+80)
	out = append(out, object[:len(object)-1]...)
	out = append(out, sigMember...)
	out = hex.AppendEncode(out, mac.Sum(nil))
	return append(out, '"', '}')
}

// splitSig separates a trailing "sig" member from the signed object.
func splitSig(payload []byte) (object []byte, sig []byte, ok bool) {
	p := bytes.TrimRight(payload, " \t\r\n")
	i := bytes.LastIndex(p, []byte(sigMember))
	if i < 0 || len(p)-i != len(sigMember)+64+2 || !bytes.HasSuffix(p, []byte(`"}`)) {
		return payload, nil, false
	}
	sig = make([]byte, 32)
	if _, err := hex.Decode(sig, p[i+len(sigMember):len(p)-2]); err != nil {
		return payload, nil, false
	}
	object = append(append([]byte{}, p[:i]...), '}')
	return object, sig, true
}

// DecodeCommand checks and decodes a command payload received on topic for
// command name. key, when set, makes a valid signature mandatory. It checks
// form only; expiry, duplicates and doors are the link's business. The
// returned command carries whatever id could be read, also on rejection.
func DecodeCommand(name, topic string, payload []byte, key []byte) (Command, *Rejection) {
	cmd := Command{Name: name}
	if len(payload) > MaxCommandSize {
		return cmd, reject(ErrOversized, "command is %d bytes; the limit is %d", len(payload), MaxCommandSize)
	}
	object, sig, signed := splitSig(payload)
	dec := json.NewDecoder(bytes.NewReader(object))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		cmd = Command{Name: name, ID: bestEffortID(object)}
		msg := err.Error()
		if strings.Contains(msg, `"sig"`) {
			msg = `"sig" must be the last member, 64 lower- or upper-case hex digits`
		}
		return cmd, reject(ErrMalformed, "not a valid command object: %s", msg)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Command{Name: name, ID: bestEffortID(object)}, reject(ErrMalformed, "data after the command object")
	}
	cmd.Name = name
	switch {
	case !validCommandID(cmd.ID):
		cmd.ID = "" // never echo an id that is not one
		return cmd, reject(ErrMalformed, "id must be 1–128 characters of letters, digits and . _ : -")
	case cmd.ExpiresAt.IsZero():
		return cmd, reject(ErrMalformed, "expires_at (RFC 3339) is required")
	case cmd.Actor == "" || len(cmd.Actor) > 128:
		return cmd, reject(ErrMalformed, "actor (1–128 characters) is required")
	}
	if key != nil {
		if !signed {
			return cmd, reject(ErrSignatureMissing, "this gateway requires signed commands")
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(topic))
		mac.Write([]byte{'\n'})
		mac.Write(object)
		if !hmac.Equal(mac.Sum(nil), sig) {
			return cmd, reject(ErrSignatureInvalid, "the signature does not match")
		}
		cmd.signed = true
	}
	if r := cmd.checkParams(); r != nil {
		return cmd, r
	}
	return cmd, nil
}

func (c Command) checkParams() *Rejection {
	has := func(set bool, field string) *Rejection {
		if set {
			return reject(ErrMalformed, "%s takes no %s", c.Name, field)
		}
		return nil
	}
	var rs []*Rejection
	switch c.Name {
	case CmdUnlock:
		if c.Door == "" {
			return reject(ErrMalformed, "unlock needs door")
		}
		if c.DurationS != nil && *c.DurationS < 0 {
			return reject(ErrMalformed, "duration_s must not be negative")
		}
		rs = append(rs, has(c.On != nil, "on"), has(c.Until != nil, "until"), has(c.TagNumber != "", "tag_number"), c.noCodeFields())
	case CmdLockdown, CmdOfficeMode:
		if c.On == nil {
			return reject(ErrMalformed, "%s needs on (true or false)", c.Name)
		}
		if c.Until != nil && (c.Name == CmdLockdown || !*c.On) {
			return reject(ErrMalformed, "until is only for office_mode on")
		}
		rs = append(rs, has(c.DurationS != nil, "duration_s"), has(c.Override, "override"), has(c.TagNumber != "", "tag_number"), c.noCodeFields())
	case CmdEnroll:
		if c.Door == "" || !digits(c.TagNumber, 1, 20) {
			return reject(ErrMalformed, "enroll needs door and tag_number (digits)")
		}
		rs = append(rs, has(c.DurationS != nil, "duration_s"), has(c.Override, "override"), has(c.On != nil, "on"), has(c.Until != nil, "until"), c.noCodeFields())
	case CmdSync, CmdAccessCodeList:
		rs = append(rs, has(c.Door != "", "door"), has(c.DurationS != nil, "duration_s"), has(c.Override, "override"), has(c.On != nil, "on"),
			has(c.Until != nil, "until"), has(c.TagNumber != "", "tag_number"), c.noCodeFields())
	case CmdAccessCodeCreate:
		if c.Door == "" || len(c.CodeName) > 128 {
			return reject(ErrMalformed, "access_code_create needs door (and a name of at most 128 characters)")
		}
		if c.StartsAt != nil && c.EndsAt != nil && !c.EndsAt.After(*c.StartsAt) {
			return reject(ErrMalformed, "ends_at must be after starts_at")
		}
		rs = append(rs, has(c.DurationS != nil, "duration_s"), has(c.Override, "override"), has(c.On != nil, "on"),
			has(c.Until != nil, "until"), has(c.TagNumber != "", "tag_number"), has(c.AccessCodeID != "", "access_code_id"))
	case CmdAccessCodeDelete:
		if c.AccessCodeID == "" || len(c.AccessCodeID) > 128 {
			return reject(ErrMalformed, "access_code_delete needs access_code_id")
		}
		rs = append(rs, has(c.Door != "", "door"), has(c.DurationS != nil, "duration_s"), has(c.Override, "override"), has(c.On != nil, "on"),
			has(c.Until != nil, "until"), has(c.TagNumber != "", "tag_number"), has(c.CodeName != "", "name"), has(c.StartsAt != nil || c.EndsAt != nil, "starts_at/ends_at"))
	default:
		return reject(ErrUnknownCommand, "unknown command %q (commands: %s)", c.Name, strings.Join(CommandNames, ", "))
	}
	for _, r := range rs {
		if r != nil {
			return r
		}
	}
	return nil
}

func (c Command) noCodeFields() *Rejection {
	if c.CodeName != "" || c.StartsAt != nil || c.EndsAt != nil || c.AccessCodeID != "" {
		return reject(ErrMalformed, "%s takes no access code fields", c.Name)
	}
	return nil
}

func validCommandID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)) {
			return false
		}
	}
	return true
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// bestEffortID reads the id of a payload that is not a valid command, so
// the rejection can still be matched; only a well-formed id is echoed.
func bestEffortID(b []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(b, &v) != nil || !validCommandID(v.ID) {
		return ""
	}
	return v.ID
}
