package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portier-io/portier/agent"
	"github.com/portier-io/portier/cmd/portier/control"
	"github.com/portier-io/portier/hal"
	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/mfrc522/cardcheck"
)

// `portier card` issues, inspects and re-keys DESFire cards at a door's
// reader. The reader belongs to the running daemon (its loop polls the
// card), so the command asks the daemon over the control socket and the
// daemon's reader loop does the card work (hal.CardJob); with the daemon
// stopped there is no reader to ask, and the command says so.

func cmdCard(ctx context.Context, e *env, args []string) int {
	ops := map[string]func(context.Context, *env, []string) int{
		"issue":   cardIssue,
		"inspect": cardInspect,
		"rekey":   cardRekey,
	}
	if len(args) == 0 || ops[args[0]] == nil {
		return opUsage(e, "card", args, `Usage: portier card issue|inspect|rekey DOOR [flags]

  issue DOOR --tag-number N [--reissue]   personalise a blank DESFire card for a Salto tag number
  inspect DOOR                            say what a card is (nothing is changed)
  rekey DOOR                              move an issued card to the newest site key version

The running agent does the card work at the door's reader: present the card
when asked. The next card presented is the one worked on: use a reader
nobody taps meanwhile, or name the card with --uid (needed with --reissue).
Run `+"`portier card <op> -h`"+` for the flags.
`)
	}
	return ops[args[0]](ctx, e, args[1:])
}

func cardIssue(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "card issue", "DOOR --tag-number N [--reissue --uid HEX] [--wait 60s] [--json]", needControl)
	tag := s.fs.String("tag-number", "", "the Salto tag number the card will carry")
	reissue := s.fs.Bool("reissue", false, "replace the site application of a card issued before (its old identity stops working); needs --uid")
	return runCard(ctx, s, args, control.CardRequest{Op: control.CardIssue}, func(r *control.CardRequest) error {
		if *tag == "" {
			return errors.New("--tag-number is required")
		}
		if *reissue && r.UID == "" {
			return errors.New("--reissue needs --uid (from portier card inspect): it must not hit a card tapped in the meantime")
		}
		n, err := agent.NormalizeTagNumber(*tag)
		r.TagNumber, r.Reissue = n, *reissue
		return err
	})
}

func cardInspect(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "card inspect", "DOOR [--wait 60s] [--json]", needControl)
	return runCard(ctx, s, args, control.CardRequest{Op: control.CardInspect}, nil)
}

func cardRekey(ctx context.Context, e *env, args []string) int {
	s := newSession(e, "card rekey", "DOOR [--wait 60s] [--json]", needControl)
	return runCard(ctx, s, args, control.CardRequest{Op: control.CardRekey}, nil)
}

// runCard parses a card command's flags, sends the request and prints the
// progress (standard error) and the report (standard output).
func runCard(ctx context.Context, s *session, args []string, req control.CardRequest, prepare func(*control.CardRequest) error) int {
	e := s.e
	wait := s.fs.Duration("wait", control.CardWaitDefault, "how long to wait for the card")
	uid := s.fs.String("uid", "", "work only on the card with this UID (hex); any other card presented is left untouched")
	if code, ok := s.parse(args, 1); !ok {
		return code
	}
	if *uid != "" {
		b, err := agent.ParseUID(*uid)
		if err != nil {
			return fail(e, exitUsage, "--uid: %v", err)
		}
		req.UID = strings.ToUpper(hex.EncodeToString(b))
	}
	if prepare != nil {
		if err := prepare(&req); err != nil {
			return argsError(e, s.fs, "%v", err)
		}
	}
	req.Wait = wait.String()
	if code, ok := s.open(ctx); !ok {
		return code
	}
	defer s.close()
	door := s.fs.Arg(0)
	fmt.Fprintf(e.stderr, "portier card %s at door %s\n", req.Op, door)
	rep, err := s.control().Card(ctx, door, req, func(step string) { fmt.Fprintf(e.stderr, "  … %s\n", step) })
	if err != nil {
		return fail(e, exitFailed, "card %s: %v", req.Op, err)
	}
	if *s.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return exitOK
	}
	printCardReport(e.stdout, rep)
	return exitOK
}

