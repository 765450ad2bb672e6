// Package sitefile reads and writes Portier's site snapshot file: a JSON
// document made of Salto KS's own objects (the cloud/saltoks shapes: site,
// locks, users, access_groups with their users, locks and time_schedules),
// plus two Portier sections (credentials and enrolments).
// docs/snapshot-format.md describes it.
//
// Salto objects may carry fields this package does not use (an export from a
// real site has many), and those are ignored. Top-level keys and the Portier
// sections are strict, so a typo in a hand-written file is an error. The Salto
// objects become agent types through the one Salto mapping (saltoks.Mapper),
// as a sync's do; a file the mapping finds problems in is refused, each
// problem named (docs/saltoks.md, "One mapping").
package sitefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

// FormatVersion is the value of the "portier_snapshot" key this package writes
// and the highest it reads.
const FormatVersion = 1

// MaxSize bounds the file read, so a wrong path (a disk image, /dev/zero)
// fails fast instead of eating the gateway's memory.
const MaxSize = 512 << 20

// File is the JSON document.
type File struct {
	Version      int                `json:"portier_snapshot"`
	Site         saltoks.Site       `json:"site"`
	Locks        []saltoks.Lock     `json:"locks"`
	Users        []saltoks.SiteUser `json:"users"`
	AccessGroups []AccessGroup      `json:"access_groups"`
	Credentials  []Credential       `json:"credentials,omitempty"`
	Enrolments   []Enrolment        `json:"enrolments,omitempty"`
}

// AccessGroup is Salto's access group with its members (platform user ids),
// locks (lock ids) and time schedules, which the API lists separately.
type AccessGroup struct {
	saltoks.AccessGroup
	Users         []string               `json:"users"`
	Locks         []string               `json:"locks"`
	TimeSchedules []saltoks.TimeSchedule `json:"time_schedules"`
}

// Credential is a Portier credential held by a site user: exactly one of uid,
// wiegand, tag_number, pin or pin_hash.
type Credential struct {
	UserID    string       `json:"user_id"`
	UID       string       `json:"uid,omitempty"`
	Wiegand   *WiegandCard `json:"wiegand,omitempty"`
	TagNumber string       `json:"tag_number,omitempty"`
	PIN       string       `json:"pin,omitempty"`      // clear PIN, hashed on import, never stored
	PINHash   string       `json:"pin_hash,omitempty"` // "pin:<hex>" made with the same gateway key
	StartsAt  *string      `json:"starts_at,omitempty"`
	EndsAt    *string      `json:"ends_at,omitempty"`
	Label     string       `json:"label,omitempty"`
}

// WiegandCard names a Wiegand card by format, facility and card number, or by
// raw bits for frames of no known format.
type WiegandCard struct {
	Format   string `json:"format"`
	Facility uint64 `json:"facility,omitempty"`
	Card     uint64 `json:"card,omitempty"`
	Bits     int    `json:"bits,omitempty"`
	Raw      string `json:"raw,omitempty"` // hex, for format "raw"
}

// Enrolment maps a card UID or Wiegand card to a Salto tag number.
type Enrolment struct {
	UID       string       `json:"uid,omitempty"`
	Wiegand   *WiegandCard `json:"wiegand,omitempty"`
	TagNumber string       `json:"tag_number"`
}

// Error is a problem in a snapshot file. Path points at the offending object,
// e.g. "users[3] (id 5f2…)" or "line 12, column 4".
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func errAt(path string, format string, args ...any) error {
	return &Error{Path: path, Err: fmt.Errorf(format, args...)}
}

// Read parses and validates a snapshot file. PINs given in clear are turned
// into keyed hashes with key; a file with clear PINs and no key is refused.
func Read(r io.Reader, key agent.PINKey) (*agent.Snapshot, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("snapshot is larger than %d MiB", MaxSize>>20)
	}
	f, err := decode(data)
	if err != nil {
		return nil, err
	}
	return f.Snapshot(key)
}

