package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
)

// KMSMode says what key service a Server's MinIO uses, and so which KMS
// tests it can run.
type KMSMode int

const (
	// KMSNone: no KMS. SSE-S3 and SSE-KMS uploads fail with 501
	// NotImplemented; SSE-C works (over TLS).
	KMSNone KMSMode = iota
	// KMSStandIn: the harness's KES stand-in (see KMS). Several distinct
	// keys, keys added or disabled while MinIO runs, and a record of every
	// key operation. Servers the harness starts from a binary use it.
	KMSStandIn
	// KMSSingleKey: MinIO's built-in static key (MINIO_KMS_SECRET_KEY). One
	// key, named DefaultKMSKey; any other key id gives kms:KeyNotFound.
	// Containers use it, because they cannot reach the stand-in.
	KMSSingleKey
	// KMSExternal: a server named by S3SSE_S3_ENDPOINT. Its KMS is whatever
	// it is; S3SSE_S3_KMS_KEYS tells the harness the key ids it may use.
	KMSExternal
)

// String returns a short description of the mode for test messages.
func (m KMSMode) String() string {
	switch m {
	case KMSNone:
		return "no KMS"
	case KMSStandIn:
		return "KES stand-in"
	case KMSSingleKey:
		return "single built-in KMS key"
	case KMSExternal:
		return "external KMS (S3SSE_S3_KMS_KEYS)"
	}
	return fmt.Sprintf("KMSMode(%d)", int(m))
}

// DefaultKMSKey is the name of the KMS key every server the harness starts
// uses by default: for SSE-S3, and for SSE-KMS without a key id.
const DefaultKMSKey = "s3sse-default"

// DefaultKMSKeys are the keys the stand-in holds when Options.KMSKeys is
// nil: the default key and three more, so tests can put tenants under
// distinct keys without adding any.
var DefaultKMSKeys = []string{DefaultKMSKey, "s3sse-key-a", "s3sse-key-b", "s3sse-key-c"}

// Options configure a server started by StartDedicated. The zero value is
// a TLS server with the KMS stand-in holding DefaultKMSKeys.
type Options struct {
	// NoKMS starts MinIO without any KMS: SSE-S3 and SSE-KMS uploads then
	// fail with 501 NotImplemented. Default false.
	NoKMS bool
	// PlainHTTP serves plain HTTP instead of TLS. MinIO refuses SSE-C keys
	// over plain HTTP. Default false: TLS with a certificate from the
	// harness's authority (see Server.RootCAs).
	PlainHTTP bool
	// KMSKeys are the stand-in's keys at start; the first is MinIO's
	// default key. Nil means DefaultKMSKeys. A container ignores all but
	// the first. Ignored with NoKMS.
	KMSKeys []string
}

// Server is a running S3 server for tests: a MinIO the harness started
// from the pinned binary or in a container, or the endpoint named by
// S3SSE_S3_ENDPOINT. Its methods are safe for concurrent use, but Kill,
// Restart and Stop change the server under every test using it: they are
// for dedicated servers only.
type Server struct {
	source    string
	endpoint  string // host:port
	secure    bool
	region    string
	accessKey string
	secretKey string
	rootCAs   *x509.CertPool // nil: the system roots
	insecure  bool

	kmsMode KMSMode
	kms     *KMS     // KMSStandIn only
	kmsKeys []string // KMSSingleKey and KMSExternal

	shared  bool
	backend backend    // nil for an endpoint from the environment
	log     *serverLog // nil for an endpoint from the environment
	dir     string     // temporary files; removed by close

	transport *http.Transport // shared by the clients Client returns
	closeOnce sync.Once
	closeErr  error
}

// backend is what the harness can do with a server it started.
type backend interface {
	// kill ends the server abruptly, as a crash would.
	kill() error
	// stop ends the server gracefully.
	stop() error
	// restart starts the server again, gracefully stopping it first if it
	// runs, with the same data, address and keys, and waits until ready.
	restart(ctx context.Context) error
	running() bool
	// close ends the server for good and frees what it holds.
	close() error
}

// Source says where the server comes from, for logs: the binary's path,
// the container image, or the endpoint from the environment.
func (s *Server) Source() string { return s.source }

// Endpoint returns the server's host:port, as minio.New takes it.
func (s *Server) Endpoint() string { return s.endpoint }

