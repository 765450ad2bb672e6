// Package sitefile reads and writes Portier's site snapshot file: a JSON
// document whose objects use Salto KS's own field names (site, locks, users,
// access_groups with their users, locks and time_schedules), plus two Portier
// sections (credentials and enrolments). docs/snapshot-format.md describes it.
//
// Salto objects may carry fields this package does not use (an export from a
// real site has many), and those are ignored. Top-level keys and the Portier
// sections are strict, so a typo in a hand-written file is an error.
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
)

// FormatVersion is the value of the "portier_snapshot" key this package writes
// and the highest it reads.
const FormatVersion = 1

// MaxSize bounds the file read, so a wrong path (a disk image, /dev/zero)
// fails fast instead of eating the gateway's memory.
const MaxSize = 512 << 20

// File is the JSON document.
type File struct {
	Version      int           `json:"portier_snapshot"`
	Site         Site          `json:"site"`
	Locks        []Lock        `json:"locks"`
	Users        []User        `json:"users"`
	AccessGroups []AccessGroup `json:"access_groups"`
	Credentials  []Credential  `json:"credentials,omitempty"`
	Enrolments   []Enrolment   `json:"enrolments,omitempty"`
}

// Site is Salto's site object (only the fields Portier uses).
type Site struct {
	ID                string `json:"id"`
	SiteUID           string `json:"site_uid,omitempty"`
	CustomerReference string `json:"customer_reference,omitempty"`
	TimeZone          string `json:"time_zone"`
}

// Lock is Salto's lock object.
type Lock struct {
	ID                string `json:"id"`
	CustomerReference string `json:"customer_reference,omitempty"`
}

// User is Salto's site-user object: id is the site-user id, user.id the
// platform user id.
type User struct {
	ID                string       `json:"id"`
	User              PlatformUser `json:"user"`
	Alias             string       `json:"alias,omitempty"`
	Blocked           bool         `json:"blocked"`
	SubscriptionState string       `json:"subscription_state"`
	ExpiresAt         *string      `json:"expires_at"`
	UsePIN            *bool        `json:"use_pin,omitempty"` // absent means true
}

// PlatformUser is the nested platform user of a site user.
type PlatformUser struct {
	ID        string  `json:"id"`
	FirstName string  `json:"first_name,omitempty"`
	LastName  string  `json:"last_name,omitempty"`
	Email     *string `json:"email,omitempty"`
	TagNumber *string `json:"tag_number"`
}

// AccessGroup is Salto's access group with its members (platform user ids),
// locks (lock ids) and time schedules.
type AccessGroup struct {
	ID                string         `json:"id"`
	CustomerReference string         `json:"customer_reference"`
	Users             []string       `json:"users"`
	Locks             []string       `json:"locks"`
	TimeSchedules     []TimeSchedule `json:"time_schedules"`
}

