package desfiresim

import (
	"bytes"
	"time"

	"github.com/portier-io/portier/hal/desfire"
)

// inbound is a command arriving in additional frames.
type inbound struct {
	ins  byte
	data []byte
	want int
}

func (c *Card) cur() *app {
	if a := c.apps[c.sel]; a != nil && c.sel != desfire.PICCAID {
		return a
	}
	c.sel = desfire.PICCAID
	return c.picc
}

func (c *Card) authedWith(keyNo byte) bool { return c.sess != nil && c.sess.keyNo() == keyNo }

// dispatch runs one frame. Any failure ends the session, as on a card.
func (c *Card) dispatch(ins byte, data []byte) (desfire.Status, []byte, time.Duration) {
	if ins == 0xAF {
		switch {
		case len(c.out) > 0:
			f := c.out[0]
			c.out = c.out[1:]
			return f.st, f.data, 0
		case c.in != nil:
			c.in.data = append(c.in.data, data...)
			if len(c.in.data) < c.in.want {
				return desfire.StatusAdditionalFrame, nil, 0
			}
			in := c.in
			c.in = nil
			return c.fail(c.command(in.ins, in.data))
		case c.authing != nil:
			return c.fail(c.authFinish(data))
		}
		return c.fail(desfire.StatusIllegalCommand, nil, 0)
	}
	c.out, c.in, c.authing = nil, nil, nil
	switch ins {
	case 0x1A, 0xAA, 0x71:
		return c.fail(c.authStart(ins, data))
	case 0x3D:
		if want := c.writeLength(data); want > len(data) {
			c.in = &inbound{ins: ins, data: append([]byte(nil), data...), want: want}
			return desfire.StatusAdditionalFrame, nil, 0
		}
	}
	return c.fail(c.command(ins, data))
}

// fail ends the session on any status but OK, AF and Read_Sig's.
func (c *Card) fail(st desfire.Status, data []byte, busy time.Duration) (desfire.Status, []byte, time.Duration) {
	if st != desfire.StatusOK && st != desfire.StatusAdditionalFrame && st != desfire.StatusSignature {
		c.sess, c.out, c.in, c.authing = nil, nil, nil, nil
		return st, nil, busy
	}
	return st, data, busy
}

// protected opens a command's payload for how it travels in the current
// session (plainLen: the enciphered data's length, for EV1).
func (c *Card) protected(ins byte, header, body []byte, how travel, plainLen int) ([]byte, bool) {
	if c.sess == nil {
		return body, true
	}
	return c.sess.in(ins, header, body, how, plainLen)
}

// payload opens a command's protected payload and checks its length
// (want < 0: any).
func (c *Card) payload(ins byte, header, data []byte, how travel, want int) ([]byte, desfire.Status) {
	b, ok := c.protected(ins, header, data, how, want)
	if !ok {
		return nil, desfire.StatusIntegrityError
	}
	if want >= 0 && len(b) != want {
		return nil, desfire.StatusLengthError
	}
	return b, desfire.StatusOK
}

// reply protects a successful answer and splits it into frames.
func (c *Card) reply(data []byte, how travel, busy time.Duration) (desfire.Status, []byte, time.Duration) {
	if c.sess != nil {
		data = c.sess.out(data, how)
		busy += c.timing.Crypto
	}
	st, first := c.answer(data)
	return st, first, busy
}