// Secure reports whether the server speaks TLS.
func (s *Server) Secure() bool { return s.secure }

// URL returns the server's base URL, http:// or https:// and host:port.
func (s *Server) URL() string {
	if s.secure {
		return "https://" + s.endpoint
	}
	return "http://" + s.endpoint
}

// Region returns the region buckets are made in.
func (s *Server) Region() string { return s.region }

// Credentials returns the access key and secret key of a user who may do
// anything on the server. The secret must not reach logs or errors.
func (s *Server) Credentials() (accessKey, secretKey string) {
	return s.accessKey, s.secretKey
}

// RootCAs returns the certificate pool a client must trust to reach the
// server: the harness's authority for servers it started, the system roots
// plus S3SSE_S3_CA_FILE for an endpoint. Nil means the system roots. The
// pool is shared: do not add to it.
func (s *Server) RootCAs() *x509.CertPool { return s.rootCAs }

// CACertPEM returns, PEM-encoded, the certificate of the authority that
// issued the server's certificate, for clients in other processes; nil for
// an endpoint from the environment.
func (s *Server) CACertPEM() []byte {
	if s.backend == nil {
		return nil
	}
	ca, err := testAuthority()
	if err != nil {
		return nil // the server could not have started without it
	}
	return bytes.Clone(ca.certPEM)
}

// NewTransport returns a new transport that trusts the server's
// certificate (see RootCAs), for clients built by hand. Each call returns
// a new transport the caller may change.
func (s *Server) NewTransport() *http.Transport {
	return newClientTransport(s.rootCAs, s.insecure)
}

// ClientOptions returns options for minio.New that reach the server with
// full rights, with a new transport from NewTransport.
func (s *Server) ClientOptions() *minio.Options {
	return &minio.Options{
		Creds:     credentials.NewStaticV4(s.accessKey, s.secretKey, ""),
		Secure:    s.secure,
		Region:    s.region,
		Transport: s.NewTransport(),
	}
}

// Client returns a new client of the server with full rights. Clients
// share one transport, so they reuse connections.
func (s *Server) Client(tb testing.TB) *minio.Client {
	tb.Helper()

	opts := s.ClientOptions()
	opts.Transport = s.transport
	client, err := minio.New(s.endpoint, opts)
	require.NoError(tb, err, "create client for %s", s.URL())
	return client
}

// KMSMode returns what key service the server uses.
func (s *Server) KMSMode() KMSMode { return s.kmsMode }

// KMS returns the server's KES stand-in, or nil unless KMSMode is
// KMSStandIn. Use RequireKMS in tests that cannot run without it.
func (s *Server) KMS() *KMS { return s.kms }

// KMSKeys returns the names of the KMS keys SSE-KMS uploads may use, the
// default key first: the stand-in's current keys, the single built-in key,
// or S3SSE_S3_KMS_KEYS. Nil without a KMS.
func (s *Server) KMSKeys() []string {
	switch s.kmsMode {
	case KMSStandIn:
		names := s.kms.KeyNames()
		out := []string{s.kmsKeys[0]}
		for _, n := range names {
			if n != s.kmsKeys[0] {
				out = append(out, n)
			}
		}
		return out
	case KMSSingleKey, KMSExternal:
		return append([]string(nil), s.kmsKeys...)
	}
	return nil
}

// DefaultKMSKey returns the key MinIO uses for SSE-S3 and for SSE-KMS
// without a key id, or "" when it is not known (no KMS, or an endpoint
// without S3SSE_S3_KMS_KEYS).
func (s *Server) DefaultKMSKey() string {
	if len(s.kmsKeys) == 0 {
		return ""
	}
	return s.kmsKeys[0]
}

// RequireKMS returns the server's KES stand-in, skipping the test with
// the reason when the server has none (a container or an endpoint from the
// environment): such a test cannot run on that server.
func (s *Server) RequireKMS(tb testing.TB) *KMS {
	tb.Helper()
	if s.kms == nil {
		tb.Skipf("needs the harness's KES stand-in (several keys, key changes, recorded "+
			"calls); %s has %s", s.source, s.kmsMode)
	}
	return s.kms
}