// TimeSchedule is Salto's time schedule.
type TimeSchedule struct {
	ID        string  `json:"id,omitempty"`
	Monday    bool    `json:"monday"`
	Tuesday   bool    `json:"tuesday"`
	Wednesday bool    `json:"wednesday"`
	Thursday  bool    `json:"thursday"`
	Friday    bool    `json:"friday"`
	Saturday  bool    `json:"saturday"`
	Sunday    bool    `json:"sunday"`
	StartTime string  `json:"start_time"`
	EndTime   string  `json:"end_time"`
	StartDate *string `json:"start_date"`
	EndDate   *string `json:"end_date"`
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
	if err := decodeList("locks", top.Locks, &f.Locks, lenient, func(l Lock) string { return l.ID }); err != nil {
		return nil, err
	}
	if err := decodeList("users", top.Users, &f.Users, lenient, func(u User) string { return u.ID }); err != nil {
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

// Snapshot converts the file into the domain snapshot and validates it.
func (f *File) Snapshot(key agent.PINKey) (*agent.Snapshot, error) {
	s := &agent.Snapshot{Site: agent.Site{ID: f.Site.ID, UID: f.Site.SiteUID, Name: f.Site.CustomerReference, TimeZone: f.Site.TimeZone}}
	loc, err := s.Site.Location()
	if err != nil {
		return nil, &Error{Path: "site", Err: err}
	}
	for _, l := range f.Locks {
		s.Locks = append(s.Locks, agent.Lock{ID: l.ID, Name: l.CustomerReference})
	}
	for i, u := range f.Users {
		au, err := u.domain(loc)
		if err != nil {
			return nil, &Error{Path: fmt.Sprintf("users[%d] (%s)", i, u.ID), Err: err}
		}
		s.Users = append(s.Users, au)
	}
	for i, g := range f.AccessGroups {
		ag := agent.AccessGroup{ID: g.ID, Name: g.CustomerReference, Members: g.Users, Locks: g.Locks}
		for j, ts := range g.TimeSchedules {
			sc, err := ts.Domain(loc)
			if err != nil {
				return nil, &Error{Path: fmt.Sprintf("access_groups[%d] (%s).time_schedules[%d]", i, g.CustomerReference, j), Err: err}
			}
			ag.Schedules = append(ag.Schedules, sc)
		}
		s.Groups = append(s.Groups, ag)
	}
	tags, err := agent.TagCredentials(s.Users)
	if err != nil {
		return nil, &Error{Path: "users", Err: err}
	}
	s.Credentials = tags
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

func (u User) domain(loc *time.Location) (agent.User, error) {
	au := agent.User{
		ID: u.ID, PlatformID: u.User.ID, FirstName: u.User.FirstName, LastName: u.User.LastName,
		Alias: u.Alias, Blocked: u.Blocked, Subscription: agent.SubscriptionState(u.SubscriptionState),
		UsePIN: u.UsePIN == nil || *u.UsePIN,
	}
	if u.User.Email != nil {
		au.Email = *u.User.Email
	}
	if u.SubscriptionState == "" {
		au.Subscription = agent.Subscribed
	}
	if u.User.TagNumber != nil && *u.User.TagNumber != "" {
		n, err := agent.NormalizeTagNumber(*u.User.TagNumber)
		if err != nil {
			return au, fmt.Errorf("user.tag_number: %w", err)
		}
		au.TagNumber = n
	}
	if u.ExpiresAt != nil && *u.ExpiresAt != "" {
		t, err := ParseInstant(*u.ExpiresAt, loc)
		if err != nil {
			return au, fmt.Errorf("expires_at: %w", err)
		}
		au.ExpiresAt = t
	}
	return au, nil
}

// Domain converts a Salto time schedule, reading dates in the site zone loc.
func (ts TimeSchedule) Domain(loc *time.Location) (agent.Schedule, error) {
	sc := agent.Schedule{ID: ts.ID}
	sc.Days[time.Monday], sc.Days[time.Tuesday], sc.Days[time.Wednesday] = ts.Monday, ts.Tuesday, ts.Wednesday
	sc.Days[time.Thursday], sc.Days[time.Friday] = ts.Thursday, ts.Friday
	sc.Days[time.Saturday], sc.Days[time.Sunday] = ts.Saturday, ts.Sunday
	var err error
	if sc.Start, err = agent.ParseTimeOfDay(ts.StartTime); err != nil {
		return sc, fmt.Errorf("start_time: %w", err)
	}
	if sc.End, err = agent.ParseTimeOfDay(ts.EndTime); err != nil {
		return sc, fmt.Errorf("end_time: %w", err)
	}
	if ts.StartDate != nil && *ts.StartDate != "" {
		if sc.StartDate, err = agent.ParseScheduleDate(*ts.StartDate, false, loc); err != nil {
			return sc, fmt.Errorf("start_date: %w", err)
		}
	}
	if ts.EndDate != nil && *ts.EndDate != "" {
		if sc.EndDate, err = agent.ParseScheduleDate(*ts.EndDate, true, loc); err != nil {
			return sc, fmt.Errorf("end_date: %w", err)
		}
	}
	return sc, sc.Validate()
}

func (c Credential) domain(key agent.PINKey, loc *time.Location) (agent.Credential, error) {
	ac := agent.Credential{UserID: c.UserID, Origin: agent.OriginLocal, Label: c.Label}
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
		if ac.StartsAt, err = ParseInstant(*c.StartsAt, loc); err != nil {
			return ac, fmt.Errorf("starts_at: %w", err)
		}
	}
	if c.EndsAt != nil && *c.EndsAt != "" {
		if ac.EndsAt, err = ParseInstant(*c.EndsAt, loc); err != nil {
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

// ParseInstant reads an RFC 3339 time; one without an offset is site wall time
// in loc.
func ParseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
}