func printCardReport(w io.Writer, r control.CardReport) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s %s\n", k+":", v)
		}
	}
	line("card", r.Product)
	ids := fmt.Sprintf("%s (ATQA %s, SAK %s", r.UID, r.ATQA, r.SAK)
	if r.ATS != "" {
		ids += ", ATS " + r.ATS
	}
	line("UID", ids+")")
	line("version", r.Version)
	line("originality", r.Originality)
	line("card master", r.CardMasterKey)
	site := r.Site
	if r.Site == "issued" {
		site = fmt.Sprintf("issued: tag number %s, card generation %d", r.TagNumber, r.Generation)
		if r.KeyVersion != nil {
			site += fmt.Sprintf(", site key version %d", *r.KeyVersion)
		}
		if r.User != nil {
			site += ", held by " + r.User.Name
		} else {
			site += ", no user in the cache holds this tag number yet"
		}
	}
	line("site app", site)
	switch r.Op {
	case control.CardIssue:
		fmt.Fprintf(w, "\nThe card is issued. It opens the doors its holder may use: DESFire doors by its key, uid doors by its UID and fingerprint.\n")
	case control.CardRekey:
		fmt.Fprintf(w, "\nThe card now uses site key version %d.\n", *r.KeyVersion)
	}
}

// cardJobber is a board whose RFID readers take card jobs (both boards).
type cardJobber interface {
	CardJob(ctx context.Context, door string, job hal.CardJob, ready func()) error
}

// cardOp is one card operation in the daemon.
type cardOp struct {
	d        *daemon
	door     string
	cmd      agent.Command // who asked, for the audit trail
	req      control.CardRequest
	keys     []desfire.SiteKeys // every key set of the key file, newest first
	progress func(string)
	rep      control.CardReport

	issuing  desfire.SiteKeys // issue, rekey: the newest set with all masters
	identity desfire.Identity // issue
	fp       desfire.Fingerprint
}

// card runs a card operation at door's reader for the control socket. A
// failed issue or rekey is recorded, card_operation_failed.
func (d *daemon) card(ctx context.Context, door string, cmd agent.Command, req control.CardRequest, progress func(string)) (_ control.CardReport, err error) {
	o := &cardOp{d: d, door: door, cmd: cmd, req: req, progress: progress, rep: control.CardReport{Op: req.Op, Door: door}}
	defer func() {
		if err != nil && req.Op != control.CardInspect {
			o.recordFailure(ctx, err)
		}
	}()
	jb, ok := d.board.(cardJobber)
	if !ok || d.cfg.Hardware.Doors[door].MFRC522 == nil {
		return o.rep, fmt.Errorf("door %s has no MFRC522 reader: card operations need one", door)
	}
	wait, err := req.WaitFor()
	if err != nil {
		return o.rep, err
	}
	// The key file is read now, not at start: an issuing station's masters
	// may be put in place for a session of issuing.
	if o.keys, err = d.cfg.DESFireKeys(); err != nil {
		return o.rep, err
	}
	var job hal.CardJob
	switch req.Op {
	case control.CardInspect:
		job = o.inspect
	case control.CardIssue:
		if err := o.prepareIssue(ctx); err != nil {
			return o.rep, err
		}
		job = o.issue
	case control.CardRekey:
		if err := o.needMasters(); err != nil {
			return o.rep, err
		}
		job = o.rekey
	default:
		return o.rep, fmt.Errorf("card operation %q", req.Op)
	}
	// wait bounds the wait for a card only: once the reader has the card
	// the job runs to its end, as a half-issued card helps nobody.
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var state atomic.Int32 // 0 waiting, 1 working, 2 given up
	timer := time.AfterFunc(wait, func() {
		if state.CompareAndSwap(0, 2) {
			cancel()
		}
	})
	defer timer.Stop()
	err = jb.CardJob(jctx, door, func(ctx context.Context, pc hal.PresentedCard) error {
		if !state.CompareAndSwap(0, 1) {
			return ctx.Err()
		}
		o.fp.UID = pc.UID // the card worked on, also should it fail before its fingerprint
		if got := strings.ToUpper(hex.EncodeToString(pc.UID)); req.UID != "" && got != req.UID {
			return fmt.Errorf("the card presented (UID %s) is not the one named (--uid %s): it was left untouched", got, req.UID)
		}
		return job(ctx, pc)
	}, func() {
		progress(fmt.Sprintf("present the card at door %s's reader (a card lying on it already: take it away and present it again)", door))
	})
	switch {
	case state.Load() == 2:
		return o.rep, fmt.Errorf("no card was presented within %s", wait)
	case err != nil:
		return o.rep, err
	}
	switch req.Op {
	case control.CardIssue:
		return o.rep, o.record(ctx)
	case control.CardRekey:
		o.event(ctx, agent.EventCardRekeyed, fmt.Sprintf("moved to site key version %d", o.issuing.Version))
	}
	return o.rep, nil
}