func decode(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// Top-level keys are strict; Salto objects are decoded leniently below.
	var top struct {
		Version      *int              `json:"portier_snapshot"`
		Site         json.RawMessage   `json:"site"`
		Locks        []json.RawMessage `json:"locks"`
		Users        []json.RawMessage `json:"users"`
		AccessGroups []json.RawMessage `json:"access_groups"`
		Credentials  []json.RawMessage `json:"credentials"`
		Enrolments   []json.RawMessage `json:"enrolments"`
	}
	if err := dec.Decode(&top); err != nil {
		return nil, jsonError(data, err)
	}
	if dec.More() {
		return nil, errAt(position(data, dec.InputOffset()), "unexpected data after the snapshot object")
	}
	f := &File{}
	switch {
	case top.Version == nil:
		return nil, errAt("portier_snapshot", "missing; a snapshot file starts with {\"portier_snapshot\": %d, …}", FormatVersion)
	case *top.Version < 1 || *top.Version > FormatVersion:
		return nil, errAt("portier_snapshot", "version %d is not supported (this portier reads version %d)", *top.Version, FormatVersion)
	case top.Site == nil:
		return nil, errAt("site", "missing")
	}
	f.Version = *top.Version
	if err := json.Unmarshal(top.Site, &f.Site); err != nil {
		return nil, &Error{Path: "site", Err: cleanJSONErr(err)}
	}
	if err := decodeList("locks", top.Locks, &f.Locks, lenient, func(l saltoks.Lock) string { return l.ID }); err != nil {
		return nil, err
	}
	if err := decodeList("users", top.Users, &f.Users, lenient, func(u saltoks.SiteUser) string { return u.ID }); err != nil {
		return nil, err
	}
	if err := decodeList("access_groups", top.AccessGroups, &f.AccessGroups, lenient, func(g AccessGroup) string { return g.ID }); err != nil {
		return nil, err
	}
	if err := decodeList("credentials", top.Credentials, &f.Credentials, strict, func(c Credential) string { return "user " + c.UserID }); err != nil {
		return nil, err
	}
	if err := decodeList("enrolments", top.Enrolments, &f.Enrolments, strict, func(e Enrolment) string { return "tag " + e.TagNumber }); err != nil {
		return nil, err
	}
	return f, nil
}

type strictness bool

const (
	lenient strictness = false
	strict  strictness = true
)

// decodeList decodes each element on its own, so an error names its index and,
// when it got that far, its id.
func decodeList[T any](name string, raw []json.RawMessage, out *[]T, s strictness, id func(T) string) error {
	*out = make([]T, len(raw))
	for i, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		if s == strict {
			dec.DisallowUnknownFields()
		}
		if err := dec.Decode(&(*out)[i]); err != nil {
			path := fmt.Sprintf("%s[%d]", name, i)
			if n := id((*out)[i]); n != "" && !strings.HasSuffix(n, " ") {
				path += " (" + n + ")"
			}
			return &Error{Path: path, Err: cleanJSONErr(err)}
		}
	}
	return nil
}

func cleanJSONErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%s: a JSON %s cannot be a %s", field, te.Value, te.Type)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return errAt(position(data, se.Offset), "%s", strings.TrimPrefix(se.Error(), "json: "))
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &Error{Path: position(data, te.Offset), Err: cleanJSONErr(err)}
	}
	if errors.Is(err, io.EOF) {
		return errAt("file", "empty file")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errAt("file", "the JSON ends early (truncated file?)")
	}
	return &Error{Path: "file", Err: cleanJSONErr(err)}
}

func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d, column %d", line, col)
}

// maxProblems bounds the problems one refusal lists.
const maxProblems = 20

// Snapshot converts the file into the domain snapshot and validates it. A
// file in which the Salto mapping meets problems is refused with all of them
// (up to 20), each naming its object.
func (f *File) Snapshot(key agent.PINKey) (*agent.Snapshot, error) {
	m, err := saltoks.NewMapper(f.Site)
	if err != nil {
		return nil, &Error{Path: "site", Err: err}
	}
	s := &agent.Snapshot{Site: m.Site()}
	loc := m.Location()
	for _, l := range f.Locks {
		s.Locks = append(s.Locks, m.Lock(l))
	}
	for i, u := range f.Users {
		if au, ok := m.User(i, u); ok {
			s.Users = append(s.Users, au)
		}
	}
	for i, g := range f.AccessGroups {
		s.Groups = append(s.Groups, m.Group(i, g.AccessGroup, g.Users, g.Locks, g.TimeSchedules))
	}
	m.Finish(s)
	if ps := m.Problems(); len(ps) > 0 {
		errs := make([]error, 0, min(len(ps), maxProblems)+1)
		for _, p := range ps[:min(len(ps), maxProblems)] {
			errs = append(errs, &Error{Path: p.At(), Err: errors.New(p.Msg)})
		}
		if len(ps) > maxProblems {
			errs = append(errs, fmt.Errorf("and %d more problems", len(ps)-maxProblems))
		}
		return nil, errors.Join(errs...)
	}
	for i, c := range f.Credentials {
		ac, err := c.domain(key, loc)
		if err != nil {
			return nil, &Error{Path: fmt.Sprintf("credentials[%d] (user %s)", i, c.UserID), Err: err}
		}
		s.Credentials = append(s.Credentials, ac)
	}
	for i, e := range f.Enrolments {
		ae, err := e.domain()
		if err != nil {
			return nil, &Error{Path: fmt.Sprintf("enrolments[%d]", i), Err: err}
		}
		s.Enrolments = append(s.Enrolments, ae)
	}
	if err := s.Validate(); err != nil {
		return nil, &Error{Path: "snapshot", Err: err}
	}
	return s, nil
}

