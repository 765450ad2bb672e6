// Package accesscode programs access codes (Seam's term) through Salto KS: a
// time-bound or ongoing PIN for one door. Salto generates every PIN, so a code
// is a Salto guest in the door's access group whose PIN Salto shows exactly
// once; the gateway caches only its keyed hash and hands the code to the
// caller once.
//
// Every step is recorded before the next one starts (status setting → set,
// removing → unset), so an operation cut short by a crash is finished or
// rolled back by Resume on the next start.
package accesscode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cloud/saltoks"
)

// Salto is what the service calls on Salto KS; *saltoks.Client implements it.
type Salto interface {
	CreateGuest(ctx context.Context, site string, g saltoks.NewGuest) (saltoks.SiteUser, error)
	UpdateUser(ctx context.Context, site, id string, p saltoks.UserPatch) (saltoks.SiteUser, error)
	AddGroupUser(ctx context.Context, site, group, platformID string) error
	GeneratePIN(ctx context.Context, site, id string, expiry *time.Time) (string, error)
	DeleteUser(ctx context.Context, site, id string) error
	Users(ctx context.Context, site, filter string, fn func([]saltoks.SiteUser) error) error
}

// Store keeps access code records and their PIN credentials; *sqlite.DB
// implements it. SaveAccessCode writes the record, adds put and drops dropKey
// in one transaction.
type Store interface {
	SaveAccessCode(ctx context.Context, ac agent.AccessCode, put *agent.Credential, dropKey string) error
	AccessCode(ctx context.Context, id string) (agent.AccessCode, error)
	AccessCodes(ctx context.Context) ([]agent.AccessCode, error)
}

// Config configures a Service.
type Config struct {
	Salto  Salto
	Store  Store
	SiteID string
	Doors  []agent.Door
	PINKey agent.PINKey
	// Changed runs after a code was set or removed, e.g. to trigger a sync so
	// the new Salto user lands in the cache. Its error is logged, not returned.
	Changed func(ctx context.Context) error
	Logger  *slog.Logger
	Now     func() time.Time
	NewID   func() string
	// Checkpoint runs after each recorded step; an error stops the operation
	// right there, without cleanup, as a crash would. For tests.
	Checkpoint func(step string) error
}

// Service creates, deletes and lists access codes.
type Service struct {
	cfg Config
	log *slog.Logger
}

// Steps recorded while an operation runs.
const (
	StepRecorded     = "recorded"
	StepUserCreated  = "user_created"
	StepPINEnabled   = "pin_enabled"
	StepGroupAdded   = "group_added"
	StepPINGenerated = "pin_generated"
	StepDone         = "done"
	StepRevoked      = "revoked_locally"
)

// ErrorType names an access code failure for callers and dashboards.
type ErrorType string

// Error types.
const (
	// NotSubscribed: the site is out of subscription seats (Salto created the
	// user suspended). Seam's name for it.
	NotSubscribed ErrorType = "salto_site_user_not_subscribed"
	InvalidInput  ErrorType = "invalid_input"
	SaltoFailed   ErrorType = "salto_request_failed"
	NotFound      ErrorType = "access_code_not_found"
)

// Error is a failed access code operation.
type Error struct {
	Type    ErrorType
	Message string
	Err     error
}

func (e *Error) Error() string {
	msg := string(e.Type) + ": " + e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}
func (e *Error) Unwrap() error { return e.Err }

// notSubscribedMessage explains the seat limit and its two remedies.
const notSubscribedMessage = "the Salto KS site has no free subscription seat, so Salto created the access code's user " +
	"suspended and it could not open any door; the user was removed again. Free a seat by deleting access codes " +
	"(or other Salto users) that are no longer needed, or ask your Salto installer for a subscription with more users"

