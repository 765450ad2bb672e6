// Package accesscode programs access codes (Seam's term) through Salto KS: a
// time-bound or ongoing PIN for one door. Salto generates every PIN, so a code
// is a Salto guest in the door's access group whose PIN Salto shows exactly
// once; the gateway caches only its keyed hash and hands the code to the
// caller once.
//
// Every step is recorded before the next one starts (status setting → set,
// removing → unset), so an operation cut short by a crash is finished or
// rolled back by Resume on the next start.
//
// Salto KS does not see a new guest at once (measured: about a minute of 404
// 2202 / 403 2203 right after POST /guests), so the steps after the guest's
// creation retry those answers for a bounded time (Config.ConsistencyWait,
// 90 s by default), reporting each wait through Config.Progress, and roll
// back as any failure does when it runs out. Codes that ended unset (deleted,
// expired or failed) are pruned from the records a day later
// (UnsetRetention), so failures do not pile up in the list.
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
	// PruneAccessCodes deletes the unset records last changed before
	// before and returns how many.
	PruneAccessCodes(ctx context.Context, before time.Time) (int64, error)
}

// Defaults of Config.
const (
	// DefaultConsistencyWait is how long the steps after a guest's creation
	// wait for Salto KS to see it: the measured lag was about a minute.
	DefaultConsistencyWait = 90 * time.Second
	// UnsetRetention is how long an unset code (deleted, expired, or failed
	// to be created) stays in the records, so its error can be read.
	UnsetRetention = 24 * time.Hour
)

// Progress reports a step waiting for Salto KS to see a new guest.
type Progress struct {
	Step    string        // what waits, e.g. "add the Salto guest to access group …"
	Attempt int           // attempts that got the answer so far
	Waited  time.Duration // since the guest was created
	Limit   time.Duration // the longest it is waited for
	Err     error         // Salto's last answer (2202 or 2203)
}

func (p Progress) String() string {
	return fmt.Sprintf("Salto KS does not see the new guest yet (%s: %v); trying again, waited %s of up to %s",
		p.Step, p.Err, p.Waited.Round(time.Second), p.Limit)
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
	// ConsistencyWait bounds how long the steps after a guest's creation
	// retry Salto's "not found" (2202) and "forbidden" (2203) answers;
	// default DefaultConsistencyWait.
	ConsistencyWait time.Duration
	// Progress, when set, is told about every such retry (the CLI prints it).
	Progress func(Progress)
	// Sleep waits d or until ctx is done; tests replace it so nothing sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
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
	if cfg.ConsistencyWait <= 0 {
		cfg.ConsistencyWait = DefaultConsistencyWait
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
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

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	ids := make([]string, 0, len(s.cfg.Doors))
	for _, d := range s.cfg.Doors {
		if d.ID == id {
			return d, nil
		}
		ids = append(ids, d.ID)
	}
	return agent.Door{}, &Error{Type: InvalidInput, Message: fmt.Sprintf("%v in the config", &agent.UnknownDoorError{Door: id, Doors: ids})}
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
		SaltoGroupID: saltoks.CanonicalID(d.GroupIDs[0]), StartsAt: req.StartsAt, EndsAt: req.EndsAt, CreatedAt: now, UpdatedAt: now}
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
	created := s.cfg.Now()
	ac.SaltoUserID, ac.SaltoPlatformID, ac.Step = saltoks.CanonicalID(u.ID), saltoks.CanonicalID(u.User.ID), StepUserCreated
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	if u.Suspended() {
		return "", &Error{Type: NotSubscribed, Message: notSubscribedMessage}
	}
	on := true
	what := "enable PIN use for the Salto guest"
	if err := s.untilVisible(ctx, created, what, func() error {
		_, err := s.cfg.Salto.UpdateUser(ctx, site, ac.SaltoUserID, saltoks.UserPatch{UsePIN: &on})
		return err
	}); err != nil {
		return "", saltoErr(what, err)
	}
	ac.Step = StepPINEnabled
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	what = "add the Salto guest to access group " + ac.SaltoGroupID
	if err := s.untilVisible(ctx, created, what, func() error {
		return s.cfg.Salto.AddGroupUser(ctx, site, ac.SaltoGroupID, ac.SaltoPlatformID)
	}); err != nil {
		return "", saltoErr(what, err)
	}
	ac.Step = StepGroupAdded
	if err := s.save(ctx, ac, nil, ""); err != nil {
		return "", err
	}
	var pin string
	what = "have Salto generate the PIN"
	if err := s.untilVisible(ctx, created, what, func() (err error) {
		pin, err = s.cfg.Salto.GeneratePIN(ctx, site, ac.SaltoUserID, exp)
		return err
	}); err != nil {
		return "", saltoErr(what, err)
	}
	if err := agent.ValidatePIN(pin); err != nil {
		return "", saltoErr("Salto generated an unusable PIN", err)
	}
	if err := s.checkpoint(StepPINGenerated); err != nil {
		return "", err
	}
	cred := agent.Credential{Key: s.cfg.PINKey.Key(pin), Kind: agent.KindPIN, Origin: agent.OriginLocal, UserID: ac.SaltoUserID,
		StartsAt: ac.StartsAt, EndsAt: ac.EndsAt, Label: "access code " + ac.ID + ": " + ac.Name}
	ac.CredentialKey, ac.Status, ac.Step, ac.Error = cred.Key, agent.AccessCodeSet, StepDone, ""
	if err := s.save(ctx, ac, &cred, ""); err != nil {
		return "", err
	}
	return pin, nil
}