func (c Credential) domain(key agent.PINKey, loc *time.Location) (agent.Credential, error) {
	ac := agent.Credential{UserID: saltoks.CanonicalID(c.UserID), Origin: agent.OriginLocal, Label: c.Label}
	if c.UserID == "" {
		return ac, errors.New("user_id is empty")
	}
	set := 0
	for _, b := range []bool{c.UID != "", c.Wiegand != nil, c.TagNumber != "", c.PIN != "", c.PINHash != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return ac, errors.New("give exactly one of uid, wiegand, tag_number, pin or pin_hash")
	}
	var err error
	switch {
	case c.UID != "":
		ac.Kind = agent.KindUID
		var uid []byte
		if uid, err = agent.ParseUID(c.UID); err == nil {
			ac.Key, err = agent.UIDKey(uid)
		}
	case c.Wiegand != nil:
		ac.Kind = agent.KindWiegand
		var w agent.Wiegand
		if w, err = c.Wiegand.domain(); err == nil {
			ac.Key, err = agent.WiegandKey(w)
		}
	case c.TagNumber != "":
		ac.Kind = agent.KindTagNumber
		if ac.TagNumber, err = agent.NormalizeTagNumber(c.TagNumber); err == nil {
			ac.Key = agent.TagKey(ac.TagNumber)
		}
	case c.PIN != "":
		ac.Kind = agent.KindPIN
		if len(key) == 0 {
			return ac, errors.New("the file has a clear PIN but no PIN key is configured")
		}
		// The error says what is wrong (length, digits), never the PIN.
		if ac.Key, err = agent.KeypadPIN(c.PIN).Key(key); err != nil {
			err = fmt.Errorf("pin: %w", err)
		}
	case c.PINHash != "":
		ac.Kind = agent.KindPIN
		ac.Key = c.PINHash
		if !validPINHash(c.PINHash) {
			err = errors.New(`pin_hash must be "pin:" and 64 hex digits`)
		}
	}
	if err != nil {
		return ac, err
	}
	if c.StartsAt != nil && *c.StartsAt != "" {
		if ac.StartsAt, err = saltoks.ParseInstant(*c.StartsAt, loc); err != nil {
			return ac, fmt.Errorf("starts_at: %w", err)
		}
	}
	if c.EndsAt != nil && *c.EndsAt != "" {
		if ac.EndsAt, err = saltoks.ParseInstant(*c.EndsAt, loc); err != nil {
			return ac, fmt.Errorf("ends_at: %w", err)
		}
	}
	return ac, nil
}

func validPINHash(s string) bool {
	h, ok := strings.CutPrefix(s, "pin:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

func (w WiegandCard) domain() (agent.Wiegand, error) {
	aw := agent.Wiegand{Format: w.Format, Facility: w.Facility, Card: w.Card, Bits: w.Bits}
	if strings.EqualFold(w.Format, agent.WiegandRaw) {
		aw.Format = agent.WiegandRaw
		if _, err := fmt.Sscanf(w.Raw, "%x", &aw.Raw); err != nil {
			return aw, fmt.Errorf("wiegand.raw %q is not hex", w.Raw)
		}
	}
	return aw, nil
}

func (e Enrolment) domain() (agent.Enrolment, error) {
	n, err := agent.NormalizeTagNumber(e.TagNumber)
	if err != nil {
		return agent.Enrolment{}, fmt.Errorf("tag_number: %w", err)
	}
	var key string
	switch {
	case e.UID != "" && e.Wiegand == nil:
		var uid []byte
		if uid, err = agent.ParseUID(e.UID); err == nil {
			key, err = agent.UIDKey(uid)
		}
	case e.Wiegand != nil && e.UID == "":
		var w agent.Wiegand
		if w, err = e.Wiegand.domain(); err == nil {
			key, err = agent.WiegandKey(w)
		}
	default:
		err = errors.New("give exactly one of uid or wiegand")
	}
	return agent.Enrolment{Key: key, TagNumber: n}, err
}
