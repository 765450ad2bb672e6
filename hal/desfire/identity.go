package desfire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Portier's card layout: one application holding two AES keys and one
// enciphered standard data file.
const (
	// DefaultAID is the application Portier creates unless the site
	// configures another (wire order 52 4F 50).
	DefaultAID AID = 0x504F52
	// KeyAppMaster (key 0) administers the application: changes keys,
	// creates and writes the file. Only the issuing station holds it.
	KeyAppMaster byte = 0
	// KeyRead (key 1) reads the identity file. Doors hold its master.
	KeyRead byte = 1
	// IdentityFile is the identity file's number.
	IdentityFile byte = 1
	// IdentityFileSize is its size.
	IdentityFileSize = 32
	// AppKeySettings: the master key may be changed and the settings too;
	// listing files and creating or deleting them need the master key;
	// changing a key needs the master key.
	AppKeySettings = AllowChangeMasterKey | ConfigurationChangeable | ChangeKeyWithMasterKey
	// PICCKeySettings, set on issued cards: nobody lists, creates or
	// deletes applications without the PICC master key.
	PICCKeySettings = AllowChangeMasterKey | ConfigurationChangeable
)

// Identity is the content of a card's identity file: who the card is for.
type Identity struct {
	// TagNumber is the Salto KS tag_number the card stands for (8 digits);
	// enrolment maps it to the user exactly as it maps a UID today.
	TagNumber uint32
	// Generation orders the cards issued for this tag number (NextGeneration);
	// a gateway keeps the newest it saw, so a replaced card stops opening
	// doors.
	Generation uint32
	// Issued is when the card was issued (whole seconds, UTC).
	Issued time.Time
}

// GenerationEpoch is where issue-time generations count from, in Unix
// seconds: 2025-01-01T00:00:00Z.
const GenerationEpoch = 1_735_689_600

// NextGeneration is the generation of a card issued at issued for a tag
// number whose newest card this station knows is last (0: none): the
// minutes since GenerationEpoch, or last+1 where that is more. A counter
// alone restarts at 1 on a station that never saw the lost card, which then
// keeps opening doors (the same generation as its replacement); the issue
// time orders cards issued anywhere, given right clocks. Pass a zero issued
// time when the clock is not trusted: the counter alone is used then.
func NextGeneration(last uint32, issued time.Time) uint32 {
	if last == math.MaxUint32 {
		return last // no higher generation exists: give the member a new tag number
	}
	next := last + 1
	if m := (issued.Unix() - GenerationEpoch) / 60; !issued.IsZero() && m > int64(next) && m < 1<<32 {
		next = uint32(m)
	}
	return next
}

// MaxTagNumber is the largest 8-digit tag number.
const MaxTagNumber = 99_999_999

// Identity file layout (32 bytes, big-endian numbers):
//
//	0      'P'  magic
//	1      1    format version
//	2..3   0    reserved
//	4..7   tag number
//	8..11  generation
//	12..19 issued, Unix seconds
//	20..31 0    reserved
const (
	identityMagic   = 'P'
	identityVersion = 1
)

// Encode returns the 32-byte file content.
func (id Identity) Encode() []byte {
	b := make([]byte, IdentityFileSize)
	b[0], b[1] = identityMagic, identityVersion
	binary.BigEndian.PutUint32(b[4:], id.TagNumber)
	binary.BigEndian.PutUint32(b[8:], id.Generation)
	binary.BigEndian.PutUint64(b[12:], uint64(id.Issued.Unix()))
	return b
}

// ErrIdentity: the identity file does not hold a Portier identity.
var ErrIdentity = errors.New("desfire: not a Portier identity file")

// ParseIdentity decodes an identity file, strictly: magic, version, zero
// reserved bytes and an 8-digit tag number.
func ParseIdentity(b []byte) (Identity, error) {
	if len(b) != IdentityFileSize {
		return Identity{}, fmt.Errorf("%w: %d bytes", ErrIdentity, len(b))
	}
	if b[0] != identityMagic || b[1] != identityVersion {
		return Identity{}, fmt.Errorf("%w: header % X", ErrIdentity, b[:2])
	}
	if b[2] != 0 || b[3] != 0 || !bytes.Equal(b[20:], make([]byte, 12)) {
		return Identity{}, fmt.Errorf("%w: reserved bytes set", ErrIdentity)
	}
	id := Identity{
		TagNumber:  binary.BigEndian.Uint32(b[4:]),
		Generation: binary.BigEndian.Uint32(b[8:]),
		Issued:     time.Unix(int64(binary.BigEndian.Uint64(b[12:])), 0).UTC(),
	}
	if id.TagNumber > MaxTagNumber {
		return Identity{}, fmt.Errorf("%w: tag number %d has more than 8 digits", ErrIdentity, id.TagNumber)
	}
	return id, nil
}

