// Package desfiresim is a behavioural model of a MIFARE DESFire EV2 card
// (EV1 and EV3 by their version bytes) for tests, benchmarks and simulated
// boards: applications, standard data files and AES/DES keys; GetVersion,
// the originality signature (signed with the model's own key, since NXP's
// is not ours), EV1 (ISO, AES) and EV2 (EV2First) authentication with
// their secure messaging in plain, MAC and enciphered modes; the
// management commands Portier's issuing uses; native and ISO-wrapped
// framing with additional frames. It runs behind the MFRC522 chip model
// (Tag), which adds ISO/IEC 14443-3 and -4. Faults can be injected: a card
// pulled away mid-command, an answer replayed from an earlier session.
//
// The card's side of the protocol is written here from the DESFire
// documents' description, independently of the client's; only the
// vector-tested primitives (CMAC, session key derivation, the secure
// messaging state) are shared with hal/desfire.
package desfiresim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/mfrc522/mfrc522sim"
)

// Timing is how long the card computes (beyond the radio's frame delay).
// The defaults are estimates for a DESFire EV2 (no published per-command
// figures): to be confirmed on real cards.
type Timing struct {
	Command time.Duration // any command; 0: 1 ms
	Auth    time.Duration // each authentication step, extra; 0: 4 ms
	Crypto  time.Duration // a command in a secure session, extra; 0: 1 ms
	Write   time.Duration // a command that writes EEPROM, extra; 0: 5 ms
}

func (t Timing) withDefaults() Timing {
	if t.Command == 0 {
		t.Command = time.Millisecond
	}
	if t.Auth == 0 {
		t.Auth = 4 * time.Millisecond
	}
	if t.Crypto == 0 {
		t.Crypto = time.Millisecond
	}
	if t.Write == 0 {
		t.Write = 5 * time.Millisecond
	}
	return t
}

// Faults are injected misbehaviours. The zero value is a healthy card.
type Faults struct {
	// RemoveOn makes the card leave the field when it receives this
	// command (0xAF: the second step of an authentication, or a
	// continuation frame) for the RemoveAfter-th time (0: the first).
	RemoveOn    byte
	RemoveAfter int
	// ReplayReadData answers ReadData with the answer the card gave in its
	// previous session: an attacker replaying a recorded answer.
	ReplayReadData bool
	// ReplayAuth answers the last authentication step with the answer of
	// the previous session.
	ReplayAuth bool
}

// Config describes a card.
type Config struct {
	UID []byte // 7 bytes
	// Generation picks the version bytes and the authentications offered:
	// GenEV2 (default), GenEV1 (no EV2First) or GenEV3.
	Generation desfire.Generation
	// Version overrides the GetVersion answer (28 bytes).
	Version []byte
	// PICCKey is the card's master key; zero value: the factory DES key.
	PICCKey desfire.Key
	// PICCKeySettings; 0: the factory 0x0F.
	PICCKeySettings desfire.KeySettings
	// SigningKey signs the UID once, at manufacture, for Read_Sig
	// (secp224r1); nil: the card refuses Read_Sig (permission denied), as
	// a card without the feature.
	SigningKey *ecdsa.PrivateKey
	// Signature, if set, is what Read_Sig answers instead (an emulator
	// replaying a genuine card's signature).
	Signature []byte
	// RandomID makes the card present a random 4-byte UID in
	// anticollision; GetCardUID still tells the real one.
	RandomID bool
	ATS      []byte // nil: mfrc522sim.DefaultATS
	Timing   Timing
	Faults   Faults
	Rand     io.Reader // RndB and TI; nil: crypto/rand
}

type file struct {
	comm   desfire.CommMode
	access desfire.AccessRights
	data   []byte
}

type app struct {
	settings desfire.KeySettings
	keys     []desfire.Key
	files    map[byte]*file
}

// Card is the card model. It implements mfrc522sim.Application.
type Card struct {
	mu     sync.Mutex
	cfg    Config
	timing Timing
	rand   io.Reader
	picc   *app
	apps   map[desfire.AID]*app
	order  []desfire.AID // creation order, for GetApplicationIDs
	sel    desfire.AID

	sess    session    // nil: not authenticated
	authing *authState // an authentication waiting for its second step
	in      *inbound   // a command arriving in additional frames
	out     []outFrame // answer frames still to send
	wrapped bool       // the current command came ISO-wrapped

	seen         map[byte]int
	lastRead     []byte // last ReadData answer of the previous session, for ReplayReadData
	thisRead     []byte
	lastAuth     []byte
	thisAuth     []byte
	presentedUID []byte
	log          []string
}

