package desfire

import (
	"context"
	"crypto/aes"
	"fmt"
	"io"
)

// AuthenticateEV2First opens an EV2 secure-messaging session with an AES
// key (DESFire EV2/EV3, NT4H2421Gx §9.1.5, AN12196 §5.6): the card sends
// E(K, RndB); the reader answers E(K, RndA ‖ RndB'); the card proves the
// key with E(K, TI ‖ RndA' ‖ PDcap2 ‖ PCDcap2). Every step uses a zero IV.
func (c *Card) AuthenticateEV2First(ctx context.Context, keyNo byte, key Key) error {
	c.sess = nil
	if key.Type != KeyAES || len(key.Bytes) != 16 {
		return fmt.Errorf("%w: EV2First needs an AES key", ErrKey)
	}
	b, err := aes.NewCipher(key.Bytes)
	if err != nil {
		return err
	}
	encB, err := c.authStep(ctx, cmdAuthenticateEV2, []byte{keyNo, 0x00}, StatusAdditionalFrame, 16)
	if err != nil {
		return err
	}
	zero := make([]byte, 16)
	rndB, _ := cbcDecrypt(b, zero, encB)
	rndA := make([]byte, 16)
	if _, err := io.ReadFull(c.rand, rndA); err != nil {
		return fmt.Errorf("desfire: random: %w", err)
	}
	token, _ := cbcEncrypt(b, zero, append(append([]byte(nil), rndA...), RotateLeft(rndB)...))
	enc, err := c.authStep(ctx, cmdAdditionalFrame, token, StatusOK, 32)
	if err != nil {
		return err
	}
	plain, _ := cbcDecrypt(b, zero, enc)
	if !ctEqual(plain[4:20], RotateLeft(rndA)) {
		return ErrCardAuth
	}
	encKey, macKey, err := EV2SessionKeys(key.Bytes, rndA, rndB)
	if err != nil {
		return err
	}
	s, err := NewEV2Session(encKey, macKey, plain[0:4], keyNo)
	if err != nil {
		return err
	}
	c.sess = s
	return nil
}

// AuthenticateAES opens an EV1 AES session (command 0xAA, DESFire EV1 and
// later).
func (c *Card) AuthenticateAES(ctx context.Context, keyNo byte, key Key) error {
	if key.Type != KeyAES {
		return fmt.Errorf("%w: AuthenticateAES needs an AES key", ErrKey)
	}
	return c.authenticateEV1(ctx, cmdAuthenticateAES, keyNo, key)
}

// AuthenticateISO opens an EV1 session with a DES, 2K3DES or 3K3DES key
// (command 0x1A), e.g. a blank card's factory PICC master key.
func (c *Card) AuthenticateISO(ctx context.Context, keyNo byte, key Key) error {
	if key.Type == KeyAES {
		return fmt.Errorf("%w: AuthenticateISO needs a DES-family key", ErrKey)
	}
	return c.authenticateEV1(ctx, cmdAuthenticateISO, keyNo, key)
}

// authenticateEV1 is the EV1 three-pass authentication: the IV of the
// authentication key starts at zero and chains through all three
// messages, then the session starts with a zero IV.
func (c *Card) authenticateEV1(ctx context.Context, cmd, keyNo byte, key Key) error {
	c.sess = nil
	b, err := key.block()
	if err != nil {
		return err
	}
	bs, rl := b.BlockSize(), key.randomLen()
	encB, err := c.authStep(ctx, cmd, []byte{keyNo}, StatusAdditionalFrame, rl)
	if err != nil {
		return err
	}
	rndB, iv := cbcDecrypt(b, make([]byte, bs), encB)
	rndA := make([]byte, rl)
	if _, err := io.ReadFull(c.rand, rndA); err != nil {
		return fmt.Errorf("desfire: random: %w", err)
	}
	token, iv := cbcEncrypt(b, iv, append(append([]byte(nil), rndA...), RotateLeft(rndB)...))
	encA, err := c.authStep(ctx, cmdAdditionalFrame, token, StatusOK, rl)
	if err != nil {
		return err
	}
	gotA, _ := cbcDecrypt(b, iv, encA)
	if !ctEqual(gotA, RotateLeft(rndA)) {
		return ErrCardAuth
	}
	s, err := NewEV1Session(EV1SessionKey(key, rndA, rndB), keyNo)
	if err != nil {
		return err
	}
	c.sess = s
	return nil
}

// authStep sends one authentication frame and checks the status and size.
func (c *Card) authStep(ctx context.Context, cmd byte, data []byte, want Status, n int) ([]byte, error) {
	st, resp, err := c.frame(ctx, cmd, data)
	if err != nil {
		return nil, fmt.Errorf("desfire: authenticate: %w", err)
	}
	if st != want {
		return nil, &CommandError{Cmd: cmd, Status: st}
	}
	if len(resp) != n {
		return nil, fmt.Errorf("%w: authentication answer of %d bytes, want %d", ErrMalformed, len(resp), n)
	}
	return resp, nil
}
