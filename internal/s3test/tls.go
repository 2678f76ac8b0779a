package s3test

import (
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
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// authority is the certificate authority of one test process. Every server
// certificate the harness issues (MinIO's and the KMS stand-in's) chains to
// it, so one pool lets clients trust all of them and nothing else.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
}

var (
	processAuthorityOnce sync.Once
	processAuthority     *authority
	processAuthorityErr  error
)

// testAuthority returns the process's certificate authority, creating it on
// first use. It is safe for concurrent use.
func testAuthority() (*authority, error) {
	processAuthorityOnce.Do(func() {
		processAuthority, processAuthorityErr = newAuthority()
	})
	return processAuthority, processAuthorityErr
}

func newAuthority() (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}

	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "s3sse test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
		pool:    pool,
	}, nil
}

// serverCert is a certificate and key issued by the authority, in PEM as
// MinIO's --certs-dir wants them and parsed for a Go TLS listener.
type serverCert struct {
	certPEM []byte
	keyPEM  []byte
	tls     tls.Certificate
}

// issue creates a server certificate valid for the loopback addresses,
// localhost and any extra host names or IP addresses given.
func (a *authority) issue(extraHosts ...string) (*serverCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}

	now := time.Now()
	template := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "s3sse test server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	for _, h := range extraHosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else if h != "" {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode server key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load server key pair: %w", err)
	}
	return &serverCert{certPEM: certPEM, keyPEM: keyPEM, tls: pair}, nil
}

// writeCertsDir lays out dir the way MinIO's --certs-dir expects: the
// server's certificate and key, and the authority under CAs/ so MinIO
// trusts its own certificate should it ever call itself.
func (a *authority) writeCertsDir(dir string, cert *serverCert) error {
	files := []struct {
		name string
		body []byte
		mode os.FileMode
	}{
		{name: "public.crt", body: cert.certPEM, mode: 0o644},
		{name: "private.key", body: cert.keyPEM, mode: 0o600},
		{name: filepath.Join("CAs", "s3sse-test-ca.crt"), body: a.certPEM, mode: 0o644},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create certs dir: %w", err)
		}
		if err := os.WriteFile(path, f.body, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// newClientTransport returns a transport like http.DefaultTransport that
// trusts exactly the CAs in pool; a nil pool means the system roots. With
// insecure set it verifies no certificate at all.
func newClientTransport(pool *x509.CertPool, insecure bool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            pool,
		InsecureSkipVerify: insecure, //nolint:gosec // only when S3SSE_S3_INSECURE asks for it
	}
	// MinIO is local and the tests are many: keep enough idle connections
	// that concurrent uploads do not keep opening new TLS sessions.
	tr.MaxIdleConnsPerHost = 64
	return tr
}

func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		// crypto/rand does not fail on supported platforms; a fixed serial
		// would still give a usable, if less unique, test certificate.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
