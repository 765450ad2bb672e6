package saltoks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The Salto KS object shapes below are the one Salto model of Portier: the
// API client decodes Salto's answers into them, the snapshot file
// (cloud/saltoks/sitefile) is written in them, and the mapping (mapping.go)
// turns them into agent types. Fields Portier does not read are left out;
// omitempty keeps written snapshot files as short as hand-written ones.

// Site is Salto's site object (the fields Portier reads).
type Site struct {
	ID                   string `json:"id"`
	SiteUID              string `json:"site_uid,omitempty"`
	CustomerReference    string `json:"customer_reference,omitempty"`
	TimeZone             string `json:"time_zone"`
	ActiveUserAmount     int    `json:"active_user_amount,omitempty"`
	SubscribedUserAmount int    `json:"subscribed_user_amount,omitempty"`
	SubscriptionValid    bool   `json:"subscription_valid,omitempty"`
	PINEnabled           bool   `json:"pin_enabled,omitempty"`
	InstallationState    string `json:"installation_state,omitempty"`
}

// Lock is Salto's lock object.
type Lock struct {
	ID                string `json:"id"`
	CustomerReference string `json:"customer_reference,omitempty"`
	LockType          string `json:"lock_type,omitempty"`
	Online            bool   `json:"online,omitempty"`
}

// AccessGroup is Salto's access group.
type AccessGroup struct {
	ID                string `json:"id"`
	CustomerReference string `json:"customer_reference"`
}

// TimeSchedule is Salto's time schedule: weekdays, a daily window and an
// optional date (or date-time) frame.
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

// PlatformUser is the platform user nested in a site user.
type PlatformUser struct {
	ID        string  `json:"id"`
	Email     *string `json:"email,omitempty"`
	FirstName string  `json:"first_name,omitempty"`
	LastName  string  `json:"last_name,omitempty"`
	TagNumber *string `json:"tag_number"`
}

// Role is a site role of a user.
type Role struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// SiteUser is what /users lists: ID is the site-user id, User.ID the platform
// user id (access-group membership uses the latter).
type SiteUser struct {
	ID                string       `json:"id"`
	User              PlatformUser `json:"user"`
	Roles             []Role       `json:"roles,omitempty"`
	Alias             string       `json:"alias,omitempty"`
	Blocked           bool         `json:"blocked"`
	SubscriptionState string       `json:"subscription_state"`
	ExpiresAt         *string      `json:"expires_at"`
	UsePIN            *bool        `json:"use_pin,omitempty"` // absent means true
}

// Suspended reports a user without a subscription seat.
func (u SiteUser) Suspended() bool { return u.SubscriptionState == "suspended" }

