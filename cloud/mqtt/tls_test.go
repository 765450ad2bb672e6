package mqtt_test

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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portier-io/portier/agent/agenttest"
	"github.com/portier-io/portier/cloud/mqtt"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all made in the test.
type testPKI struct {
	pool         *x509.CertPool
	server       tls.Certificate
	client       tls.Certificate
	strangerCert tls.Certificate // signed by another CA
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	ca, caKey := newCert(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true})
	other, otherKey := newCert(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "other CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true})
	p := testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = leaf(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	p.client = leaf(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "gw1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	p.strangerCert = leaf(t, other, otherKey, &x509.Certificate{Subject: pkix.Name{CommonName: "gw1"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return p
}

var serial int64

func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c, key
}

func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) tls.Certificate {
	c, key := newCert(t, ca, caKey, tmpl)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

func TestTLSAndMutualTLS(t *testing.T) {
	pki := newPKI(t)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	for _, tc := range []struct {
		name       string
		clientAuth tls.ClientAuthType
		cert       *tls.Certificate
		connects   bool
	}{
		{"tls with a custom CA", tls.NoClientCert, nil, true},
		{"mtls", tls.RequireAndVerifyClientCert, &pki.client, true},
		{"mtls without a client certificate", tls.RequireAndVerifyClientCert, nil, false},
		{"mtls with a certificate of another CA", tls.RequireAndVerifyClientCert, &pki.strangerCert, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tc.clientAuth, ClientCAs: pki.pool, MinVersion: tls.VersionTLS12}
			b := startMochiAuth(t, server, "gw1", "s3cret")
			dashTLS := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
			d := newDashboardAuth(t, b.URL(), dashTLS, "gw1", "s3cret", tp.Status())
			clock := agenttest.NewClock(t0)
			clientTLS := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
			if tc.cert != nil {
				clientTLS.Certificates = []tls.Certificate{*tc.cert}
			}
			r := newRig(t, b.URL(), func(c *mqtt.Config) {
				c.TLS, c.Username, c.Password = clientTLS, "gw1", "s3cret"
				c.Clock, c.Jitter = clock, func() float64 { return 0 }
				c.BackoffMin, c.BackoffMax = 10*time.Second, 10*time.Second
				c.StateInterval, c.OutboxCheck, c.TelemetryInterval = time.Hour, time.Hour, time.Hour
			}).start(t)
			if tc.connects {
				d.waitUntil(t, "online over TLS", func(m []message) bool { return len(m) > 0 }, nil)
				assert.Equal(t, "online", decode[mqtt.StatusPayload](t, d.all()[0].Payload).State)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			require.NoError(t, clock.WaitArmed(ctx, t0.Add(5*time.Second)), "the refused connection is retried later")
			assert.Empty(t, d.all(), "no status from a refused gateway")
			assert.Zero(t, r.link.Reconnects())
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		b := startMochiAuth(t, nil, "gw1", "s3cret")
		clock := agenttest.NewClock(t0)
		newRig(t, b.URL(), func(c *mqtt.Config) {
			c.Username, c.Password = "gw1", "guess"
			c.Clock, c.Jitter = clock, func() float64 { return 0 }
			c.BackoffMin, c.BackoffMax = 10*time.Second, 10*time.Second
		}).start(t)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, clock.WaitArmed(ctx, t0.Add(5*time.Second)))
	})
}