// New returns a card.
func New(cfg Config) (*Card, error) {
	if len(cfg.UID) != 7 {
		return nil, fmt.Errorf("desfiresim: a DESFire UID has 7 bytes, not %d", len(cfg.UID))
	}
	if cfg.Generation == desfire.GenUnknown {
		cfg.Generation = desfire.GenEV2
	}
	if cfg.Version == nil {
		cfg.Version = DefaultVersion(cfg.Generation, cfg.UID)
	}
	if _, err := desfire.ParseVersion(cfg.Version); err != nil {
		return nil, err
	}
	if cfg.PICCKey.Bytes == nil {
		cfg.PICCKey = desfire.FactoryPICCKey()
	}
	if cfg.PICCKeySettings == 0 {
		cfg.PICCKeySettings = desfire.FactoryPICCKeySettings
	}
	r := cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	c := &Card{
		cfg:    cfg,
		timing: cfg.Timing.withDefaults(),
		rand:   r,
		picc:   &app{settings: cfg.PICCKeySettings, keys: []desfire.Key{cfg.PICCKey}},
		apps:   map[desfire.AID]*app{},
		seen:   map[byte]int{},
	}
	if cfg.Signature == nil && cfg.SigningKey != nil {
		r, s, err := ecdsa.Sign(rand.Reader, cfg.SigningKey, cfg.UID)
		if err != nil {
			return nil, err
		}
		c.cfg.Signature = make([]byte, desfire.SignatureSize)
		r.FillBytes(c.cfg.Signature[:28])
		s.FillBytes(c.cfg.Signature[28:])
	}
	c.presentedUID = cfg.UID
	if cfg.RandomID {
		c.presentedUID = make([]byte, 4)
		if _, err := io.ReadFull(r, c.presentedUID); err != nil {
			return nil, err
		}
		c.presentedUID[0] = 0x08 // ISO/IEC 14443-3: a random single-size UID starts with 08
	}
	return c, nil
}

// NewIssued returns a card as desfire.Issue leaves it for the site and
// identity: PICC master key, application, keys and identity file — the
// simple constructor for simulated boards.
func NewIssued(uid []byte, site desfire.SiteKeys, id desfire.Identity, signer *ecdsa.PrivateKey) (*Card, error) {
	return NewIssuedCard(Config{UID: uid, SigningKey: signer}, site, id)
}

// NewIssuedCard is NewIssued for a card described by cfg (its generation,
// signature, faults…); cfg's PICC key and settings are the issued ones.
func NewIssuedCard(cfg Config, site desfire.SiteKeys, id desfire.Identity) (*Card, error) {
	keys, err := site.ForCard(cfg.UID)
	if err != nil {
		return nil, err
	}
	if keys.PICC.Bytes == nil || keys.App.Bytes == nil || keys.Read.Bytes == nil {
		return nil, errors.New("desfiresim: an issued card needs the site's three master keys")
	}
	cfg.PICCKey, cfg.PICCKeySettings = keys.PICC, desfire.PICCKeySettings
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	aid := site.AID
	if aid == 0 {
		aid = desfire.DefaultAID
	}
	c.apps[aid] = &app{
		settings: desfire.AppKeySettings,
		keys:     []desfire.Key{keys.App, keys.Read},
		files: map[byte]*file{desfire.IdentityFile: {
			comm:   desfire.CommFull,
			access: desfire.AccessRights{Read: desfire.KeyRead, Write: desfire.KeyAppMaster, ReadWrite: desfire.KeyAppMaster, Change: desfire.KeyAppMaster},
			data:   id.Encode(),
		}},
	}
	c.order = append(c.order, aid)
	return c, nil
}

// DefaultVersion is a GetVersion answer: an 8 KB card of the generation
// (vendor NXP, protocol ISO/IEC 14443-2/-3), production data derived from
// the UID.
func DefaultVersion(g desfire.Generation, uid []byte) []byte {
	hwMajor, swMajor, swMinor := byte(0x12), byte(0x02), byte(0x00)
	switch g {
	case desfire.GenEV1:
		hwMajor, swMajor, swMinor = 0x01, 0x01, 0x04
	case desfire.GenEV3:
		hwMajor, swMajor = 0x33, 0x03
	}
	v := []byte{0x04, 0x01, 0x01, hwMajor, 0x00, 0x1A, 0x05, 0x04, 0x01, 0x01, swMajor, swMinor, 0x1A, 0x05}
	v = append(v, uid...)
	v = append(v, 0xBA, uid[1], uid[2], uid[3], 0x20) // batch
	return append(v, 0x21, 0x25)                      // week 21 of 2025, BCD
}

// VendorKey returns a fixed secp224r1 key made from seed, for a simulated
// card vendor whose cards must sign alike on every run (a simulated board's
// cards keep their fingerprints across restarts).
func VendorKey(seed string) (*ecdsa.PrivateKey, error) {
	d := sha256.Sum256([]byte(seed))
	return ecdsa.ParseRawPrivateKey(elliptic.P224(), d[:28])
}