// New checks cfg.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Salto == nil || cfg.Store == nil:
		return nil, errors.New("accesscode: salto client and store are required")
	case cfg.SiteID == "":
		return nil, errors.New("accesscode: the Salto site id is not configured (salto.site_id)")
	case len(cfg.PINKey) < agent.MinPINKeyLength:
		return nil, errors.New("accesscode: a PIN key is required to store codes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string {
			b := make([]byte, 8)
			rand.Read(b)
			return "ac_" + hex.EncodeToString(b)
		}
	}
	return &Service{cfg: cfg, log: cfg.Logger}, nil
}

// Request asks for a new access code.
type Request struct {
	Door     string
	Name     string
	StartsAt time.Time // zero: now
	EndsAt   time.Time // zero: ongoing
}

// alias is the Salto alias of a code's guest: it finds the guest again when a
// crash came between its creation and recording its id.
func alias(id string) string { return "portier-ac:" + id }

func (s *Service) door(id string) (agent.Door, error) {
	for _, d := range s.cfg.Doors {
		if d.ID == id {
			return d, nil
		}
	}
	return agent.Door{}, &Error{Type: InvalidInput, Message: fmt.Sprintf("no door %q in the config", id)}
}

// Create programs a new access code and returns it with its PIN. The PIN is
// returned here once and never again.
func (s *Service) Create(ctx context.Context, req Request) (agent.AccessCode, string, error) {
	d, err := s.door(req.Door)
	if err != nil {
		return agent.AccessCode{}, "", err
	}
	if d.Mode != agent.ModePIN && d.Mode != agent.ModeCardOrPIN {
		return agent.AccessCode{}, "", &Error{Type: InvalidInput, Message: fmt.Sprintf("door %q has mode %s: a PIN alone does not open it (use a door with mode pin or card_or_pin)", d.ID, d.Mode)}
	}
	if len(d.GroupIDs) == 0 {
		return agent.AccessCode{}, "", &Error{Type: InvalidInput, Message: fmt.Sprintf("door %q has no salto_access_groups: an access code's user is added to the door's first access group", d.ID)}
	}
	if !req.EndsAt.IsZero() && !req.EndsAt.After(req.StartsAt) {
		return agent.AccessCode{}, "", &Error{Type: InvalidInput, Message: "ends_at must be after starts_at"}
	}
	if !req.EndsAt.IsZero() && !req.EndsAt.After(s.cfg.Now()) {
		return agent.AccessCode{}, "", &Error{Type: InvalidInput, Message: "ends_at is in the past"}
	}
	now := s.cfg.Now()
	ac := agent.AccessCode{ID: s.cfg.NewID(), Door: d.ID, Name: req.Name, Status: agent.AccessCodeSetting, Step: StepRecorded,
		SaltoGroupID: d.GroupIDs[0], StartsAt: req.StartsAt, EndsAt: req.EndsAt, CreatedAt: now, UpdatedAt: now}
	if ac.Name == "" {
		ac.Name = ac.ID
	}
	if err := s.save(ctx, &ac, nil, ""); err != nil {
		return ac, "", err
	}
	pin, err := s.program(ctx, &ac)
	if errors.Is(err, errCrash) {
		return ac, "", err
	}
	if err != nil {
		if rbErr := s.rollback(context.WithoutCancel(ctx), &ac, err.Error()); rbErr != nil {
			s.log.Error("access code rollback failed; it stays 'removing' and is retried at the next start", "id", ac.ID, "err", rbErr)
		}
		return ac, "", err
	}
	s.changed(ctx)
	return ac, pin, nil
}

// errCrash marks an operation stopped by a Checkpoint (a simulated crash).
var errCrash = errors.New("accesscode: stopped at a checkpoint")

func (s *Service) checkpoint(step string) error {
	if s.cfg.Checkpoint == nil {
		return nil
	}
	if err := s.cfg.Checkpoint(step); err != nil {
		return fmt.Errorf("%w %s: %w", errCrash, step, err)
	}
	return nil
}

