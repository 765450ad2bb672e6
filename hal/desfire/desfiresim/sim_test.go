package desfiresim_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/hal/desfire"
	"github.com/portier-io/portier/hal/desfire/desfiresim"
)

var (
	uid  = []byte{0x04, 0x5A, 0x11, 0x5A, 0x34, 0x61, 0x80}
	site = desfire.SiteKeys{
		SystemID: []byte("portier:test-site"),
		PICC:     bytes.Repeat([]byte{0x11}, 16),
		App:      bytes.Repeat([]byte{0x22}, 16),
		Read:     bytes.Repeat([]byte{0x33}, 16),
		Version:  1,
	}
	ident = desfire.Identity{TagNumber: 12345678, Generation: 3, Issued: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
)

var errGone = errors.New("card left the field")

// direct carries commands straight to the card model, without radio: the
// fast way to test the DESFire layers (the radio path is tested in
// hal/mfrc522/cardcheck).
type direct struct{ c *desfiresim.Card }

func (d direct) Transmit(_ context.Context, cmd []byte) ([]byte, error) {
	resp, _ := d.c.Process(cmd)
	if resp == nil {
		return nil, errGone
	}
	return resp, nil
}

func newCard(t *testing.T, cfg desfiresim.Config) *desfiresim.Card {
	t.Helper()
	if cfg.UID == nil {
		cfg.UID = uid
	}
	c, err := desfiresim.New(cfg)
	require.NoError(t, err)
	return c
}

func client(card *desfiresim.Card, native bool) *desfire.Card {
	return desfire.New(direct{card}, desfire.Options{Native: native})
}

func TestIssueThenRead(t *testing.T) {
	ctx := context.Background()
	for _, gen := range []desfire.Generation{desfire.GenEV1, desfire.GenEV2, desfire.GenEV3} {
		for _, native := range []bool{false, true} {
			t.Run(gen.String(), func(t *testing.T) {
				card := newCard(t, desfiresim.Config{Generation: gen})
				require.NoError(t, desfire.Issue(ctx, client(card, native), uid, site, ident, desfire.IssueOptions{}))

				got, err := desfire.ReadIdentity(ctx, client(card, native), uid, desfire.SiteKeys{SystemID: site.SystemID, Read: site.Read, Version: 1})
				require.NoError(t, err, "a door holds only the read master")
				assert.Equal(t, ident.TagNumber, got.TagNumber)
				assert.Equal(t, ident.Generation, got.Generation)
				assert.True(t, ident.Issued.Equal(got.Issued))

				// Never left at a default key, and closed to listing.
				c := client(card, native)
				require.NoError(t, c.SelectApplication(ctx, desfire.PICCAID))
				err = c.AuthenticateISO(ctx, 0, desfire.FactoryPICCKey())
				assert.ErrorIs(t, err, desfire.StatusAuthenticationError)
				_, err = c.ApplicationIDs(ctx)
				assert.ErrorIs(t, err, desfire.StatusPermissionDenied)
				require.NoError(t, c.SelectApplication(ctx, desfire.DefaultAID))
				err = c.AuthenticateAES(ctx, desfire.KeyAppMaster, desfire.ZeroAESKey())
				assert.ErrorIs(t, err, desfire.StatusAuthenticationError)
				v, err := c.KeyVersion(ctx, desfire.KeyRead)
				require.NoError(t, err)
				assert.Equal(t, byte(1), v)
			})
		}
	}
}

// NewIssued builds the state Issue leaves: the same reads succeed and the
// same settings show to the issuing station.
func TestNewIssuedMatchesIssue(t *testing.T) {
	ctx := context.Background()
	issued := newCard(t, desfiresim.Config{})
	require.NoError(t, desfire.Issue(ctx, client(issued, false), uid, site, ident, desfire.IssueOptions{}))
	built, err := desfiresim.NewIssued(uid, site, ident, nil)
	require.NoError(t, err)
	keys, err := site.ForCard(uid)
	require.NoError(t, err)
	describe := func(card *desfiresim.Card) []any {
		c := client(card, false)
		id, err := desfire.ReadIdentity(ctx, c, uid, site)
		require.NoError(t, err)
		require.NoError(t, c.AuthenticateEV2First(ctx, desfire.KeyAppMaster, keys.App))
		fs, err := c.FileSettings(ctx, desfire.IdentityFile)
		require.NoError(t, err)
		ks, n, err := c.GetKeySettings(ctx)
		require.NoError(t, err)
		require.NoError(t, c.SelectApplication(ctx, desfire.PICCAID))
		require.NoError(t, c.AuthenticateEV2First(ctx, 0, keys.PICC))
		aids, err := c.ApplicationIDs(ctx)
		require.NoError(t, err)
		pks, _, err := c.GetKeySettings(ctx)
		require.NoError(t, err)
		return []any{id.TagNumber, id.Generation, id.Issued.Unix(), fs.Comm, fs.Access, fs.Size, ks, n, aids, pks}
	}
	assert.Equal(t, describe(issued), describe(built))
}

func TestReadIdentityRefusals(t *testing.T) {
	ctx := context.Background()
	other := site
	other.Read = bytes.Repeat([]byte{0x44}, 16)
	tests := []struct {
		name  string
		card  func(t *testing.T) *desfiresim.Card
		keys  desfire.SiteKeys
		fault desfiresim.Faults
		want  error
	}{
		{name: "another site's card (wrong key)", keys: other, want: desfire.StatusAuthenticationError},
		{name: "blank card", card: func(t *testing.T) *desfiresim.Card { return newCard(t, desfiresim.Config{}) }, keys: site, want: desfire.ErrNotIssued},
		{name: "removed mid-authentication", keys: site, fault: desfiresim.Faults{RemoveOn: 0xAF}, want: errGone},
		{name: "removed before the read", keys: site, fault: desfiresim.Faults{RemoveOn: 0xBD}, want: errGone},
		{name: "replayed authentication answer", keys: site, fault: desfiresim.Faults{ReplayAuth: true}, want: desfire.ErrCardAuth},
		{name: "replayed file answer", keys: site, fault: desfiresim.Faults{ReplayReadData: true}, want: desfire.ErrIntegrity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var card *desfiresim.Card
			if tt.card != nil {
				card = tt.card(t)
			} else {
				var err error
				card, err = desfiresim.NewIssued(uid, site, ident, nil)
				require.NoError(t, err)
				// A genuine session first, which a replaying card records.
				_, err = desfire.ReadIdentity(ctx, client(card, false), uid, site)
				require.NoError(t, err)
			}
			card.SetFaults(tt.fault)
			id, err := desfire.ReadIdentity(ctx, client(card, false), uid, tt.keys)
			require.ErrorIs(t, err, tt.want)
			assert.Zero(t, id, "no identity with an error")
		})
	}
}

