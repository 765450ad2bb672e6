package desfire

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
)

// GetVersion returns the card's version record (three frames: hardware,
// software, production data). Outside a session it needs no key.
func (c *Card) GetVersion(ctx context.Context) (Version, error) {
	resp, err := c.exchange(ctx, call{cmd: cmdGetVersion, cmdMode: CommPlain, respMode: CommPlain})
	if err != nil {
		return Version{}, err
	}
	return ParseVersion(resp)
}

// ReadSignature reads NXP's originality signature (Read_Sig, 0x3C, address
// 0): 56 bytes, r ‖ s on secp224r1, over the UID. It is read outside a
// session (inside one the card enciphers it).
func (c *Card) ReadSignature(ctx context.Context) ([]byte, error) {
	if c.sess != nil {
		return nil, errors.New("desfire: read the originality signature before authenticating")
	}
	resp, err := c.exchange(ctx, call{cmd: cmdReadSig, header: []byte{0x00}, ok: StatusSignature})
	if err != nil {
		return nil, err
	}
	if len(resp) != SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(resp), SignatureSize)
	}
	return resp, nil
}

// SelectApplication selects an application (PICCAID: the card level). It
// ends any session.
func (c *Card) SelectApplication(ctx context.Context, aid AID) error {
	c.sess = nil
	a := aid.Bytes()
	_, err := c.exchange(ctx, call{cmd: cmdSelectApplication, header: a[:]})
	return err
}

// ApplicationIDs lists the card's applications (card level; with the
// default key settings no key is needed).
func (c *Card) ApplicationIDs(ctx context.Context) ([]AID, error) {
	resp, err := c.exchange(ctx, call{cmd: cmdGetApplicationIDs, cmdMode: c.manageMode(), respMode: CommMAC, plainLen: -1})
	if err != nil {
		return nil, err
	}
	if len(resp)%3 != 0 {
		return nil, fmt.Errorf("%w: application list of %d bytes", ErrMalformed, len(resp))
	}
	aids := make([]AID, 0, len(resp)/3)
	for i := 0; i+3 <= len(resp); i += 3 {
		aids = append(aids, AID(resp[i])|AID(resp[i+1])<<8|AID(resp[i+2])<<16)
	}
	return aids, nil
}

// CardUID returns the card's real UID (GetCardUID, enciphered; needs a
// session): the one to use when the card presents a random ID.
func (c *Card) CardUID(ctx context.Context) ([]byte, error) {
	if c.sess == nil {
		return nil, ErrNotAuthenticated
	}
	resp, err := c.exchange(ctx, call{cmd: cmdGetCardUID, cmdMode: CommFull, respMode: CommFull, plainLen: -1})
	if err != nil {
		return nil, err
	}
	if len(resp) != 7 && len(resp) != 10 && len(resp) != 4 {
		return nil, fmt.Errorf("%w: UID of %d bytes", ErrMalformed, len(resp))
	}
	return resp, nil
}

// KeySettings are an application's (or the card's) key settings byte.
type KeySettings byte

// Key settings bits.
const (
	AllowChangeMasterKey    KeySettings = 0x01
	FreeDirectoryList       KeySettings = 0x02 // GetApplicationIDs/GetFileIDs without a key
	FreeCreateDelete        KeySettings = 0x04
	ConfigurationChangeable KeySettings = 0x08
	ChangeKeyWithMasterKey  KeySettings = 0x00 // high nibble: who may change keys
	ChangeKeyWithSameKey    KeySettings = 0xE0
	ChangeKeyFrozen         KeySettings = 0xF0
	FactoryPICCKeySettings  KeySettings = 0x0F
)

// CreateApplication creates an application with nKeys keys of type kt
// (all zero, version 0). Card level, with the PICC master key if the
// card's key settings require it.
func (c *Card) CreateApplication(ctx context.Context, aid AID, settings KeySettings, nKeys int, kt KeyType) error {
	if nKeys < 1 || nKeys > 14 {
		return fmt.Errorf("desfire: %d keys; an application has 1–14", nKeys)
	}
	var ks2 byte // key type in bits 7-6 of the second settings byte
	switch kt {
	case KeyDES, Key2K3DES:
	case Key3K3DES:
		ks2 = 0x40
	case KeyAES:
		ks2 = 0x80
	default:
		return fmt.Errorf("%w: application key type %s", ErrKey, kt)
	}
	a := aid.Bytes()
	h := append(a[:], byte(settings), ks2|byte(nKeys))
	_, err := c.exchange(ctx, call{cmd: cmdCreateApplication, header: h, cmdMode: c.manageMode(), respMode: CommMAC})
	return err
}