// SignUID returns the originality signature of uid under k, deterministic
// (RFC 6979): the UID is the message as is, unhashed, as NXP signs it; the
// zero-padded 28-byte form is the same integer, which is what lets the
// standard library's deterministic signer take it.
func SignUID(k *ecdsa.PrivateKey, uid []byte) ([]byte, error) {
	if len(uid) > 28 {
		return nil, fmt.Errorf("desfiresim: a UID of %d bytes", len(uid))
	}
	digest := make([]byte, 28)
	copy(digest[28-len(uid):], uid)
	der, err := k.Sign(nil, digest, crypto.SHA224)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, err
	}
	sig := make([]byte, desfire.SignatureSize)
	rs.R.FillBytes(sig[:28])
	rs.S.FillBytes(sig[28:])
	return sig, nil
}

// NewSigningKey returns a secp224r1 key for a simulated card's
// originality signature.
func NewSigningKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
}

// TrustKey is the public half of a simulated signer, to add to a
// verifier's trusted keys in tests; it signs simulated EV2 cards.
func TrustKey(k *ecdsa.PrivateKey) desfire.OriginalityKey {
	return desfire.OriginalityKey{Name: "simulated card vendor", Key: &k.PublicKey, For: desfire.GenEV2}
}

// Tag returns the card as the MFRC522 model's field holds it: 7-byte UID
// (or a random one), ATQA 0x0344, SAK 0x20, a DESFire's ATS.
func (c *Card) Tag() mfrc522sim.Card {
	c.mu.Lock()
	defer c.mu.Unlock()
	atqa := uint16(0x0344)
	if len(c.presentedUID) == 4 {
		atqa = 0x0304
	}
	return mfrc522sim.Card{UID: append([]byte(nil), c.presentedUID...), ATQA: atqa, SAK: 0x20, ATS: c.cfg.ATS, App: c}
}

// Signature returns what the card answers to Read_Sig (nil: it refuses).
func (c *Card) Signature() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.cfg.Signature...)
}

// SetFaults replaces the injected faults.
func (c *Card) SetFaults(f Faults) {
	c.mu.Lock()
	c.cfg.Faults = f
	c.seen = map[byte]int{}
	c.mu.Unlock()
}

// Log returns the commands the card received (command byte and status),
// for assertions.
func (c *Card) Log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// Reset implements mfrc522sim.Resetter: a card activated anew (it left
// the field, or was deselected) has no authentication, no command in
// progress and the card level selected; its files and keys stay.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess, c.authing, c.in, c.out = nil, nil, nil, nil
	c.sel = desfire.PICCAID
}

// Process implements mfrc522sim.Application: one command in, one answer
// frame out.
func (c *Card) Process(apdu []byte) ([]byte, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ins, data, wrapped, ok := unframe(apdu)
	if !ok {
		return []byte{0x6E, 0x00}, c.timing.Command // ISO: class not supported
	}
	c.wrapped = wrapped
	f := c.cfg.Faults
	if f.RemoveOn != 0 && ins == f.RemoveOn {
		c.seen[ins]++
		if c.seen[ins] > f.RemoveAfter {
			return nil, 0
		}
	}
	st, resp, busy := c.dispatch(ins, data)
	c.log = append(c.log, fmt.Sprintf("%02X:%02X", ins, byte(st)))
	return c.frame(st, resp), busy + c.timing.Command
}

// unframe splits an ISO-wrapped (90 ins 00 00 [Lc data] 00) or native
// command.
func unframe(apdu []byte) (ins byte, data []byte, wrapped, ok bool) {
	if len(apdu) == 0 {
		return 0, nil, false, false
	}
	if apdu[0] != 0x90 {
		return apdu[0], apdu[1:], false, true
	}
	if len(apdu) < 5 || apdu[2] != 0 || apdu[3] != 0 {
		return 0, nil, false, false
	}
	if len(apdu) == 5 {
		return apdu[1], nil, true, true
	}
	lc := int(apdu[4])
	if len(apdu) != 5+lc+1 {
		return 0, nil, false, false
	}
	return apdu[1], apdu[5 : 5+lc], true, true
}

// frame builds the answer in the command's framing.
func (c *Card) frame(st desfire.Status, data []byte) []byte {
	if c.wrapped {
		return append(append([]byte(nil), data...), 0x91, byte(st))
	}
	return append([]byte{byte(st)}, data...)
}

// maxFrameData is how much answer data one frame carries; more goes in
// additional frames.
const maxFrameData = 59

// outFrame is an answer frame waiting for the reader's AF.
type outFrame struct {
	st   desfire.Status
	data []byte
}

// answer splits a whole successful answer into frames: all but the last
// with status AF, the rest queued for the reader's additional-frame
// requests.
func (c *Card) answer(data []byte) (desfire.Status, []byte) {
	if len(data) <= maxFrameData {
		return desfire.StatusOK, data
	}
	c.out = nil
	rest := data[maxFrameData:]
	for len(rest) > 0 {
		n := min(len(rest), maxFrameData)
		st := desfire.StatusAdditionalFrame
		if n == len(rest) {
			st = desfire.StatusOK
		}
		c.out = append(c.out, outFrame{st, rest[:n]})
		rest = rest[n:]
	}
	return desfire.StatusAdditionalFrame, data[:maxFrameData]
}