// SiteKeys are a site's secret master keys and the parameters of its
// cards; each card's keys are diversified from them (AN10922) with the
// card's UID, the AID and the system identifier. A door needs only Read;
// the issuing station needs all three.
type SiteKeys struct {
	AID      AID    // 0: DefaultAID
	SystemID []byte // AN10922 system identifier, at most 21 bytes (e.g. the site's name)
	PICC     []byte // 16 bytes: master of the cards' PICC master keys
	App      []byte // 16 bytes: master of the application master keys (key 0)
	Read     []byte // 16 bytes: master of the read keys (key 1)
	Version  byte   // key version written with these keys; rotation bumps it
}

func (s SiteKeys) aid() AID {
	if s.AID == 0 {
		return DefaultAID
	}
	return s.AID
}

// CardKeys are one card's diversified keys; a key whose master the site
// keys lack is the zero Key.
type CardKeys struct {
	PICC, App, Read Key
}

// ForCard diversifies the site's keys for a card's 7-byte UID.
func (s SiteKeys) ForCard(uid []byte) (CardKeys, error) {
	if len(uid) != 7 {
		return CardKeys{}, fmt.Errorf("%w: diversification needs the 7-byte UID, got %d bytes", ErrKey, len(uid))
	}
	if len(s.SystemID) > 21 {
		return CardKeys{}, fmt.Errorf("%w: system identifier of %d bytes (at most 21)", ErrKey, len(s.SystemID))
	}
	var k CardKeys
	for _, d := range []struct {
		master []byte
		aid    AID
		out    *Key
	}{{s.PICC, PICCAID, &k.PICC}, {s.App, s.aid(), &k.App}, {s.Read, s.aid(), &k.Read}} {
		if d.master == nil {
			continue
		}
		b, err := DiversifyAES128(d.master, DiversificationInput(uid, d.aid, s.SystemID))
		if err != nil {
			return CardKeys{}, err
		}
		*d.out = AESKey(b, s.Version)
	}
	return k, nil
}

// ErrNotIssued: the card has no Portier application.
var ErrNotIssued = errors.New("desfire: card not issued for this site (no application)")

// ReadIdentity is a door's check: select the site's application, prove the
// card holds its diversified read key (EV2First, or EV1 AES on an EV1 card)
// and read the enciphered identity file. Several site key sets (during a
// key rotation) are told apart by the read key's version. Any failure is
// an error: the card is refused.
func ReadIdentity(ctx context.Context, c *Card, uid []byte, sites ...SiteKeys) (Identity, error) {
	id, _, err := ReadIdentityKeys(ctx, c, uid, sites...)
	return id, err
}

// ReadIdentityKeys is ReadIdentity that also returns the key set it used:
// its Version is the card's read key version.
func ReadIdentityKeys(ctx context.Context, c *Card, uid []byte, sites ...SiteKeys) (Identity, SiteKeys, error) {
	if len(sites) == 0 {
		return Identity{}, SiteKeys{}, fmt.Errorf("%w: no site keys", ErrKey)
	}
	site := sites[0]
	if err := c.SelectApplication(ctx, site.aid()); err != nil {
		if errors.Is(err, StatusApplicationNotFound) {
			return Identity{}, site, ErrNotIssued
		}
		return Identity{}, site, err
	}
	if len(sites) > 1 {
		v, err := c.KeyVersion(ctx, KeyRead)
		if err != nil {
			return Identity{}, site, err
		}
		for _, s := range sites {
			if s.Version == v {
				site = s
				break
			}
		}
	}
	keys, err := site.ForCard(uid)
	if err != nil {
		return Identity{}, site, err
	}
	if err := c.authenticateAES(ctx, KeyRead, keys.Read, GenUnknown); err != nil {
		return Identity{}, site, err
	}
	b, err := c.ReadData(ctx, IdentityFile, 0, IdentityFileSize, CommFull)
	if err != nil {
		return Identity{}, site, err
	}
	id, err := ParseIdentity(b)
	return id, site, err
}

// authenticateAES authenticates with an AES key the way the card supports:
// EV2First, falling back to EV1 AES when the card does not know EV2First
// (or the generation says EV1).
func (c *Card) authenticateAES(ctx context.Context, keyNo byte, k Key, gen Generation) error {
	if gen == GenEV1 {
		return c.AuthenticateAES(ctx, keyNo, k)
	}
	err := c.AuthenticateEV2First(ctx, keyNo, k)
	if errors.Is(err, StatusIllegalCommand) && gen == GenUnknown {
		return c.AuthenticateAES(ctx, keyNo, k)
	}
	return err
}