func (c *Card) command(ins byte, data []byte) (desfire.Status, []byte, time.Duration) {
	switch ins {
	case 0x60: // GetVersion: three frames
		if _, ok := c.protected(ins, nil, data, tPlain, 0); !ok || len(data) != 0 {
			return desfire.StatusLengthError, nil, 0
		}
		v := c.cfg.Version
		last := v[14:]
		if c.sess != nil {
			last = c.sess.out(v, tPlain)[14:]
		}
		c.out = []outFrame{{desfire.StatusAdditionalFrame, v[7:14]}, {desfire.StatusOK, last}}
		return desfire.StatusAdditionalFrame, v[:7], 0
	case 0x3C: // Read_Sig
		if len(data) != 1 || data[0] != 0x00 {
			return desfire.StatusParameterError, nil, 0
		}
		if c.sess != nil || c.cfg.Signature == nil {
			return desfire.StatusPermissionDenied, nil, 0
		}
		return desfire.StatusSignature, append([]byte(nil), c.cfg.Signature...), 2 * time.Millisecond
	case 0x5A:
		return c.selectApplication(data)
	case 0x6A:
		return c.applicationIDs(data)
	case 0xCA:
		return c.createApplication(data)
	case 0xDA:
		return c.deleteApplication(data)
	case 0xFC:
		if _, ok := c.protected(ins, nil, data, tManage, 0); !ok {
			return desfire.StatusIntegrityError, nil, 0
		}
		if c.sel != desfire.PICCAID || !c.authedWith(0) {
			return desfire.StatusPermissionDenied, nil, 0
		}
		c.apps, c.order = map[desfire.AID]*app{}, nil
		return c.reply(nil, tManage, c.timing.Write)
	case 0x45:
		return c.keySettings(data)
	case 0x54:
		return c.changeKeySettings(data)
	case 0x64:
		return c.keyVersion(data)
	case 0xC4:
		return c.changeKey(data)
	case 0x51:
		if _, ok := c.protected(ins, nil, data, tFull, 0); !ok {
			return desfire.StatusIntegrityError, nil, 0
		}
		if c.sess == nil {
			return desfire.StatusPermissionDenied, nil, 0
		}
		return c.reply(append([]byte(nil), c.cfg.UID...), tFull, 0)
	case 0xCD:
		return c.createStdDataFile(data)
	case 0x6F, 0xF5, 0xDF:
		return c.fileCommand(ins, data)
	case 0xBD:
		return c.readData(data)
	case 0x3D:
		return c.writeData(data)
	}
	return desfire.StatusIllegalCommand, nil, 0
}

func aidOf(b []byte) desfire.AID {
	return desfire.AID(b[0]) | desfire.AID(b[1])<<8 | desfire.AID(b[2])<<16
}

func (c *Card) selectApplication(data []byte) (desfire.Status, []byte, time.Duration) {
	c.sess = nil
	if len(data) != 3 {
		return desfire.StatusLengthError, nil, 0
	}
	aid := aidOf(data)
	if aid != desfire.PICCAID && c.apps[aid] == nil {
		return desfire.StatusApplicationNotFound, nil, 0
	}
	c.sel = aid
	return desfire.StatusOK, nil, 0
}

func (c *Card) applicationIDs(data []byte) (desfire.Status, []byte, time.Duration) {
	if _, ok := c.protected(0x6A, nil, data, tManage, 0); !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	if c.sel != desfire.PICCAID || (c.picc.settings&desfire.FreeDirectoryList == 0 && !c.authedWith(0)) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	var out []byte
	for _, aid := range c.order {
		b := aid.Bytes()
		out = append(out, b[:]...)
	}
	return c.reply(out, tManage, 0)
}

func (c *Card) createApplication(data []byte) (desfire.Status, []byte, time.Duration) {
	body, st := c.payload(0xCA, nil, data, tManage, -1)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	if len(body) < 5 {
		return desfire.StatusLengthError, nil, 0
	}
	if c.sel != desfire.PICCAID || (c.picc.settings&desfire.FreeCreateDelete == 0 && !c.authedWith(0)) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	aid := aidOf(body)
	if aid == desfire.PICCAID {
		return desfire.StatusParameterError, nil, 0
	}
	if c.apps[aid] != nil {
		return desfire.StatusDuplicateError, nil, 0
	}
	n := int(body[4] & 0x0F)
	if n < 1 || n > 14 {
		return desfire.StatusParameterError, nil, 0
	}
	kt, size := desfire.KeyDES, 16
	switch body[4] & 0xC0 {
	case 0x40:
		kt, size = desfire.Key3K3DES, 24
	case 0x80:
		kt = desfire.KeyAES
	}
	keys := make([]desfire.Key, n)
	for i := range keys {
		keys[i] = desfire.Key{Type: kt, Bytes: make([]byte, size)}
	}
	c.apps[aid] = &app{settings: desfire.KeySettings(body[3]), keys: keys, files: map[byte]*file{}}
	c.order = append(c.order, aid)
	return c.reply(nil, tManage, c.timing.Write)
}