// groupMember is one item of …/access_groups/{ag}/users. The reference says it
// returns platform user ids but shows no item; accept a platform user
// ({id}) and a site user ({id, user: {id}}) alike.
type groupMember struct {
	ID   string `json:"id"`
	User *struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (m *groupMember) platformID() string {
	if m.User != nil && m.User.ID != "" {
		return m.User.ID
	}
	return m.ID
}

func (c *Client) sitePath(site string, parts ...string) string {
	p := "/" + c.cfg.Version + "/sites/" + url.PathEscape(site)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

func siteID(s *Site) string          { return s.ID }
func lockID(l *Lock) string          { return l.ID }
func groupID(g *AccessGroup) string  { return g.ID }
func userID(u *SiteUser) string      { return u.ID }
func memberID(m *groupMember) string { return m.platformID() }
func scheduleID(t *TimeSchedule) string {
	if t.ID != "" {
		return t.ID
	}
	// A schedule without id cannot be checked for duplicates; its content is
	// the next best identity.
	b, _ := json.Marshal(t)
	return string(b)
}

// Sites lists the sites of the token user.
func (c *Client) Sites(ctx context.Context) ([]Site, error) {
	return collect(ctx, c, "/"+c.cfg.Version+"/sites", listQuery{}, siteID)
}

// Site returns one site's detail.
func (c *Client) Site(ctx context.Context, site string) (Site, error) {
	var s Site
	err := c.getJSON(ctx, c.sitePath(site), &s)
	return s, err
}

// Locks lists the site's locks.
func (c *Client) Locks(ctx context.Context, site string) ([]Lock, error) {
	return collect(ctx, c, c.sitePath(site, "locks"), listQuery{}, lockID)
}

// AccessGroups lists the site's access groups.
func (c *Client) AccessGroups(ctx context.Context, site string) ([]AccessGroup, error) {
	return collect(ctx, c, c.sitePath(site, "access_groups"), listQuery{}, groupID)
}

// GroupLocks lists the locks of an access group.
func (c *Client) GroupLocks(ctx context.Context, site, group string) ([]Lock, error) {
	return collect(ctx, c, c.sitePath(site, "access_groups", group, "locks"), listQuery{}, lockID)
}

// GroupUsers lists the members of an access group as platform user ids.
func (c *Client) GroupUsers(ctx context.Context, site, group string) ([]string, error) {
	var out []string
	err := listAll(ctx, c, c.sitePath(site, "access_groups", group, "users"), listQuery{}, memberID, func(p []groupMember) error {
		for i := range p {
			out = append(out, p[i].platformID())
		}
		return nil
	})
	return out, err
}

// GroupSchedules lists the time schedules of an access group.
func (c *Client) GroupSchedules(ctx context.Context, site, group string) ([]TimeSchedule, error) {
	return collect(ctx, c, c.sitePath(site, "access_groups", group, "time_schedules"), listQuery{}, scheduleID)
}

// Users reads the site users page by page; filter is an optional OData
// $filter (e.g. "alias eq 'x'").
func (c *Client) Users(ctx context.Context, site, filter string, fn func([]SiteUser) error) error {
	return listAll(ctx, c, c.sitePath(site, "users"), listQuery{filter: filter}, userID, fn)
}

// User returns one site user by site-user id.
func (c *Client) User(ctx context.Context, site, id string) (SiteUser, error) {
	var u SiteUser
	err := c.getJSON(ctx, c.sitePath(site, "users", id), &u)
	return u, err
}

// NewUser is the body of a user creation. A user without e-mail is a "user
// without profile" (no invitation mail).
type NewUser struct {
	FirstName string   `json:"first_name"`
	LastName  string   `json:"last_name"`
	Email     string   `json:"email,omitempty"`
	Alias     string   `json:"alias,omitempty"`
	RoleIDs   []string `json:"role_ids,omitempty"`
	UsePIN    bool     `json:"use_pin"`
	Blocked   bool     `json:"blocked"`
}

// CreateUser creates a site user. A site out of seats still answers 201 with
// the user suspended; check SiteUser.Suspended.
func (c *Client) CreateUser(ctx context.Context, site string, u NewUser) (SiteUser, error) {
	var out SiteUser
	err := c.send(ctx, request{method: "POST", path: c.sitePath(site, "users"), body: u}, &out)
	return out, err
}

// NewGuest is the body of a guest creation.
type NewGuest struct {
	Alias     string     `json:"alias"`
	ExpiresAt *time.Time `json:"-"`
}

// MarshalJSON writes expires_at in UTC, null for a guest that never expires.
func (g NewGuest) MarshalJSON() ([]byte, error) {
	var exp *string
	if g.ExpiresAt != nil && !g.ExpiresAt.IsZero() {
		s := g.ExpiresAt.UTC().Format(time.RFC3339)
		exp = &s
	}
	return json.Marshal(struct {
		Alias     string  `json:"alias"`
		ExpiresAt *string `json:"expires_at"`
	}{g.Alias, exp})
}

// CreateGuest creates a guest (role site_guest, no e-mail); it takes a seat
// like any user and comes back suspended when there is none.
func (c *Client) CreateGuest(ctx context.Context, site string, g NewGuest) (SiteUser, error) {
	var out SiteUser
	err := c.send(ctx, request{method: "POST", path: c.sitePath(site, "guests"), body: g}, &out)
	return out, err
}

// UserPatch is a partial user update; nil fields are left alone.
type UserPatch struct {
	UsePIN  *bool `json:"use_pin,omitempty"`
	Blocked *bool `json:"blocked,omitempty"`
}

// UpdateUser patches a site user.
func (c *Client) UpdateUser(ctx context.Context, site, id string, p UserPatch) (SiteUser, error) {
	var out SiteUser
	err := c.send(ctx, request{method: "PATCH", path: c.sitePath(site, "users", id), body: p, idempotent: true}, &out)
	return out, err
}

// GeneratePIN has Salto generate a new PIN for the user and returns it. This
// is the only time the value is ever visible: Salto cannot show it again.
// Calling it again rotates the PIN.
func (c *Client) GeneratePIN(ctx context.Context, site, id string, expiry *time.Time) (string, error) {
	body := map[string]string{}
	if expiry != nil && !expiry.IsZero() {
		body["expiry_date"] = expiry.UTC().Format(time.RFC3339)
	}
	var pin string
	req := request{method: "PUT", path: c.sitePath(site, "users", id, "pin"), body: body, idempotent: true}
	req.decode = func(r *response) error {
		var err error
		if pin, err = ParsePIN(r.body); err != nil {
			return &DecodeError{Method: req.method, Path: req.path, Err: err}
		}
		return nil
	}
	_, err := c.do(ctx, req)
	return pin, err
}

// ParsePIN reads the answer of PUT …/pin: a bare JSON string ("123456"),
// served as JSON or as text, or the digits without quotes. Only decimal
// digits (4–16 of them) are accepted; the error never contains the body.
func ParsePIN(body []byte) (string, error) {
	b := bytes.TrimSpace(body)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return "", errors.New("the PIN answer is not a JSON string")
		}
		s = strings.TrimSpace(s)
	} else if len(b) > 0 && b[0] == '{' {
		var obj struct {
			PIN  string `json:"pin"`
			Code string `json:"code"`
		}
		if json.Unmarshal(b, &obj) != nil || (obj.PIN == "" && obj.Code == "") {
			return "", errors.New("the PIN answer is an object without a pin")
		}
		s = obj.PIN
		if s == "" {
			s = obj.Code
		}
	}
	if len(s) < 4 || len(s) > 16 {
		return "", fmt.Errorf("the PIN answer has %d characters, not a PIN", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", errors.New("the PIN answer is not decimal digits")
		}
	}
	return s, nil
}