// RequireKMSKeys returns n distinct KMS key names, default key first,
// skipping the test with the reason when the server's KMS has fewer.
func (s *Server) RequireKMSKeys(tb testing.TB, n int) []string {
	tb.Helper()
	keys := s.KMSKeys()
	if len(keys) < n {
		tb.Skipf("needs %d distinct KMS keys; %s has %s with %d (%s)",
			n, s.source, s.kmsMode, len(keys), strings.Join(keys, ", "))
	}
	return keys[:n]
}

// NewBucket creates an empty bucket with a name unique to the test and
// removes it, with every object and unfinished upload in it, when the test
// ends. A bucket on a dedicated server that is down at that point is left
// to be removed with the server's data.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()

	name := bucketName(tb.Name())
	client := s.Client(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.region})
	require.NoError(tb, err, "create bucket %s on %s", name, s.source)

	tb.Cleanup(func() {
		if s.backend != nil && !s.backend.running() {
			return
		}
		if err := removeBucket(client, name); err != nil {
			tb.Errorf("remove bucket %s on %s: %v", name, s.source, err)
		}
	})
	return name
}

// removeBucket empties and deletes a bucket, including object versions
// and unfinished multipart uploads a test left behind.
func removeBucket(client *minio.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	objects := make(chan minio.ObjectInfo)
	listErr := make(chan error, 1)
	go func() {
		defer close(objects)
		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{
			Recursive:    true,
			WithVersions: true,
		}) {
			if obj.Err != nil {
				listErr <- fmt.Errorf("list objects: %w", obj.Err)
				return
			}
			objects <- obj
		}
		listErr <- nil
	}()
	var errs []error
	for r := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove object %s: %w", r.ObjectName, r.Err))
	}
	if err := <-listErr; err != nil {
		errs = append(errs, err)
	}

	for u := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err != nil {
			errs = append(errs, fmt.Errorf("list incomplete uploads: %w", u.Err))
			break
		}
		if err := client.RemoveIncompleteUpload(ctx, bucket, u.Key); err != nil {
			errs = append(errs, fmt.Errorf("abort upload of %s: %w", u.Key, err))
		}
	}

	if len(errs) == 0 {
		if err := client.RemoveBucket(ctx, bucket); err != nil {
			errs = append(errs, fmt.Errorf("remove bucket: %w", err))
		}
	}
	return errors.Join(errs...)
}

// bucketName turns a test name into a valid, unique bucket name: lower
// case letters, digits and hyphens, at most 63 characters.
func bucketName(testName string) string {
	var b strings.Builder
	b.WriteString("s3t-")
	lastHyphen := true
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 44 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			lastHyphen = false
		} else if !lastHyphen {
			b.WriteByte('-')
			lastHyphen = true
		}
	}
	if !lastHyphen {
		b.WriteByte('-')
	}
	b.WriteString(randomHex(6))
	return b.String()
}

// Kill ends a dedicated server abruptly (SIGKILL; a container gets no
// grace period), as a crash would, and returns once it is gone. Requests
// in flight fail. Restart brings it back. It fails on the shared server
// and on an endpoint from the environment.
func (s *Server) Kill() error {
	if err := s.controllable("kill"); err != nil {
		return err
	}
	s.note("killed by the test")
	return s.backend.kill()
}

// Stop shuts a dedicated server down gracefully; Restart brings it back.
// It fails on the shared server and on an endpoint from the environment.
func (s *Server) Stop() error {
	if err := s.controllable("stop"); err != nil {
		return err
	}
	s.note("stopped by the test")
	return s.backend.stop()
}