func TestReissueAndRandomUID(t *testing.T) {
	ctx := context.Background()
	card := newCard(t, desfiresim.Config{})
	require.NoError(t, desfire.Issue(ctx, client(card, false), uid, site, ident, desfire.IssueOptions{}))
	err := desfire.Issue(ctx, client(card, false), uid, site, ident, desfire.IssueOptions{})
	require.ErrorIs(t, err, desfire.ErrAlreadyIssued)
	next := ident
	next.Generation++
	require.NoError(t, desfire.Issue(ctx, client(card, false), uid, site, next, desfire.IssueOptions{Reissue: true}))
	got, err := desfire.ReadIdentity(ctx, client(card, false), uid, site)
	require.NoError(t, err)
	assert.Equal(t, next.Generation, got.Generation)

	random := newCard(t, desfiresim.Config{RandomID: true})
	presented := random.Tag().UID
	require.Len(t, presented, 4)
	err = desfire.Issue(ctx, client(random, false), uid, site, ident, desfire.IssueOptions{})
	require.NoError(t, err, "issuing with the real UID works")
	err = desfire.Issue(ctx, client(newCard(t, desfiresim.Config{RandomID: true}), false), append([]byte{0x08}, uid[1:]...), site, ident, desfire.IssueOptions{})
	require.ErrorIs(t, err, desfire.ErrRandomUID, "a UID that is not the card's is refused")

	foreign := newCard(t, desfiresim.Config{PICCKey: desfire.AESKey(bytes.Repeat([]byte{9}, 16), 0)})
	err = desfire.Issue(ctx, client(foreign, false), uid, site, ident, desfire.IssueOptions{})
	require.ErrorIs(t, err, desfire.ErrUnknownPICCKey)
	require.NoError(t, desfire.Issue(ctx, client(foreign, false), uid, site, ident,
		desfire.IssueOptions{PICCKeys: []desfire.Key{desfire.AESKey(bytes.Repeat([]byte{9}, 16), 0)}}))
}

