package mqtt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
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
	caRaw        []byte          // the CA certificate, DER
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	ca, caKey := newCert(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true})
	other, otherKey := newCert(t, nil, nil, &x509.Certificate{Subject: pkix.Name{CommonName: "other CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true})
	p := testPKI{pool: x509.NewCertPool(), caRaw: ca.Raw}
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

// pkiFiles are the broker's PEM files, for brokers configured by file.
type pkiFiles struct{ ca, serverCert, serverKey string }

func (p testPKI) write(t *testing.T) pkiFiles {
	t.Helper()
	dir := t.TempDir()
	f := pkiFiles{ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"), serverKey: filepath.Join(dir, "server.key")}
	key, err := x509.MarshalPKCS8PrivateKey(p.server.PrivateKey)
	require.NoError(t, err)
	for path, block := range map[string]*pem.Block{
		f.ca:         {Type: "CERTIFICATE", Bytes: p.caRaw},
		f.serverCert: {Type: "CERTIFICATE", Bytes: p.server.Certificate[0]},
		f.serverKey:  {Type: "PRIVATE KEY", Bytes: key},
	} {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	}
	return f
}

func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) tls.Certificate {
	c, key := newCert(t, ca, caKey, tmpl)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

func TestTLSAndMutualTLS(t *testing.T) {
	pki := newPKI(t)
	files := pki.write(t)
	tp := mqtt.Topics{Prefix: "portier", Site: "site1", Gateway: "gw1"}
	// Each broker with the server certificate, asking for client
	// certificates (mTLS) or not.
	brokers := []struct {
		name  string
		start func(t *testing.T, mtls bool) testBroker
	}{
		{"mochi", func(t *testing.T, mtls bool) testBroker {
			server := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, MinVersion: tls.VersionTLS12}
			if mtls {
				server.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return startMochiAuth(t, server, "gw1", "s3cret")
		}},
		{"mosquitto", func(t *testing.T, mtls bool) testBroker {
			conf := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate %t\n", files.ca, files.serverCert, files.serverKey, mtls)
			return startMosquitto(t, conf)
		}},
	}
	for _, br := range brokers {
		for _, tc := range []struct {
			name     string
			mtls     bool
			cert     *tls.Certificate
			connects bool
		}{
			{"tls with a custom CA", false, nil, true},
			{"mtls", true, &pki.client, true},
			{"mtls without a client certificate", true, nil, false},
			{"mtls with a certificate of another CA", true, &pki.strangerCert, false},
		} {
			t.Run(br.name+"/"+tc.name, func(t *testing.T) {
				b := br.start(t, tc.mtls)
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