func (s *Service) save(ctx context.Context, ac *agent.AccessCode, put *agent.Credential, drop string) error {
	ac.UpdatedAt = s.cfg.Now()
	if err := s.cfg.Store.SaveAccessCode(ctx, *ac, put, drop); err != nil {
		return fmt.Errorf("accesscode: record %s: %w", ac.ID, err)
	}
	return s.checkpoint(ac.Step)
}

func saltoErr(what string, err error) error {
	return &Error{Type: SaltoFailed, Message: what, Err: err}
}

// program runs the Salto steps of a creation.
func (s *Service) program(ctx context.Context, ac *agent.AccessCode) (string, error) {
	site := s.cfg.SiteID
	var exp *time.Time
	if !ac.EndsAt.IsZero() {
		exp = &ac.EndsAt
	}
	u, err := s.cfg.Salto.CreateGuest(ctx, site, saltoks.NewGuest{Alias: alias(ac.ID), ExpiresAt: exp})
	if err != nil {
		return "", saltoErr("create the Salto guest", err)
	}
	ac.SaltoUserID, ac.SaltoPlatformID, ac.Step = u.ID, u.User.ID, StepUserCreated
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	if u.Suspended() {
		return "", &Error{Type: NotSubscribed, Message: notSubscribedMessage}
	}
	on := true
	if _, err := s.cfg.Salto.UpdateUser(ctx, site, u.ID, saltoks.UserPatch{UsePIN: &on}); err != nil {
		return "", saltoErr("enable PIN use for the Salto guest", err)
	}
	ac.Step = StepPINEnabled
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	if err := s.cfg.Salto.AddGroupUser(ctx, site, ac.SaltoGroupID, u.User.ID); err != nil {
		return "", saltoErr("add the Salto guest to access group "+ac.SaltoGroupID, err)
	}
	ac.Step = StepGroupAdded
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	pin, err := s.cfg.Salto.GeneratePIN(ctx, site, u.ID, exp)
	if err != nil {
		return "", saltoErr("have Salto generate the PIN", err)
	}
	if err := agent.ValidatePIN(pin); err != nil {
		return "", saltoErr("Salto generated an unusable PIN", err)
	}
	if err := s.checkpoint(StepPINGenerated); err != nil {
		return "", err
	}
	cred := agent.Credential{Key: s.cfg.PINKey.Key(pin), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: u.ID,
		StartsAt: ac.StartsAt, EndsAt: ac.EndsAt, Label: "access code " + ac.ID + ": " + ac.Name}
	ac.CredentialKey, ac.Status, ac.Step, ac.Error = cred.Key, agent.AccessCodeSet, StepDone, ""
	if err := s.save(ctx, ac, &cred, ""); err != nil {
		return "", err
	}
	return pin, nil
}

// rollback undoes a creation: revoke locally, delete the Salto user, unset.
// On a Salto failure the code stays "removing" for Resume.
func (s *Service) rollback(ctx context.Context, ac *agent.AccessCode, reason string) error {
	drop := ac.CredentialKey
	ac.Status, ac.Step, ac.Error, ac.CredentialKey = agent.AccessCodeRemoving, StepRevoked, reason, ""
	if err := s.save(ctx, ac, nil, drop); err != nil {
		return err
	}
	if err := s.removeSaltoUser(ctx, ac); err != nil {
		ac.Error = reason + "; removing the Salto user failed: " + err.Error()
		s.save(ctx, ac, nil, "")
		return err
	}
	ac.Status, ac.Step = agent.AccessCodeUnset, StepDone
	return s.save(ctx, ac, nil, "")
}