// DeleteApplication deletes an application and everything in it.
func (c *Card) DeleteApplication(ctx context.Context, aid AID) error {
	a := aid.Bytes()
	_, err := c.exchange(ctx, call{cmd: cmdDeleteApplication, header: a[:], cmdMode: c.manageMode(), respMode: CommMAC})
	return err
}

// GetKeySettings returns the selected application's key settings and key
// count (for the card level: the PICC key settings and 1).
func (c *Card) GetKeySettings(ctx context.Context) (KeySettings, int, error) {
	resp, err := c.exchange(ctx, call{cmd: cmdGetKeySettings, cmdMode: c.manageMode(), respMode: CommMAC})
	if err != nil {
		return 0, 0, err
	}
	if len(resp) != 2 {
		return 0, 0, fmt.Errorf("%w: key settings of %d bytes", ErrMalformed, len(resp))
	}
	return KeySettings(resp[0]), int(resp[1] & 0x0F), nil
}

// ChangeKeySettings replaces the selected application's (or the card's)
// key settings. Needs the application (PICC) master key; enciphered.
func (c *Card) ChangeKeySettings(ctx context.Context, s KeySettings) error {
	if c.sess == nil {
		return ErrNotAuthenticated
	}
	_, err := c.exchange(ctx, call{cmd: cmdChangeKeySettings, data: []byte{byte(s)}, cmdMode: CommFull, respMode: CommMAC})
	return err
}

// KeyVersion returns a key's version (needs no key outside a session).
func (c *Card) KeyVersion(ctx context.Context, keyNo byte) (byte, error) {
	mode := CommPlain
	if c.sess != nil {
		mode = c.manageMode()
	}
	resp, err := c.exchange(ctx, call{cmd: cmdGetKeyVersion, header: []byte{keyNo}, cmdMode: mode, respMode: CommMAC})
	if err != nil {
		return 0, err
	}
	if len(resp) != 1 {
		return 0, fmt.Errorf("%w: key version of %d bytes", ErrMalformed, len(resp))
	}
	return resp[0], nil
}

// ChangeKey replaces key keyNo (its low nibble; at card level 0x80 marks
// the new PICC master key as AES) with newKey. Changing the session's own
// key sends the new key and ends the session; changing another key sends
// new ⊕ old and a CRC of the new key, so the old key must be given.
func (c *Card) ChangeKey(ctx context.Context, keyNo byte, newKey, oldKey Key) error {
	if c.sess == nil {
		return ErrNotAuthenticated
	}
	if _, err := newKey.block(); err != nil {
		return err
	}
	same := keyNo&0x0F == c.sess.KeyNo()&0x0F
	nk := newKey.cryptogramBytes()
	body := append([]byte(nil), nk...)
	if !same {
		if _, err := oldKey.block(); err != nil {
			return err
		}
		ok := oldKey.cryptogramBytes()
		if len(ok) != len(nk) {
			return fmt.Errorf("%w: old and new keys differ in length", ErrKey)
		}
		subtle.XORBytes(body, nk, ok)
	}
	if newKey.Type == KeyAES {
		body = append(body, newKey.Version)
	}
	if _, ev1 := c.sess.(*EV1Session); ev1 {
		crc := CRC32(append([]byte{cmdChangeKey, keyNo}, body...))
		body = append(body, crc[:]...)
	}
	if !same {
		crc := CRC32(nk)
		body = append(body, crc[:]...)
	}
	_, err := c.exchange(ctx, call{cmd: cmdChangeKey, header: []byte{keyNo}, data: body, cmdMode: CommFull, raw: true, respMode: CommMAC, endsAuth: same})
	return err
}

// AccessRights of a file: the key number (0–13) needed for each kind of
// access; 14 means free access, 15 never.
type AccessRights struct {
	Read, Write, ReadWrite, Change byte
}

// Access right values besides key numbers.
const (
	AccessFree  byte = 0x0E
	AccessNever byte = 0x0F
)

// Bytes encodes the rights as the card stores them (16 bits: read, write,
// read-write, change, most significant nibble first; sent LSB first).
func (a AccessRights) Bytes() [2]byte {
	v := uint16(a.Read&0x0F)<<12 | uint16(a.Write&0x0F)<<8 | uint16(a.ReadWrite&0x0F)<<4 | uint16(a.Change&0x0F)
	return [2]byte{byte(v), byte(v >> 8)}
}

// CreateStdDataFile creates a standard data file in the selected
// application (needs its master key unless the settings allow free
// creation).
func (c *Card) CreateStdDataFile(ctx context.Context, fileNo byte, mode CommMode, access AccessRights, size int) error {
	if size <= 0 || size >= 1<<24 {
		return fmt.Errorf("desfire: file size %d", size)
	}
	ar := access.Bytes()
	h := append([]byte{fileNo, byte(mode), ar[0], ar[1]}, le24(size)...)
	_, err := c.exchange(ctx, call{cmd: cmdCreateStdDataFile, header: h, cmdMode: c.manageMode(), respMode: CommMAC})
	return err
}