// DeleteUser deletes a site user (Salto answers 202 and frees the seat). A
// user that is already gone is an APIError with NotFound() true.
func (c *Client) DeleteUser(ctx context.Context, site, id string) error {
	return c.send(ctx, request{method: "DELETE", path: c.sitePath(site, "users", id), idempotent: true}, nil)
}

// AddGroupUser adds a user to an access group by platform user id (the
// site-user id is refused by Salto with 2202).
func (c *Client) AddGroupUser(ctx context.Context, site, group, platformID string) error {
	return c.send(ctx, request{method: "POST", path: c.sitePath(site, "access_groups", group, "users"),
		body: map[string]string{"user_id": platformID}, idempotent: true}, nil)
}

// RemoveGroupUser removes a user (platform user id) from an access group.
func (c *Client) RemoveGroupUser(ctx context.Context, site, group, platformID string) error {
	return c.send(ctx, request{method: "DELETE", path: c.sitePath(site, "access_groups", group, "users", platformID), idempotent: true}, nil)
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	return c.send(ctx, request{method: "GET", path: path, idempotent: true}, v)
}

// send does req and decodes a JSON body into v (when v is not nil and there
// is a body).
func (c *Client) send(ctx context.Context, req request, v any) error {
	if v != nil {
		req.decode = func(r *response) error {
			if r.status == http.StatusNoContent || len(bytes.TrimSpace(r.body)) == 0 {
				return &DecodeError{Method: req.method, Path: req.path, Err: errors.New("empty body")}
			}
			return decodeJSON(req, r.body, v)
		}
	}
	_, err := c.do(ctx, req)
	return err
}