// needMasters picks the newest key set with all three masters.
func (o *cardOp) needMasters() error {
	for _, k := range o.keys {
		if k.PICC != nil && k.App != nil {
			o.issuing = k
			return nil
		}
	}
	if len(o.keys) == 0 {
		return errors.New("no DESFire key file: set cards.desfire_key_file to the site's key file (docs/install.md, \"Protected cards\")")
	}
	return errors.New("the DESFire key file holds only read keys: issue and rekey cards at the issuing station, whose key file also has the picc and app masters (docs/install.md)")
}

// prepareIssue picks the keys and the identity: the next generation of
// the tag number.
func (o *cardOp) prepareIssue(ctx context.Context) error {
	if err := o.needMasters(); err != nil {
		return err
	}
	tag := o.req.TagNumber
	n, err := strconv.ParseUint(tag, 10, 32)
	if err != nil {
		return fmt.Errorf("tag number %q", tag)
	}
	rec, err := o.d.db.Card(ctx, agent.TagKey(tag))
	if err != nil {
		return err
	}
	issued := o.d.e.now().UTC().Truncate(time.Second)
	byClock := issued
	if o.d.guard != nil && o.d.guard.Untrusted() {
		byClock = time.Time{}
		o.progress("the gateway's clock is not trusted (" + o.d.guard.Reason() + "): the card's generation counts only the cards this gateway knows for the tag number, so a lost card issued elsewhere keeps opening doors until this card is tapped there; issue once the clock is synchronised, or give the member a new tag number in Salto KS")
	}
	o.identity = desfire.Identity{TagNumber: uint32(n), Generation: desfire.NextGeneration(rec.Generation, byClock), Issued: issued}
	masked := agent.CardTagNumber(tag).Masked()
	if f, _, err := o.d.db.Lookup(ctx, agent.TagKey(tag)); err == nil && f != nil && f.User != nil {
		o.rep.User = f.User.Ref()
		o.progress(fmt.Sprintf("the card will be %s, held by %s", masked, f.User.Ref().Name))
	} else {
		o.progress(fmt.Sprintf("the card will be %s; no user in the cache holds it yet: it opens once a sync brings its holder", masked))
	}
	if rec.Generation > 0 {
		o.progress(fmt.Sprintf("card generation %d: the card issued before for this tag number (generation %d) is refused once this one is recorded", o.identity.Generation, rec.Generation))
	}
	return nil
}

// desfireCard takes the presented card's fingerprint into the report and
// returns a DESFire client for it; a card that is no DESFire is an error.
func (o *cardOp) desfireCard(ctx context.Context, pc hal.PresentedCard) (*desfire.Card, error) {
	o.fp = desfire.Fingerprint{UID: pc.UID, ATQA: pc.ATQA, SAK: pc.SAK, ATS: pc.ATS}
	o.report()
	if pc.Link == nil {
		return nil, fmt.Errorf("the card is a %s, not a DESFire", o.fp.Describe())
	}
	o.progress("reading the card's version and originality signature")
	fp, err := desfire.CaptureFingerprint(ctx, pc.Link, o.fp, pc.Trusted)
	o.fp = fp
	o.report()
	if err != nil {
		return nil, cardTrouble(err)
	}
	o.progress("the card is a " + fp.Describe())
	if v, err := desfire.ParseVersion(fp.Version); err != nil || v.Generation() == desfire.GenUnknown {
		return nil, fmt.Errorf("the card is a %s, not a DESFire", fp.Describe())
	}
	return desfire.New(pc.Link, desfire.Options{}), nil
}

// report fills the report's card fields from the fingerprint.
func (o *cardOp) report() {
	f := o.fp
	o.rep.UID = strings.ToUpper(hex.EncodeToString(f.UID))
	o.rep.ATQA, o.rep.SAK = fmt.Sprintf("%04X", f.ATQA), fmt.Sprintf("%02X", f.SAK)
	o.rep.ATS = strings.ToUpper(hex.EncodeToString(f.ATS))
	o.rep.Product = f.Describe()
	if v, err := desfire.ParseVersion(f.Version); err == nil {
		o.rep.Version = v.String()
	}
	switch {
	case f.Original != "":
		o.rep.Originality = "verified (" + f.Original + ")"
	case f.Signature != nil:
		o.rep.Originality = "does NOT verify under a trusted key"
	case f.SignatureRefusal != "":
		o.rep.Originality = "none (" + f.SignatureRefusal + ")"
	}
}

