package saltoks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/cloud/saltoks"
	"github.com/portier-io/portier/cloud/saltoks/saltokstest"
)

// Issue 15: the Salto address and id mistakes installers make get a hint
// that says what to write instead.
func TestCheckURLs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(string) error
		in    string
		want  []string // empty: valid
	}{
		{"api ok", saltoks.CheckAPIURL, "https://connect.my-clay.com", nil},
		{"api ok with slash", saltoks.CheckAPIURL, "https://connect.my-clay.com/", nil},
		{"api behind a proxy path", saltoks.CheckAPIURL, "https://proxy.example/salto", nil},
		{"api with the version", saltoks.CheckAPIURL, "https://connect.my-clay.com/v1.2",
			[]string{`"https://connect.my-clay.com/v1.2" ends in the API version /v1.2, which the client adds`, "e.g. https://connect.my-clay.com"}},
		{"api with the version and a slash", saltoks.CheckAPIURL, "https://proxy.example/salto/v1.1/", []string{"/v1.1", "e.g. https://proxy.example/salto"}},
		{"api empty", saltoks.CheckAPIURL, "", []string{"required"}},
		{"api not http", saltoks.CheckAPIURL, "ftp://connect.my-clay.com", []string{"is not an http(s) URL"}},
		{"identity ok", saltoks.CheckIdentityURL, "https://identity.eu.my-clay.com", nil},
		{"identity with the token path", saltoks.CheckIdentityURL, "https://identity.eu.my-clay.com/connect/token",
			[]string{"ends in /connect/token, which the client adds itself", "e.g. https://identity.eu.my-clay.com"}},
		{"identity with the token path and a slash", saltoks.CheckIdentityURL, "https://identity.eu.my-clay.com/connect/token/", []string{"/connect/token"}},
		{"identity without host", saltoks.CheckIdentityURL, "https://", []string{"is not an http(s) URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check(tc.in)
			if len(tc.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseSiteID(t *testing.T) {
	g, err := saltoks.ParseSiteID("5173E000-0000-4000-8000-000000000001")
	require.NoError(t, err)
	assert.Equal(t, saltoks.GUID("5173e000-0000-4000-8000-000000000001"), g)

	_, err = saltoks.ParseSiteID("ES0000012345")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"ES0000012345" is the site's uid, not its id`)
	assert.Contains(t, err.Error(), "GET /v1.2/sites")

	_, err = saltoks.ParseSiteID("site-1")
	assert.ErrorContains(t, err, "is not a Salto KS id")
}

func TestNewRefusesMistakenAddresses(t *testing.T) {
	base := saltoks.Config{IdentityURL: "https://id.example", APIURL: "https://api.example", ClientID: "c", Username: "u", Password: "p"}
	cfg := base
	cfg.APIURL += "/v1.2"
	_, err := saltoks.New(cfg)
	assert.ErrorContains(t, err, "saltoks: api_url: \"https://api.example/v1.2\" ends in the API version")
	cfg = base
	cfg.IdentityURL += "/connect/token"
	_, err = saltoks.New(cfg)
	assert.ErrorContains(t, err, "saltoks: identity_url: \"https://id.example/connect/token\" ends in /connect/token")
}

// The answers such mistakes cause carry the hint too (an address with a
// path the server does not serve, a site uid passed as the site id).
func TestErrorHints(t *testing.T) {
	ctx := context.Background()
	t.Run("api path", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.APIURL += "/api" })
		_, err := h.client.Site(ctx, saltokstest.GeneratedSiteID)
		var ae *saltoks.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 404, ae.Status)
		assert.Contains(t, err.Error(), "salto.api_url has the path /api, which every request is put under")
	})
	t.Run("identity path", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.IdentityURL += "/identity" })
		_, err := h.client.Site(ctx, saltokstest.GeneratedSiteID)
		var ae *saltoks.AuthError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 404, ae.Status)
		assert.Contains(t, err.Error(), "the identity server has no /connect/token: salto.identity_url must be the server's address")
	})
	t.Run("site uid", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		_, err := h.client.Site(ctx, "DE0000000001")
		var ae *saltoks.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, saltoks.CodeInvalidParameter, ae.Code)
		assert.Contains(t, err.Error(), `salto.site_id "DE0000000001" is the site's uid, not its id`)
	})
	t.Run("no hint for an ordinary answer", func(t *testing.T) {
		h := newHarness(t, small, saltokstest.Options{}, nil)
		_, err := h.client.Site(ctx, "5173e000-0000-4000-8000-0000000000ff")
		var ae *saltoks.APIError
		require.ErrorAs(t, err, &ae)
		assert.Empty(t, ae.Hint)
	})
}

// A request that reaches no server says what to check: the address's host
// name (DNS), its port, the gateway's trust store or clock.
func TestNetworkHints(t *testing.T) {
	ctx := context.Background()
	// unresolvable makes *.invalid hosts fail the way the resolver does.
	unresolvable := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".invalid") {
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + closed.Addr().String()
	require.NoError(t, closed.Close())
	tlsServer := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsServer.Close)
	expired, trusting := expiredTLSServer(t)

	for _, tc := range []struct {
		name string
		mod  func(*saltoks.Config)
		want string
	}{
		{"identity host does not resolve", func(c *saltoks.Config) {
			c.IdentityURL, c.HTTPClient = "https://identity.example.invalid", unresolvable
		},
			"; the host name identity.example.invalid does not resolve: check salto.identity_url for a typo, then the gateway's DNS and network (`getent hosts identity.example.invalid`)"},
		{"api host does not resolve", func(c *saltoks.Config) { c.APIURL, c.HTTPClient = "https://connect.example.invalid", unresolvable },
			"; the host name connect.example.invalid does not resolve: check salto.api_url for a typo"},
		{"nothing listens", func(c *saltoks.Config) { c.APIURL = refused },
			"; nothing accepts connections at " + strings.TrimPrefix(refused, "http://") + ": check the host and port in salto.api_url"},
		{"an authority the gateway does not trust", func(c *saltoks.Config) { c.IdentityURL, c.HTTPClient = tlsServer.URL, http.DefaultClient },
			"; the server's certificate is signed by an authority this gateway does not trust: install the ca-certificates package, check salto.identity_url"},
		{"a certificate not valid at the gateway's time", func(c *saltoks.Config) { c.IdentityURL, c.HTTPClient = expired, trusting },
			"; the server's certificate is not valid at the gateway's time: check the gateway's clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, small, saltokstest.Options{}, func(c *saltoks.Config) { c.MaxAttempts = 1; tc.mod(c) })
			_, err := h.client.Site(ctx, saltokstest.GeneratedSiteID)
			var te *saltoks.TransportError
			require.ErrorAs(t, err, &te)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// expiredTLSServer serves TLS with a certificate that expired a year ago,
// and returns a client that trusts it.
func expiredTLSServer(t *testing.T) (string, *http.Client) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(-1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return srv.URL, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}