// FileIDs lists the selected application's files.
func (c *Card) FileIDs(ctx context.Context) ([]byte, error) {
	return c.exchange(ctx, call{cmd: cmdGetFileIDs, cmdMode: c.manageMode(), respMode: CommMAC, plainLen: -1})
}

// ReadData reads length bytes at offset from a standard data file whose
// communication mode is mode (the file's setting decides how the card
// answers, so it must match).
func (c *Card) ReadData(ctx context.Context, fileNo byte, offset, length int, mode CommMode) ([]byte, error) {
	if length <= 0 || length >= 1<<24 || offset < 0 || offset >= 1<<24 {
		return nil, fmt.Errorf("desfire: read %d bytes at %d", length, offset)
	}
	if mode != CommPlain && c.sess == nil {
		return nil, ErrNotAuthenticated
	}
	h := append(append([]byte{fileNo}, le24(offset)...), le24(length)...)
	resp, err := c.exchange(ctx, call{cmd: cmdReadData, header: h, cmdMode: mode, respMode: mode, plainLen: length})
	if err != nil {
		return nil, err
	}
	if len(resp) != length {
		return nil, fmt.Errorf("%w: read %d bytes, asked %d", ErrMalformed, len(resp), length)
	}
	return resp, nil
}

// WriteData writes data at offset into a standard data file whose
// communication mode is mode.
func (c *Card) WriteData(ctx context.Context, fileNo byte, offset int, data []byte, mode CommMode) error {
	if len(data) == 0 || len(data) >= 1<<24 || offset < 0 || offset >= 1<<24 {
		return fmt.Errorf("desfire: write %d bytes at %d", len(data), offset)
	}
	if mode != CommPlain && c.sess == nil {
		return ErrNotAuthenticated
	}
	h := append(append([]byte{fileNo}, le24(offset)...), le24(len(data))...)
	resp := CommMAC // the answer to a protected write is its MAC
	if mode == CommPlain {
		resp = CommPlain
	}
	_, err := c.exchange(ctx, call{cmd: cmdWriteData, header: h, data: data, cmdMode: mode, respMode: resp})
	return err
}

// FileSettings are a file's settings as GetFileSettings returns them; for
// standard and backup data files Size is set.
type FileSettings struct {
	Type   byte // 0x00 standard data, 0x01 backup, 0x02 value, 0x03 linear record, 0x04 cyclic record
	Comm   CommMode
	Access AccessRights
	Size   int
	Raw    []byte
}

// FileSettings reads a file's settings.
func (c *Card) FileSettings(ctx context.Context, fileNo byte) (FileSettings, error) {
	resp, err := c.exchange(ctx, call{cmd: cmdGetFileSettings, header: []byte{fileNo}, cmdMode: c.manageMode(), respMode: CommMAC, plainLen: -1})
	if err != nil {
		return FileSettings{}, err
	}
	if len(resp) < 4 {
		return FileSettings{}, fmt.Errorf("%w: file settings of %d bytes", ErrMalformed, len(resp))
	}
	ar := uint16(resp[2]) | uint16(resp[3])<<8
	fs := FileSettings{
		Type:   resp[0],
		Comm:   CommMode(resp[1] & 0x03),
		Access: AccessRights{Read: byte(ar >> 12), Write: byte(ar>>8) & 0x0F, ReadWrite: byte(ar>>4) & 0x0F, Change: byte(ar) & 0x0F},
		Raw:    resp,
	}
	if (fs.Type == 0x00 || fs.Type == 0x01) && len(resp) >= 7 {
		fs.Size = int(resp[4]) | int(resp[5])<<8 | int(resp[6])<<16
	}
	return fs, nil
}

// DeleteFile deletes a file of the selected application.
func (c *Card) DeleteFile(ctx context.Context, fileNo byte) error {
	_, err := c.exchange(ctx, call{cmd: cmdDeleteFile, header: []byte{fileNo}, cmdMode: c.manageMode(), respMode: CommMAC})
	return err
}

// FormatPICC erases every application and file (card level, PICC master
// key). The PICC master key itself stays.
func (c *Card) FormatPICC(ctx context.Context) error {
	if c.sess == nil {
		return ErrNotAuthenticated
	}
	_, err := c.exchange(ctx, call{cmd: cmdFormatPICC, cmdMode: c.manageMode(), respMode: CommMAC})
	return err
}