func TestRekey(t *testing.T) {
	ctx := context.Background()
	next := site
	next.PICC, next.App, next.Read, next.Version = bytes.Repeat([]byte{0x55}, 16), bytes.Repeat([]byte{0x66}, 16), bytes.Repeat([]byte{0x77}, 16), 2

	card, err := desfiresim.NewIssued(uid, site, ident, nil)
	require.NoError(t, err)
	require.NoError(t, desfire.Rekey(ctx, client(card, false), uid, site, next))
	_, err = desfire.ReadIdentity(ctx, client(card, false), uid, next)
	require.NoError(t, err)
	_, err = desfire.ReadIdentity(ctx, client(card, false), uid, site)
	require.ErrorIs(t, err, desfire.StatusAuthenticationError, "the old read key is gone")
	_, err = desfire.ReadIdentity(ctx, client(card, false), uid, site, next)
	require.NoError(t, err, "a door holding both picks by key version")
	require.NoError(t, desfire.Rekey(ctx, client(card, false), uid, site, next), "rekeying again is harmless")

	// Interrupted after the PICC key and the read key moved: resumed.
	card, err = desfiresim.NewIssued(uid, site, ident, nil)
	require.NoError(t, err)
	card.SetFaults(desfiresim.Faults{RemoveOn: 0xC4, RemoveAfter: 2})
	require.ErrorIs(t, desfire.Rekey(ctx, client(card, false), uid, site, next), errGone)
	card.SetFaults(desfiresim.Faults{})
	require.NoError(t, desfire.Rekey(ctx, client(card, false), uid, site, next))
	_, err = desfire.ReadIdentity(ctx, client(card, false), uid, next)
	require.NoError(t, err)
}

func TestFileModes(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 200)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, gen := range []desfire.Generation{desfire.GenEV1, desfire.GenEV2} {
		for _, mode := range []desfire.CommMode{desfire.CommPlain, desfire.CommMAC, desfire.CommFull} {
			t.Run(gen.String()+" "+mode.String(), func(t *testing.T) {
				card := newCard(t, desfiresim.Config{Generation: gen})
				c := client(card, false)
				auth := c.AuthenticateEV2First
				if gen == desfire.GenEV1 {
					auth = c.AuthenticateAES
				}
				require.NoError(t, c.AuthenticateISO(ctx, 0, desfire.FactoryPICCKey()))
				require.NoError(t, c.CreateApplication(ctx, 0x123456, desfire.AppKeySettings, 3, desfire.KeyAES))
				require.NoError(t, c.SelectApplication(ctx, 0x123456))
				require.NoError(t, auth(ctx, 0, desfire.ZeroAESKey()))
				require.NoError(t, c.CreateStdDataFile(ctx, 2, mode, desfire.AccessRights{Read: 1, Write: 2, ReadWrite: 0, Change: 0}, len(data)))
				ids, err := c.FileIDs(ctx)
				require.NoError(t, err)
				assert.Equal(t, []byte{2}, ids)

				require.NoError(t, auth(ctx, 2, desfire.ZeroAESKey()))
				require.NoError(t, c.WriteData(ctx, 2, 0, data, mode), "200 bytes: additional frames")
				_, err = c.ReadData(ctx, 2, 0, 16, mode)
				require.ErrorIs(t, err, desfire.StatusAuthenticationError, "key 2 may write, not read")

				require.NoError(t, auth(ctx, 1, desfire.ZeroAESKey()))
				got, err := c.ReadData(ctx, 2, 0, len(data), mode)
				require.NoError(t, err)
				assert.Equal(t, data, got)
				got, err = c.ReadData(ctx, 2, 190, 10, mode)
				require.NoError(t, err)
				assert.Equal(t, data[190:], got)
				_, err = c.ReadData(ctx, 2, 195, 10, mode)
				require.ErrorIs(t, err, desfire.StatusBoundaryError)
			})
		}
	}
}