// Restart starts a dedicated server again after Kill or Stop (stopping it
// first if it runs), with the same data, address, credentials and KMS
// keys, and returns once it answers ready. Existing clients keep working.
// It fails on the shared server and on an endpoint from the environment.
func (s *Server) Restart() error {
	if err := s.controllable("restart"); err != nil {
		return err
	}
	s.note("restarted by the test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	return s.backend.restart(ctx)
}

func (s *Server) controllable(op string) error {
	switch {
	case s.backend == nil:
		return fmt.Errorf("%s server: %s is not started by the harness", op, s.source)
	case s.shared:
		return fmt.Errorf("%s server: the shared server is used by every test; "+
			"use StartDedicated", op)
	}
	return nil
}

func (s *Server) note(line string) {
	if s.log != nil {
		s.log.note(line)
	}
}

// Log returns what the server printed (up to about 1 MiB: its first and
// last lines), with credentials and KMS keys removed. Empty for an
// endpoint from the environment.
func (s *Server) Log() string {
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// Close ends a server from Launch for good and removes its data; later
// calls return the first call's result. A dedicated server is closed when
// its test ends, the shared server by Main: Close refuses the shared one.
func (s *Server) Close() error {
	if s.shared {
		return errors.New("close server: the shared server is closed by s3test.Main")
	}
	return s.close()
}

// close ends the server for good and removes its files. It is idempotent.
func (s *Server) close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.backend != nil {
			errs = append(errs, s.backend.close())
		}
		if s.kms != nil {
			errs = append(errs, s.kms.close())
		}
		if s.transport != nil {
			s.transport.CloseIdleConnections()
		}
		if s.dir != "" {
			errs = append(errs, os.RemoveAll(s.dir))
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// startBinary starts MinIO from a local binary, with the KES stand-in
// unless opts.NoKMS.
func startBinary(ctx context.Context, bin string, opts Options) (_ *Server, err error) {
	ca, err := testAuthority()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3sse-minio-")
	if err != nil {
		return nil, fmt.Errorf("create server dir: %w", err)
	}
	s := &Server{
		source:    "MinIO binary " + bin,
		secure:    !opts.PlainHTTP,
		region:    "us-east-1",
		accessKey: "s3test-" + randomHex(4),
		secretKey: randomHex(20),
		rootCAs:   ca.pool,
		dir:       dir,
		log:       newServerLog(),
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nMinIO output:\n%s", err, s.log.String())
			_ = s.close()
		}
	}()
	s.log.redact(s.secretKey)
	s.transport = s.NewTransport()

	certsDir := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certsDir, 0o755); err != nil {
		return nil, fmt.Errorf("create certs dir: %w", err)
	}
	if s.secure {
		cert, err := ca.issue()
		if err != nil {
			return nil, err
		}
		if err := ca.writeCertsDir(certsDir, cert); err != nil {
			return nil, err
		}
	}

	settings := []string{
		"MINIO_ROOT_USER=" + s.accessKey,
		"MINIO_ROOT_PASSWORD=" + s.secretKey,
		"MINIO_BROWSER=off",
		// Plain uploads must stay unencrypted, or a test could not tell
		// "no SSE header sent" from "encrypted".
		"MINIO_KMS_AUTO_ENCRYPTION=off",
	}
	if !opts.NoKMS {
		kmsSettings, err := s.startKMS(opts.KMSKeys, ca)
		if err != nil {
			return nil, err
		}
		settings = append(settings, kmsSettings...)
	}

	proc := &minioProcess{
		bin:      bin,
		dataDir:  filepath.Join(dir, "data"),
		certsDir: certsDir,
		env:      minioEnv(settings...),
		secure:   s.secure,
		ready:    &http.Client{Transport: s.NewTransport(), Timeout: 5 * time.Second},
		log:      s.log,
	}
	s.backend = processBackend{proc}
	if err := proc.start(ctx); err != nil {
		return nil, err
	}
	s.endpoint = proc.addr
	return s, nil
}

// startKMS starts the stand-in for s and returns MinIO's settings for it.
func (s *Server) startKMS(keys []string, ca *authority) ([]string, error) {
	if keys == nil {
		keys = DefaultKMSKeys
	}
	if len(keys) == 0 {
		return nil, errors.New("start KMS stand-in: Options.KMSKeys is empty; " +
			"want nil for the defaults or at least one key name")
	}
	kms, err := startKMS(keys)
	if err != nil {
		return nil, fmt.Errorf("start KMS stand-in: %w", err)
	}
	s.kms, s.kmsMode, s.kmsKeys = kms, KMSStandIn, []string{keys[0]}
	s.log.redact(kms.apiKey)

	caFile := filepath.Join(s.dir, "kes-ca.crt")
	if err := os.WriteFile(caFile, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write KES CA file: %w", err)
	}
	return kms.minioEnv(keys[0], caFile), nil
}

// processBackend adapts a minioProcess to backend.
type processBackend struct{ p *minioProcess }

func (b processBackend) kill() error   { return b.p.kill() }
func (b processBackend) stop() error   { return b.p.stop() }
func (b processBackend) running() bool { return b.p.running() }
func (b processBackend) close() error  { return b.p.stop() }

func (b processBackend) restart(ctx context.Context) error {
	if err := b.p.stop(); err != nil {
		return err
	}
	return b.p.start(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b)
}