func (c *Card) deleteApplication(data []byte) (desfire.Status, []byte, time.Duration) {
	body, st := c.payload(0xDA, nil, data, tManage, 3)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	if c.sel != desfire.PICCAID || (c.picc.settings&desfire.FreeCreateDelete == 0 && !c.authedWith(0)) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	aid := aidOf(body)
	if c.apps[aid] == nil {
		return desfire.StatusApplicationNotFound, nil, 0
	}
	delete(c.apps, aid)
	for i, a := range c.order {
		if a == aid {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	return c.reply(nil, tManage, c.timing.Write)
}

func (c *Card) keySettings(data []byte) (desfire.Status, []byte, time.Duration) {
	if _, ok := c.protected(0x45, nil, data, tManage, 0); !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	a := c.cur()
	if a.settings&desfire.FreeDirectoryList == 0 && !c.authedWith(0) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	kt := byte(0)
	switch a.keys[0].Type {
	case desfire.Key3K3DES:
		kt = 0x40
	case desfire.KeyAES:
		kt = 0x80
	}
	return c.reply([]byte{byte(a.settings), kt | byte(len(a.keys))}, tManage, 0)
}

func (c *Card) changeKeySettings(data []byte) (desfire.Status, []byte, time.Duration) {
	body, st := c.payload(0x54, nil, data, tFull, 1)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	a := c.cur()
	if !c.authedWith(0) || a.settings&desfire.ConfigurationChangeable == 0 {
		return desfire.StatusPermissionDenied, nil, 0
	}
	a.settings = desfire.KeySettings(body[0])
	return c.reply(nil, tMAC, c.timing.Write)
}

// desKeyVersion reads a DES key's version from its parity bits.
func desKeyVersion(k []byte) byte {
	var v byte
	for i := range 8 {
		v = v<<1 | k[i]&1
	}
	return v
}

func (c *Card) keyVersion(data []byte) (desfire.Status, []byte, time.Duration) {
	if len(data) < 1 {
		return desfire.StatusLengthError, nil, 0
	}
	if _, ok := c.protected(0x64, data[:1], data[1:], tManage, 0); !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	a := c.cur()
	no := data[0] & 0x0F
	if int(no) >= len(a.keys) {
		return desfire.StatusNoSuchKey, nil, 0
	}
	k := a.keys[no]
	v := k.Version
	if k.Type != desfire.KeyAES {
		v = desKeyVersion(k.Bytes)
	}
	return c.reply([]byte{v}, tManage, 0)
}

func (c *Card) changeKey(data []byte) (desfire.Status, []byte, time.Duration) {
	if len(data) < 2 {
		return desfire.StatusLengthError, nil, 0
	}
	keyNo := data[0]
	plain, ok := c.protected(0xC4, data[:1], data[1:], tRaw, 0)
	if !ok || c.sess == nil {
		if c.sess == nil {
			return desfire.StatusPermissionDenied, nil, 0
		}
		return desfire.StatusIntegrityError, nil, 0
	}
	a := c.cur()
	no := keyNo & 0x0F
	if int(no) >= len(a.keys) {
		return desfire.StatusNoSuchKey, nil, 0
	}
	// Who may change which key.
	rights := byte(a.settings) >> 4
	switch {
	case no == 0 && (a.settings&desfire.AllowChangeMasterKey == 0 || !c.authedWith(0)):
		return desfire.StatusPermissionDenied, nil, 0
	case no != 0 && rights == 0x0F:
		return desfire.StatusPermissionDenied, nil, 0
	case no != 0 && rights == 0x0E && !c.authedWith(no):
		return desfire.StatusPermissionDenied, nil, 0
	case no != 0 && rights < 0x0E && !c.authedWith(rights):
		return desfire.StatusPermissionDenied, nil, 0
	}
	// The new key's type: at card level from the key number's top bits,
	// in an application its fixed type.
	old := a.keys[no]
	kt, size := old.Type, len(old.Bytes)
	if a == c.picc {
		switch keyNo & 0xC0 {
		case 0x00:
			kt, size = desfire.Key2K3DES, 16
		case 0x40:
			kt, size = desfire.Key3K3DES, 24
		case 0x80:
			kt, size = desfire.KeyAES, 16
		default:
			return desfire.StatusParameterError, nil, 0
		}
	}
	if size == 8 {
		size = 16
	}
	same := c.sess.keyNo() == no
	_, isEV1 := c.sess.(*ev1)
	n := size
	if kt == desfire.KeyAES {
		n++ // version byte
	}
	need := n
	if isEV1 {
		need += 4
	}
	if !same {
		need += 4
	}
	if len(plain) < need {
		return desfire.StatusLengthError, nil, 0
	}
	body := plain[:n]
	pos := n
	if isEV1 {
		crc := desfire.CRC32(append([]byte{0xC4, keyNo}, body...))
		if !bytes.Equal(crc[:], plain[pos:pos+4]) {
			return desfire.StatusIntegrityError, nil, 0
		}
		pos += 4
	}
	newKey := append([]byte(nil), body[:size]...)
	if !same {
		ob := old.Bytes
		if len(ob) == 8 {
			ob = append(append([]byte(nil), ob...), ob...)
		}
		if len(ob) != size {
			return desfire.StatusParameterError, nil, 0
		}
		for i := range newKey {
			newKey[i] ^= ob[i]
		}
		crc := desfire.CRC32(newKey)
		if !bytes.Equal(crc[:], plain[pos:pos+4]) {
			return desfire.StatusIntegrityError, nil, 0
		}
		pos += 4
	}
	if isEV1 {
		for _, b := range plain[pos:] {
			if b != 0 {
				return desfire.StatusIntegrityError, nil, 0
			}
		}
	} else if pos != len(plain) {
		return desfire.StatusLengthError, nil, 0
	}
	nk := desfire.Key{Type: kt, Bytes: newKey}
	if kt == desfire.KeyAES {
		nk.Version = body[size]
	}
	a.keys[no] = nk
	if same {
		c.sess = nil // the session's key is gone: a bare status answers
		return desfire.StatusOK, nil, c.timing.Write
	}
	return c.reply(nil, tMAC, c.timing.Write)
}

func (c *Card) createStdDataFile(data []byte) (desfire.Status, []byte, time.Duration) {
	body, st := c.payload(0xCD, nil, data, tManage, 7)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	a := c.cur()
	if a == c.picc {
		return desfire.StatusPermissionDenied, nil, 0
	}
	if a.settings&desfire.FreeCreateDelete == 0 && !c.authedWith(0) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	no := body[0]
	if no > 31 || body[1]&^0x03 != 0 || body[1] == 0x02 {
		return desfire.StatusParameterError, nil, 0
	}
	if a.files[no] != nil {
		return desfire.StatusDuplicateError, nil, 0
	}
	size := le24(body[4:])
	ar := uint16(body[2]) | uint16(body[3])<<8
	a.files[no] = &file{
		comm:   desfire.CommMode(body[1]),
		access: desfire.AccessRights{Read: byte(ar >> 12), Write: byte(ar>>8) & 0x0F, ReadWrite: byte(ar>>4) & 0x0F, Change: byte(ar) & 0x0F},
		data:   make([]byte, size),
	}
	return c.reply(nil, tManage, c.timing.Write)
}

func (c *Card) fileCommand(ins byte, data []byte) (desfire.Status, []byte, time.Duration) {
	var header []byte
	if ins != 0x6F {
		if len(data) < 1 {
			return desfire.StatusLengthError, nil, 0
		}
		header, data = data[:1], data[1:]
	}
	if _, ok := c.protected(ins, header, data, tManage, 0); !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	a := c.cur()
	if a == c.picc {
		return desfire.StatusPermissionDenied, nil, 0
	}
	free := desfire.FreeDirectoryList
	if ins == 0xDF {
		free = desfire.FreeCreateDelete
	}
	if a.settings&free == 0 && !c.authedWith(0) {
		return desfire.StatusPermissionDenied, nil, 0
	}
	if ins == 0x6F {
		var ids []byte
		for i := range byte(32) {
			if a.files[i] != nil {
				ids = append(ids, i)
			}
		}
		return c.reply(ids, tManage, 0)
	}
	f := a.files[header[0]]
	if f == nil {
		return desfire.StatusFileNotFound, nil, 0
	}
	if ins == 0xDF {
		delete(a.files, header[0])
		return c.reply(nil, tManage, c.timing.Write)
	}
	ar := f.access.Bytes()
	n := len(f.data)
	return c.reply([]byte{0x00, byte(f.comm), ar[0], ar[1], byte(n), byte(n >> 8), byte(n >> 16)}, tManage, 0)
}

// fileAccess finds the file for ReadData (or, write, WriteData) and the
// way its data travels for the current session.
func (c *Card) fileAccess(no byte, write bool) (*file, travel, desfire.Status) {
	a := c.cur()
	f := a.files[no]
	if a == c.picc || f == nil {
		return nil, 0, desfire.StatusFileNotFound
	}
	rights := []byte{f.access.Read, f.access.ReadWrite}
	if write {
		rights[0] = f.access.Write
	}
	for _, r := range rights {
		if r == desfire.AccessFree {
			return f, tPlain, desfire.StatusOK
		}
	}
	for _, r := range rights {
		if r < 14 && c.authedWith(r) {
			switch f.comm {
			case desfire.CommMAC:
				return f, tMAC, desfire.StatusOK
			case desfire.CommFull:
				return f, tFull, desfire.StatusOK
			}
			return f, tPlain, desfire.StatusOK
		}
	}
	if c.sess != nil {
		return nil, 0, desfire.StatusAuthenticationError
	}
	return nil, 0, desfire.StatusPermissionDenied
}

func le24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

func (c *Card) readData(data []byte) (desfire.Status, []byte, time.Duration) {
	if len(data) < 7 {
		return desfire.StatusLengthError, nil, 0
	}
	header := data[:7]
	f, how, st := c.fileAccess(header[0], false)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	cmdHow := how
	if how == tFull {
		cmdHow = tMAC // the command itself carries no data
		if _, isEV1 := c.sess.(*ev1); isEV1 {
			cmdHow = tPlain
		}
	} else if how == tMAC {
		if _, isEV1 := c.sess.(*ev1); isEV1 {
			cmdHow = tPlain
		}
	}
	if _, ok := c.protected(0xBD, header, data[7:], cmdHow, 0); !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	off, n := le24(header[1:]), le24(header[4:])
	if n == 0 {
		n = len(f.data) - off
	}
	if off > len(f.data) || n < 0 || off+n > len(f.data) {
		return desfire.StatusBoundaryError, nil, 0
	}
	st, first, busy := c.reply(append([]byte(nil), f.data[off:off+n]...), how, 0)
	// For ReplayReadData: keep this session's answer, and in a later one
	// send the old instead of the fresh.
	whole := append(append([]byte(nil), first...), joinOut(c.out)...)
	if c.cfg.Faults.ReplayReadData && c.lastRead != nil {
		whole = c.lastRead
		st, first = c.answer(whole)
	}
	c.thisRead = whole
	return st, first, busy
}

func joinOut(out []outFrame) []byte {
	var b []byte
	for _, f := range out {
		b = append(b, f.data...)
	}
	return b
}

// writeLength is the length a WriteData command will have when all its
// frames are in, from the header and the file's communication mode.
func (c *Card) writeLength(data []byte) int {
	if len(data) < 7 {
		return 0
	}
	a := c.cur()
	n := le24(data[4:])
	if a == c.picc || a.files[data[0]] == nil || c.sess == nil {
		return 7 + n
	}
	f := a.files[data[0]]
	e1, isEV1 := c.sess.(*ev1)
	switch f.comm {
	case desfire.CommMAC:
		return 7 + n + 8
	case desfire.CommFull:
		if isEV1 {
			return 7 + (n+4+e1.bs-1)/e1.bs*e1.bs
		}
		return 7 + (n/16+1)*16 + 8
	}
	return 7 + n
}

func (c *Card) writeData(data []byte) (desfire.Status, []byte, time.Duration) {
	if len(data) < 7 {
		return desfire.StatusLengthError, nil, 0
	}
	header := data[:7]
	f, how, st := c.fileAccess(header[0], true)
	if st != desfire.StatusOK {
		return st, nil, 0
	}
	off, n := le24(header[1:]), le24(header[4:])
	body, ok := c.protected(0x3D, header, data[7:], how, n)
	if !ok {
		return desfire.StatusIntegrityError, nil, 0
	}
	if len(body) != n || n == 0 {
		return desfire.StatusLengthError, nil, 0
	}
	if off+n > len(f.data) {
		return desfire.StatusBoundaryError, nil, 0
	}
	copy(f.data[off:], body)
	respHow := tMAC
	if how == tPlain {
		respHow = tPlain
	}
	return c.reply(nil, respHow, c.timing.Write)
}