// cardTrouble words a failed exchange for the operator.
func cardTrouble(err error) error {
	if (&cardcheck.Result{Err: err}).Cause() == "removed" {
		return fmt.Errorf("the card stopped answering (taken away too early?): present it again and hold it still until done (%w)", err)
	}
	return err
}

func (o *cardOp) issue(ctx context.Context, pc hal.PresentedCard) error {
	c, err := o.desfireCard(ctx, pc)
	if err != nil {
		return err
	}
	err = desfire.Issue(ctx, c, pc.UID, o.issuing, o.identity, desfire.IssueOptions{Reissue: o.req.Reissue, Progress: o.progress})
	switch {
	case errors.Is(err, desfire.ErrAlreadyIssued):
		return fmt.Errorf("the card already carries this site's application: run again with --reissue --uid %X to replace it (its old identity stops working; also after an issue that was interrupted)", pc.UID)
	case errors.Is(err, desfire.ErrUnknownPICCKey):
		return errors.New("the card's master key is neither this site's nor a factory default: the card belongs to another system, Portier leaves it alone")
	case errors.Is(err, desfire.ErrRandomUID):
		return errors.New("the card presents a random UID: Portier diversifies its keys with the fixed one; turn random ID off or use another card")
	case err != nil:
		return cardTrouble(err)
	}
	v := int(o.issuing.Version)
	o.rep.Site, o.rep.TagNumber, o.rep.Generation, o.rep.KeyVersion = "issued", o.req.TagNumber, o.identity.Generation, &v
	return nil
}

// record writes the issued card to the cache: its generation (older cards
// of the tag number are refused from now on) and its UID with its
// fingerprint (so uid doors know it too), then the card_issued event.
func (o *cardOp) record(ctx context.Context) error {
	tag := o.req.TagNumber
	if err := o.d.db.LearnCard(ctx, agent.CardLearning{Key: agent.TagKey(tag), Card: agent.CardRecord{Generation: o.identity.Generation}}); err != nil {
		return fmt.Errorf("the card is issued but its generation was not recorded (the card it replaces still opens): %w", err)
	}
	key, err := agent.UIDKey(o.fp.UID)
	if err == nil {
		var u *agent.UserRef
		u, err = o.d.db.Enrol(ctx, agent.Enrolment{Key: key, TagNumber: tag, Fingerprint: o.fp.MatchKey()})
		if u != nil {
			o.rep.User = u
		}
	}
	if err != nil {
		return fmt.Errorf("the card is issued but its UID was not enrolled (uid doors will not know it): %w", err)
	}
	o.progress("recorded: tag number, card generation and the card's UID with its fingerprint")
	o.event(ctx, agent.EventCardIssued, fmt.Sprintf("%s, card generation %d, site key version %d (%s)", agent.CardTagNumber(tag).Masked(), o.identity.Generation, o.issuing.Version, o.rep.Product))
	return nil
}

// event records a card event of this operation.
func (o *cardOp) event(ctx context.Context, t agent.EventType, detail string) {
	p := agent.CardDESFire(o.fp.UID, o.rep.TagNumber, agent.CardCheck{})
	o.emit(ctx, agent.Event{Time: o.d.e.now(), Type: t, Door: o.door, User: o.rep.User, Kind: agent.KindDESFire, Credential: p.Masked(), Detail: detail,
		CommandID: o.cmd.ID, Actor: o.cmd.Actor})
}

// recordFailure records the failed issue or rekey (err: how it failed). It
// is recorded also when the operator gave up (ctx ended): a card may have
// been half changed all the same.
func (o *cardOp) recordFailure(ctx context.Context, err error) {
	if errors.Is(ctx.Err(), context.Canceled) {
		err = fmt.Errorf("the operator's command gave up before it ended: %w", err)
	}
	f := agent.CardFailure{Command: o.cmd, Op: agent.CardOpRekey, Door: o.door, TagNumber: o.rep.TagNumber, UID: o.fp.UID, User: o.rep.User, Err: err}
	if o.req.Op == control.CardIssue {
		f.Op, f.TagNumber = agent.CardOpIssue, o.req.TagNumber
	}
	if o.req.UID != "" {
		f.Named, _ = hex.DecodeString(o.req.UID) // normalised by the control socket
	}
	o.emit(context.WithoutCancel(ctx), f.Event(o.d.e.now()))
}

// emit records one of the operation's events.
func (o *cardOp) emit(ctx context.Context, e agent.Event) {
	if err := o.d.events.Record(ctx, e); err != nil {
		o.d.log.Error("record card event", "type", string(e.Type), "door", o.door, "err", err)
	}
}