// removeSaltoUser deletes the code's Salto user, finding it by alias when its
// id was never recorded. A user already gone is fine.
func (s *Service) removeSaltoUser(ctx context.Context, ac *agent.AccessCode) error {
	ids := []string{}
	if ac.SaltoUserID != "" {
		ids = append(ids, ac.SaltoUserID)
	}
	if ac.SaltoUserID == "" {
		err := s.cfg.Salto.Users(ctx, s.cfg.SiteID, "alias eq '"+alias(ac.ID)+"'", func(p []saltoks.SiteUser) error {
			for _, u := range p {
				if u.Alias == alias(ac.ID) && !slices.Contains(ids, u.ID) {
					ids = append(ids, u.ID)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("look for the Salto guest: %w", err)
		}
	}
	for _, id := range ids {
		if err := s.cfg.Salto.DeleteUser(ctx, s.cfg.SiteID, id); err != nil && !saltoks.IsNotFound(err) {
			return fmt.Errorf("delete Salto user %s: %w", id, err)
		}
	}
	return nil
}

// Delete removes an access code: it stops working locally at once, then its
// Salto user is deleted (freeing the seat).
func (s *Service) Delete(ctx context.Context, id string) (agent.AccessCode, error) {
	ac, err := s.cfg.Store.AccessCode(ctx, id)
	if errors.Is(err, agent.ErrNotFound) {
		return ac, &Error{Type: NotFound, Message: fmt.Sprintf("no access code %q", id)}
	}
	if err != nil {
		return ac, err
	}
	if ac.Status == agent.AccessCodeUnset {
		return ac, nil
	}
	if err := s.rollback(ctx, &ac, "deleted"); err != nil {
		if errors.Is(err, errCrash) {
			return ac, err
		}
		return ac, saltoErr("the code no longer opens the door, but its Salto user could not be deleted yet (retried at the next start or delete)", err)
	}
	s.changed(ctx)
	return ac, nil
}

// List returns every access code record.
func (s *Service) List(ctx context.Context) ([]agent.AccessCode, error) {
	return s.cfg.Store.AccessCodes(ctx)
}

// Resume finishes operations a crash interrupted: a code still "setting" was
// never handed to anyone, so it is rolled back; a code "removing" is removed.
// It returns the codes it touched.
func (s *Service) Resume(ctx context.Context) ([]agent.AccessCode, error) {
	list, err := s.cfg.Store.AccessCodes(ctx)
	if err != nil {
		return nil, err
	}
	var touched []agent.AccessCode
	var errs []error
	for _, ac := range list {
		switch ac.Status {
		case agent.AccessCodeSetting:
			s.log.Warn("rolling back an access code whose creation was interrupted", "id", ac.ID, "step", ac.Step)
			errs = append(errs, s.rollback(ctx, &ac, "creation interrupted at step "+ac.Step+"; rolled back"))
		case agent.AccessCodeRemoving:
			s.log.Warn("finishing the removal of an access code", "id", ac.ID, "step", ac.Step)
			reason := ac.Error
			if reason == "" {
				reason = "deleted"
			}
			errs = append(errs, s.rollback(ctx, &ac, reason))
		default:
			continue
		}
		touched = append(touched, ac)
	}
	if len(touched) > 0 {
		s.changed(ctx)
	}
	return touched, errors.Join(errs...)
}

// Expire deletes the codes whose validity ended (as Seam removes them after
// ends_at), freeing their Salto seats. The runtime calls it periodically.
func (s *Service) Expire(ctx context.Context) ([]agent.AccessCode, error) {
	list, err := s.cfg.Store.AccessCodes(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var done []agent.AccessCode
	var errs []error
	for _, ac := range list {
		if ac.Status != agent.AccessCodeSet || ac.EndsAt.IsZero() || ac.EndsAt.After(now) {
			continue
		}
		if err := s.rollback(ctx, &ac, "expired"); err != nil {
			errs = append(errs, fmt.Errorf("access code %s: %w", ac.ID, err))
			continue
		}
		done = append(done, ac)
	}
	if len(done) > 0 {
		s.changed(ctx)
	}
	return done, errors.Join(errs...)
}

func (s *Service) changed(ctx context.Context) {
	if s.cfg.Changed == nil {
		return
	}
	if err := s.cfg.Changed(ctx); err != nil {
		s.log.Warn("after an access code change", "err", err)
	}
}