func TestVersionAndSignature(t *testing.T) {
	ctx := context.Background()
	signer, err := desfiresim.NewSigningKey()
	require.NoError(t, err)
	trusted := append(desfire.NXPOriginalityKeys(), desfiresim.TrustKey(signer))
	card := newCard(t, desfiresim.Config{SigningKey: signer})
	c := client(card, false)
	v, err := c.GetVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, desfire.GenEV2, v.Generation())
	assert.Equal(t, uid, v.UID)
	sig, err := c.ReadSignature(ctx)
	require.NoError(t, err)
	name, err := desfire.VerifyOriginality(uid, sig, trusted)
	require.NoError(t, err)
	assert.Equal(t, "simulated card vendor", name)
	_, err = desfire.VerifyOriginality(uid, sig, desfire.NXPOriginalityKeys())
	assert.ErrorIs(t, err, desfire.ErrNotOriginal, "the model is no NXP card")

	_, err = client(newCard(t, desfiresim.Config{}), true).ReadSignature(ctx)
	assert.ErrorIs(t, err, desfire.StatusPermissionDenied)
}

func TestCommandFraming(t *testing.T) {
	card := newCard(t, desfiresim.Config{})
	resp, _ := card.Process([]byte{0x90, 0x60, 0x00, 0x00})
	assert.Equal(t, []byte{0x6E, 0x00}, resp, "a short ISO command")
	resp, _ = card.Process([]byte{0x90, 0x5A, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x00})
	assert.Equal(t, []byte{0x91, 0xA0}, resp, "no such application")
	resp, _ = card.Process([]byte{0x77})
	assert.Equal(t, []byte{0x1C}, resp, "native: illegal command")
	resp, _ = card.Process([]byte{0xAF})
	assert.Equal(t, []byte{0x1C}, resp, "no frame to continue")
}

func TestIssueReportsEachStepAndReadIdentityKeysTellsTheVersion(t *testing.T) {
	ctx := context.Background()
	card := newCard(t, desfiresim.Config{})
	var steps []string
	require.NoError(t, desfire.Issue(ctx, client(card, false), uid, site, ident, desfire.IssueOptions{Progress: func(s string) { steps = append(steps, s) }}))
	assert.Equal(t, []string{
		"reading the card's version",
		"authenticating with the card master key (the site's, else a factory default)",
		"replacing the factory card master key with the site's diversified key",
		"checking the card's real UID",
		"creating the site application 504F52",
		"setting the diversified read and application keys",
		"writing the identity file",
		"reading the identity back with the read key",
		"locking the card: no application changes without the card master key",
	}, steps)
	next := site
	next.Version, next.Read = 2, bytes.Repeat([]byte{0x44}, 16)
	id, used, err := desfire.ReadIdentityKeys(ctx, client(card, false), uid, next, site)
	require.NoError(t, err)
	assert.Equal(t, ident.TagNumber, id.TagNumber)
	assert.Equal(t, byte(1), used.Version, "the card's read key is still version 1")
}

func TestVendorKeySignsAlike(t *testing.T) {
	k, err := desfiresim.VendorKey("portier simulated card vendor")
	require.NoError(t, err)
	a, err := desfiresim.SignUID(k, uid)
	require.NoError(t, err)
	b, err := desfiresim.SignUID(k, uid)
	require.NoError(t, err)
	assert.Equal(t, a, b, "deterministic")
	name, err := desfire.VerifyOriginality(uid, a, []desfire.OriginalityKey{desfiresim.TrustKey(k)})
	require.NoError(t, err, "verifies as NXP's signatures do: over the raw UID")
	assert.Equal(t, "simulated card vendor", name)
	_, err = desfire.VerifyOriginality(uid, a, desfire.NXPOriginalityKeys())
	assert.ErrorIs(t, err, desfire.ErrNotOriginal)
}