func (o *cardOp) inspect(ctx context.Context, pc hal.PresentedCard) error {
	c, err := o.desfireCard(ctx, pc)
	if err != nil {
		if pc.Link == nil || o.fp.Version == nil {
			o.rep.Site = "not_desfire"
			return nil // a card that is no DESFire is an answer too
		}
		return err
	}
	o.progress("checking the card master key (the factory default, the site's)")
	o.rep.CardMasterKey = o.probeCardMaster(ctx, c, pc.UID)
	if len(o.keys) == 0 {
		o.rep.Site = "not checked: no DESFire key file"
		return nil
	}
	o.progress("reading the site application with the read key")
	id, used, err := desfire.ReadIdentityKeys(ctx, c, pc.UID, o.keys...)
	if err != nil {
		cause := (&cardcheck.Result{Err: err}).Cause()
		if cause == "removed" {
			return cardTrouble(err)
		}
		o.rep.Site = cause
		return nil
	}
	v := int(used.Version)
	o.rep.Site, o.rep.Generation, o.rep.KeyVersion = "issued", id.Generation, &v
	o.rep.TagNumber = fmt.Sprintf("%08d", id.TagNumber)
	if f, _, err := o.d.db.Lookup(ctx, agent.TagKey(o.rep.TagNumber)); err == nil && f != nil && f.User != nil {
		o.rep.User = f.User.Ref()
	}
	return nil
}

// probeCardMaster says whose the card master key is, trying only the
// factory default and the site's (authentication attempts change nothing).
func (o *cardOp) probeCardMaster(ctx context.Context, c *desfire.Card, uid []byte) string {
	if err := c.SelectApplication(ctx, desfire.PICCAID); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	if c.AuthenticateISO(ctx, 0, desfire.FactoryPICCKey()) == nil {
		return "factory default: a blank card"
	}
	for _, k := range o.keys {
		if k.PICC == nil {
			continue
		}
		ck, err := k.ForCard(uid)
		if err != nil {
			break
		}
		err = c.AuthenticateEV2First(ctx, 0, ck.PICC)
		if errors.Is(err, desfire.StatusIllegalCommand) {
			err = c.AuthenticateAES(ctx, 0, ck.PICC)
		}
		if err == nil {
			return fmt.Sprintf("this site's (key version %d)", k.Version)
		}
	}
	if c.AuthenticateEV2First(ctx, 0, desfire.ZeroAESKey()) == nil {
		return "factory AES default: a blank card"
	}
	return "not a factory default (this site's is not in the key file, or another system's)"
}

func (o *cardOp) rekey(ctx context.Context, pc hal.PresentedCard) error {
	c, err := o.desfireCard(ctx, pc)
	if err != nil {
		return err
	}
	o.progress("reading the card's identity and key version")
	id, used, err := desfire.ReadIdentityKeys(ctx, c, pc.UID, o.keys...)
	if err != nil {
		return fmt.Errorf("no key set of the key file reads the card (%s): %w", (&cardcheck.Result{Err: err}).Cause(), cardTrouble(err))
	}
	o.rep.Site, o.rep.TagNumber, o.rep.Generation = "issued", fmt.Sprintf("%08d", id.TagNumber), id.Generation
	// The holder, for the report and for the event, also of a failure.
	if f, _, err := o.d.db.Lookup(ctx, agent.TagKey(o.rep.TagNumber)); err == nil && f != nil && f.User != nil {
		o.rep.User = f.User.Ref()
	}
	next := o.issuing
	var old *desfire.SiteKeys
	for i, k := range o.keys { // newest first
		if k.PICC == nil || k.Version == next.Version {
			continue
		}
		if used.Version == next.Version || k.Version == used.Version {
			old = &o.keys[i]
			break
		}
	}
	if old == nil {
		v := int(used.Version)
		o.rep.KeyVersion = &v
		if used.Version == next.Version {
			return fmt.Errorf("the card already uses site key version %d, the newest", next.Version)
		}
		return fmt.Errorf("the card uses site key version %d, whose masters are not in the key file", used.Version)
	}
	o.progress(fmt.Sprintf("moving the card from site key version %d to %d (card master, read and application keys)", used.Version, next.Version))
	if err := desfire.Rekey(ctx, c, pc.UID, *old, next); err != nil {
		return fmt.Errorf("rekey (run it again to finish: it resumes): %w", cardTrouble(err))
	}
	v := int(next.Version)
	o.rep.KeyVersion = &v
	return nil
}
