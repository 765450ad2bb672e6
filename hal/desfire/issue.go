package desfire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Issuing errors.
var (
	ErrUnknownPICCKey = errors.New("desfire: the card's PICC master key is neither the site's nor a factory default")
	ErrAlreadyIssued  = errors.New("desfire: the card already carries the site's application (re-issue it explicitly)")
	ErrRandomUID      = errors.New("desfire: the card presents a random UID; Portier diversifies keys with the fixed one")
	ErrUnsupported    = errors.New("desfire: card generation not supported for issuing")
	ErrVerify         = errors.New("desfire: the identity read back differs from the one written")
)

// IssueOptions tune Issue.
type IssueOptions struct {
	// Reissue deletes an existing site application (and its identity)
	// before creating it again.
	Reissue bool
	// PICCKeys are more keys to try for the card's PICC master key, after
	// the site's own and the factory defaults (DES zero, AES zero).
	PICCKeys []Key
	// Progress, if set, is told each step as it starts (for people
	// watching an issuing station); never a key.
	Progress func(step string)
}

func (o IssueOptions) step(s string) {
	if o.Progress != nil {
		o.Progress(s)
	}
}

// Issue personalises a card for the site. With the card selected and
// activated, and uid its 7-byte UID:
//
//  1. GetVersion: an EV1, EV2 or EV3 (or Light) card.
//  2. Authenticate at card level with the site's diversified PICC master
//     key, else the factory DES key, else AES zero (else PICCKeys).
//  3. If it was not the site's, change the PICC master key to the site's
//     (AES, diversified, with the site's key version) and authenticate
//     again: from here the card never holds a default key.
//  4. Check GetCardUID gives uid (a random-ID card is refused).
//  5. If the site's application exists: refuse, or with Reissue delete it.
//  6. Create the application (AppKeySettings, two AES keys).
//  7. Select it, authenticate key 0 with the zero AES key, change key 1
//     (read) and then key 0 (application master) to the diversified keys.
//  8. Authenticate key 0 again, create the 32-byte enciphered identity
//     file (read: key 1; write, read-write and change: key 0) and write the
//     identity.
//  9. Authenticate with key 1 and read the file back: the read key works
//     and the identity is what was written.
//  10. At card level, with the PICC master key, set PICCKeySettings (no
//     listing, creating or deleting applications without the key).
func Issue(ctx context.Context, c *Card, uid []byte, site SiteKeys, id Identity, opts IssueOptions) error {
	if site.PICC == nil || site.App == nil || site.Read == nil {
		return fmt.Errorf("%w: issuing needs all three site master keys", ErrKey)
	}
	if id.TagNumber > MaxTagNumber {
		return fmt.Errorf("%w: tag number %d", ErrIdentity, id.TagNumber)
	}
	keys, err := site.ForCard(uid)
	if err != nil {
		return err
	}
	opts.step("reading the card's version")
	v, err := c.GetVersion(ctx)
	if err != nil {
		return fmt.Errorf("desfire: issue: %w", err)
	}
	gen := v.Generation()
	if gen == GenUnknown || gen == GenD40 {
		return fmt.Errorf("%w: %s", ErrUnsupported, v)
	}
	if err := c.SelectApplication(ctx, PICCAID); err != nil {
		return err
	}
	opts.step("authenticating with the card master key (the site's, else a factory default)")
	current, err := c.authenticatePICC(ctx, gen, append([]Key{keys.PICC, FactoryPICCKey(), ZeroAESKey()}, opts.PICCKeys...))
	if err != nil {
		return err
	}
	if !current.equal(keys.PICC) {
		opts.step("replacing the factory card master key with the site's diversified key")
		if err := c.ChangeKey(ctx, 0x80|0x00, keys.PICC, current); err != nil {
			return fmt.Errorf("desfire: issue: change the PICC master key: %w", err)
		}
		if err := c.authenticateAES(ctx, 0, keys.PICC, gen); err != nil {
			return fmt.Errorf("desfire: issue: the new PICC master key: %w", err)
		}
	}
	opts.step("checking the card's real UID")
	real, err := c.CardUID(ctx)
	if err != nil {
		return fmt.Errorf("desfire: issue: %w", err)
	}
	if !bytes.Equal(real, uid) {
		return ErrRandomUID
	}
	aids, err := c.ApplicationIDs(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(aids, site.aid()) {
		if !opts.Reissue {
			return ErrAlreadyIssued
		}
		opts.step("deleting the card's old site application (reissue)")
		if err := c.DeleteApplication(ctx, site.aid()); err != nil {
			return err
		}
	}
	opts.step("creating the site application " + site.aid().String())
	if err := c.CreateApplication(ctx, site.aid(), AppKeySettings, 2, KeyAES); err != nil {
		return err
	}
	if err := c.SelectApplication(ctx, site.aid()); err != nil {
		return err
	}
	if err := c.authenticateAES(ctx, KeyAppMaster, ZeroAESKey(), gen); err != nil {
		return err
	}
	opts.step("setting the diversified read and application keys")
	if err := c.ChangeKey(ctx, KeyRead, keys.Read, ZeroAESKey()); err != nil {
		return err
	}
	if err := c.ChangeKey(ctx, KeyAppMaster, keys.App, Key{}); err != nil {
		return err
	}
	if err := c.authenticateAES(ctx, KeyAppMaster, keys.App, gen); err != nil {
		return err
	}
	opts.step("writing the identity file")
	access := AccessRights{Read: KeyRead, Write: KeyAppMaster, ReadWrite: KeyAppMaster, Change: KeyAppMaster}
	if err := c.CreateStdDataFile(ctx, IdentityFile, CommFull, access, IdentityFileSize); err != nil {
		return err
	}
	if err := c.WriteData(ctx, IdentityFile, 0, id.Encode(), CommFull); err != nil {
		return err
	}
	opts.step("reading the identity back with the read key")
	back, err := ReadIdentity(ctx, c, uid, site)
	if err != nil {
		return fmt.Errorf("desfire: issue: read back: %w", err)
	}
	if back.TagNumber != id.TagNumber || back.Generation != id.Generation || back.Issued.Unix() != id.Issued.Unix() {
		return ErrVerify
	}
	opts.step("locking the card: no application changes without the card master key")
	if err := c.SelectApplication(ctx, PICCAID); err != nil {
		return err
	}
	if err := c.authenticateAES(ctx, 0, keys.PICC, gen); err != nil {
		return err
	}
	return c.ChangeKeySettings(ctx, PICCKeySettings)
}

// authenticatePICC tries keys for the PICC master key in order and returns
// the one the card accepted. A refusal moves on to the next key; a failed
// exchange stops.
func (c *Card) authenticatePICC(ctx context.Context, gen Generation, keys []Key) (Key, error) {
	for _, k := range keys {
		var err error
		if k.Type == KeyAES {
			err = c.authenticateAES(ctx, 0, k, gen)
		} else {
			err = c.AuthenticateISO(ctx, 0, k)
		}
		var ce *CommandError
		switch {
		case err == nil:
			return k, nil
		case errors.As(err, &ce):
			continue
		default:
			return Key{}, err
		}
	}
	return Key{}, ErrUnknownPICCKey
}

func (k Key) equal(o Key) bool { return k.Type == o.Type && bytes.Equal(k.Bytes, o.Bytes) }

// Rekey moves a card issued under the old site keys to the new ones (same
// application and system identifier, typically a new key version): the
// PICC master key, the read key and the application master key. The
// identity file stays. A card already partly moved (an interrupted Rekey)
// is finished. The new read key is checked by reading the identity back.
func Rekey(ctx context.Context, c *Card, uid []byte, old, next SiteKeys) error {
	if old.aid() != next.aid() || !bytes.Equal(old.SystemID, next.SystemID) {
		return errors.New("desfire: rekey keeps the application and system identifier; issue the card again to change them")
	}
	if old.Version == next.Version {
		return errors.New("desfire: rekey needs a new key version (it tells moved keys from old ones)")
	}
	ok, err := old.ForCard(uid)
	if err != nil {
		return err
	}
	nk, err := next.ForCard(uid)
	if err != nil {
		return err
	}
	if ok.PICC.Bytes == nil || ok.App.Bytes == nil || ok.Read.Bytes == nil || nk.PICC.Bytes == nil || nk.App.Bytes == nil || nk.Read.Bytes == nil {
		return fmt.Errorf("%w: rekey needs all master keys, old and new", ErrKey)
	}
	if err := c.SelectApplication(ctx, PICCAID); err != nil {
		return err
	}
	current, err := c.authenticatePICC(ctx, GenUnknown, []Key{ok.PICC, nk.PICC})
	if err != nil {
		return err
	}
	if current.equal(ok.PICC) {
		if err := c.ChangeKey(ctx, 0x80|0x00, nk.PICC, ok.PICC); err != nil {
			return err
		}
	}
	if err := c.SelectApplication(ctx, next.aid()); err != nil {
		return err
	}
	master, err := c.authenticateKey(ctx, KeyAppMaster, ok.App, nk.App)
	if err != nil {
		return err
	}
	if master.equal(ok.App) {
		// The read key first: with the old master still in place an
		// interrupted rotation can be resumed.
		readNow, err := c.KeyVersion(ctx, KeyRead)
		if err != nil {
			return err
		}
		if readNow != next.Version {
			if err := c.ChangeKey(ctx, KeyRead, nk.Read, ok.Read); err != nil {
				return err
			}
		}
		if err := c.ChangeKey(ctx, KeyAppMaster, nk.App, Key{}); err != nil {
			return err
		}
	}
	if _, err := ReadIdentity(ctx, c, uid, next); err != nil {
		return fmt.Errorf("desfire: rekey: read back with the new read key: %w", err)
	}
	return nil
}

// authenticateKey authenticates keyNo with the first of keys the card
// accepts and returns it.
func (c *Card) authenticateKey(ctx context.Context, keyNo byte, keys ...Key) (Key, error) {
	var last error
	for _, k := range keys {
		err := c.authenticateAES(ctx, keyNo, k, GenUnknown)
		var ce *CommandError
		switch {
		case err == nil:
			return k, nil
		case errors.As(err, &ce):
			last = err
		default:
			return Key{}, err
		}
	}
	return Key{}, last
}