// notVisible reports Salto's answer for an object it does not see (yet):
// 404 / 2202 or 2203.
func notVisible(err error) bool {
	var ae *saltoks.APIError
	return errors.As(err, &ae) && (ae.NotFound() || ae.Code == saltoks.CodeForbidden)
}

// untilVisible runs call until it succeeds, fails otherwise than with
// notVisible, or ConsistencyWait has passed since the guest was created.
// Waits grow 2, 4, 8, then 15 s.
func (s *Service) untilVisible(ctx context.Context, created time.Time, step string, call func() error) error {
	limit := s.cfg.ConsistencyWait
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || !notVisible(err) {
			return err
		}
		waited := s.cfg.Now().Sub(created)
		left := limit - waited
		if left <= 0 {
			return fmt.Errorf("Salto KS still did not see the new guest %s after its creation: %w", waited.Round(time.Second), err)
		}
		if s.cfg.Progress != nil {
			s.cfg.Progress(Progress{Step: step, Attempt: attempt, Waited: waited, Limit: limit, Err: err})
		}
		s.log.Info("waiting for Salto KS to see a new guest", "step", step, "attempt", attempt, "waited", waited, "err", err)
		d := min(2*time.Second<<min(attempt-1, 3), 15*time.Second, left)
		if err := s.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
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
		err := s.cfg.Salto.DeleteUser(ctx, s.cfg.SiteID, id)
		if saltoks.IsNotFound(err) {
			// Gone, or not visible yet: a guest created moments ago answers
			// 404 too. Within the window it is left "removing" and retried.
			if age := s.cfg.Now().Sub(ac.CreatedAt); id == ac.SaltoUserID && age < s.visibleWithin() {
				return fmt.Errorf("delete Salto user %s: Salto KS does not see the guest created %s ago yet; "+
					"the removal is retried by the next access-code command or start", id, age.Round(time.Second))
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("delete Salto user %s: %w", id, err)
		}
	}
	return nil
}

// visibleWithin is how long after its creation a guest's 404 may still mean
// "not visible yet" rather than "gone": ten times the wait for it.
func (s *Service) visibleWithin() time.Duration { return 10 * s.cfg.ConsistencyWait }

// prune deletes the records of codes unset for longer than UnsetRetention.
func (s *Service) prune(ctx context.Context) error {
	n, err := s.cfg.Store.PruneAccessCodes(ctx, s.cfg.Now().Add(-UnsetRetention))
	if err != nil {
		return fmt.Errorf("accesscode: prune: %w", err)
	}
	if n > 0 {
		s.log.Info("pruned access codes unset for a day", "count", n)
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
// It also prunes codes unset for longer than UnsetRetention. It returns the
// codes it touched.
func (s *Service) Resume(ctx context.Context) ([]agent.AccessCode, error) {
	list, err := s.cfg.Store.AccessCodes(ctx)
	if err != nil {
		return nil, err
	}
	var touched []agent.AccessCode
	errs := []error{s.prune(ctx)}
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
// ends_at), freeing their Salto seats, and prunes codes unset for longer than
// UnsetRetention. The runtime calls it periodically.
func (s *Service) Expire(ctx context.Context) ([]agent.AccessCode, error) {
	list, err := s.cfg.Store.AccessCodes(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var done []agent.AccessCode
	errs := []error{s.prune(ctx)}
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
