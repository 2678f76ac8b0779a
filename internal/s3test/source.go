package s3test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// Environment variables the harness reads. The package doc has examples.
const (
	// EnvEndpoint names a running server for the shared server:
	// http://host:port or https://host:port.
	EnvEndpoint = "S3SSE_S3_ENDPOINT"
	// EnvAccessKey is the endpoint's access key; required with EnvEndpoint.
	EnvAccessKey = "S3SSE_S3_ACCESS_KEY"
	// EnvSecretKey is the endpoint's secret key; required with EnvEndpoint.
	EnvSecretKey = "S3SSE_S3_SECRET_KEY"
	// EnvRegion is the region for new buckets on the endpoint; default
	// us-east-1.
	EnvRegion = "S3SSE_S3_REGION"
	// EnvCAFile is a PEM file of CAs to trust, besides the system's, for an
	// https endpoint.
	EnvCAFile = "S3SSE_S3_CA_FILE"
	// EnvInsecure, when 1, skips certificate verification for an https
	// endpoint.
	EnvInsecure = "S3SSE_S3_INSECURE"
	// EnvKMSKeys lists, comma-separated, the KMS key ids the endpoint's KMS
	// holds, its default key first.
	EnvKMSKeys = "S3SSE_S3_KMS_KEYS"
	// EnvMinIOBin is the MinIO binary to run; default .tools/bin/minio
	// under the module root.
	EnvMinIOBin = "S3SSE_MINIO_BIN"
	// EnvMinIOImage is the MinIO image for containers.
	EnvMinIOImage = "S3SSE_MINIO_IMAGE"
	// EnvRequireS3, when 1, makes a missing server a failure, not a skip.
	EnvRequireS3 = "S3SSE_REQUIRE_S3"
	// EnvRanMarkerDir is where Main leaves a file per test package that
	// ran against a real server.
	EnvRanMarkerDir = "S3SSE_RAN_MARKER_DIR"
)

// toolsMinIO is where `make minio` installs the pinned MinIO, relative to
// the module root.
var toolsMinIO = filepath.Join(".tools", "bin", "minio")

// sourceKind is where a server comes from, in the order the harness tries.
type sourceKind int

const (
	sourceNone sourceKind = iota
	sourceEndpoint
	sourceBinary
	sourceContainer
)

func (k sourceKind) String() string {
	switch k {
	case sourceEndpoint:
		return "endpoint"
	case sourceBinary:
		return "binary"
	case sourceContainer:
		return "container"
	}
	return "none"
}

// sourcePlan is the outcome of looking for a server: what to use, and why
// each source before it could not be used (for the skip message).
type sourcePlan struct {
	kind   sourceKind
	binary string // sourceBinary: the MinIO executable
	passed []string
}

// lookout is what planSource looks at; tests of the selection replace it.
type lookout struct {
	getenv func(string) string
	// workDir is where the search for the module root (go.mod) starts.
	workDir string
	// executable reports why path is not an executable file, or nil.
	executable func(path string) error
	// dockerHealth reports why no Docker engine is usable, or nil.
	dockerHealth func(ctx context.Context) error
}

func realLookout() lookout {
	wd, _ := os.Getwd()
	return lookout{
		getenv:       os.Getenv,
		workDir:      wd,
		executable:   checkExecutable,
		dockerHealth: dockerHealth,
	}
}

// planSource picks the first usable server source: the endpoint from the
// environment (unless dedicated, as the harness must start those itself),
// the MinIO binary, a MinIO container. A source that is asked for but
// broken (S3SSE_S3_ENDPOINT without credentials, S3SSE_MINIO_BIN naming
// nothing runnable) is an error rather than a reason to try the next one.
func planSource(ctx context.Context, look lookout, dedicated bool) (sourcePlan, error) {
	var plan sourcePlan

	if endpoint := look.getenv(EnvEndpoint); endpoint != "" {
		if !dedicated {
			plan.kind = sourceEndpoint
			return plan, nil
		}
		plan.passed = append(plan.passed, fmt.Sprintf(
			"%s=%s is not used for dedicated servers, which the harness must start itself",
			EnvEndpoint, endpoint))
	} else {
		plan.passed = append(plan.passed, EnvEndpoint+" is not set")
	}

	if bin := look.getenv(EnvMinIOBin); bin != "" {
		path := bin
		if !strings.ContainsRune(bin, filepath.Separator) {
			// A bare name is looked up in PATH, as a shell would.
			if found, err := exec.LookPath(bin); err == nil {
				path = found
			}
		}
		if err := look.executable(path); err != nil {
			return plan, fmt.Errorf("%s=%s: %w; unset it to use %s or run `make minio`",
				EnvMinIOBin, bin, err, toolsMinIO)
		}
		plan.kind, plan.binary = sourceBinary, path
		return plan, nil
	}
	if root, err := moduleRoot(look.workDir); err != nil {
		plan.passed = append(plan.passed, err.Error())
	} else {
		bin := filepath.Join(root, toolsMinIO)
		if err := look.executable(bin); err == nil {
			plan.kind, plan.binary = sourceBinary, bin
			return plan, nil
		}
		plan.passed = append(plan.passed, fmt.Sprintf(
			"%s is not set and there is no MinIO at %s (`make minio` builds it)", EnvMinIOBin, bin))
	}

	if err := look.dockerHealth(ctx); err != nil {
		plan.passed = append(plan.passed, "no usable Docker engine for a MinIO container: "+
			firstLine(err.Error()))
		return plan, nil
	}
	plan.kind = sourceContainer
	return plan, nil
}

// ErrNoServer is the error, matched with errors.Is, when there is no
// server to start or connect to: no endpoint (where one may be used), no
// MinIO binary and no usable Docker engine. Its text says how to get one.
var ErrNoServer = errors.New("no S3 server")

// noServerError says why there is no server and how to get one.
func (p sourcePlan) noServerError() error {
	return fmt.Errorf("%w (%s). Get one by running `make minio` (builds the pinned MinIO "+
		"into %s), or setting %s to a MinIO binary, or starting Docker, or setting %s, %s "+
		"and %s for a running server", ErrNoServer, strings.Join(p.passed, "; "), toolsMinIO,
		EnvMinIOBin, EnvEndpoint, EnvAccessKey, EnvSecretKey)
}

// moduleRoot walks up from dir to the directory holding go.mod.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or above it", dir)
		}
		d = parent
	}
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not an executable file (mode %v)", fi.Mode())
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// requireS3 reports whether S3SSE_REQUIRE_S3 makes a missing server a
// failure rather than a skip.
func requireS3() (bool, error) {
	v := os.Getenv(EnvRequireS3)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1 or 0 (true or false)", EnvRequireS3, v)
	}
	return b, nil
}

// skipNoServer skips the test, or fails it under S3SSE_REQUIRE_S3=1.
func skipNoServer(tb testing.TB, msg string) {
	tb.Helper()
	required, err := requireS3()
	if err != nil {
		tb.Fatal(err)
	}
	if required {
		tb.Fatalf("%s. %s=1 makes this a failure.", msg, EnvRequireS3)
	}
	tb.Skip(msg)
}

// shared is the package's shared server, started by the first Shared call.
var shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Shared returns the test package's shared server, starting it on first
// use: TLS, and the KES stand-in with DefaultKMSKeys where the harness
// starts MinIO itself. Tests share it, so each uses its own bucket from
// NewBucket and must not Kill, Stop, Restart or Close it, nor disable keys
// other tests use. It needs Main in the package's TestMain, which shuts it
// down.
//
// Without any server it skips the test with a message saying how to get
// one, or fails it when S3SSE_REQUIRE_S3=1. A server that is found but
// fails to start fails every test that asks for it.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatal("s3test.Shared needs s3test.Main: call s3test.Main(m) from the package's TestMain")
	}

	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.server, shared.err = acquire(ctx, realLookout(), false, Options{})
		if shared.server != nil {
			shared.server.shared = true
		}
	})
	switch {
	case errors.Is(shared.err, ErrNoServer):
		skipNoServer(tb, shared.err.Error())
	case shared.err != nil:
		tb.Fatalf("start shared S3 server: %v", shared.err)
	}
	serverUsed(shared.server)
	return shared.server
}

// StartDedicated starts a server for the calling test alone, which may
// Kill, Stop and Restart it, and closes it when the test ends (printing
// its output if the test failed). It starts the pinned MinIO binary, or a
// container; never the endpoint from the environment. Without either it
// skips, or fails under S3SSE_REQUIRE_S3=1.
func StartDedicated(tb testing.TB, opts Options) *Server {
	tb.Helper()

	start := time.Now()
	srv, err := Launch(context.Background(), opts)
	switch {
	case errors.Is(err, ErrNoServer):
		skipNoServer(tb, err.Error())
	case err != nil:
		tb.Fatalf("start dedicated S3 server: %v", err)
	}
	tb.Logf("dedicated S3 server from %s at %s, %s, ready in %v",
		srv.source, srv.URL(), srv.kmsMode, time.Since(start).Round(time.Millisecond))

	tb.Cleanup(func() {
		if tb.Failed() && srv.log != nil {
			tb.Logf("output of the dedicated S3 server at %s:\n%s", srv.URL(), srv.Log())
		}
		if err := srv.Close(); err != nil {
			tb.Errorf("stop dedicated S3 server at %s: %v", srv.URL(), err)
		}
	})
	serverUsed(srv)
	return srv
}

// Launch starts a server outside a test, for programs such as demos, as
// StartDedicated would: the MinIO binary, or else a container; never the
// endpoint from the environment. The caller must Close it. Without a
// binary or Docker it returns an error matching ErrNoServer that says how
// to get one. Startup is bounded by ctx and by a timeout of its own.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return acquire(ctx, realLookout(), true, opts)
}

// acquire finds a server source and starts or connects to the server. The
// error matches ErrNoServer when no source is available.
func acquire(ctx context.Context, look lookout, dedicated bool, opts Options) (*Server, error) {
	plan, err := planSource(ctx, look, dedicated)
	if err != nil {
		return nil, err
	}
	switch plan.kind {
	case sourceEndpoint:
		return connectEndpoint(ctx, look.getenv)
	case sourceBinary:
		return startBinary(ctx, plan.binary, opts)
	case sourceContainer:
		return startContainer(ctx, containerImage(look.getenv), opts)
	}
	return nil, plan.noServerError()
}

// endpointConfig is the server named by the S3SSE_S3_* variables.
type endpointConfig struct {
	endpoint  string // host:port
	secure    bool
	accessKey string
	secretKey string
	region    string
	caFile    string
	insecure  bool
	kmsKeys   []string
}

// endpointFromEnv reads and checks the S3SSE_S3_* variables.
func endpointFromEnv(getenv func(string) string) (endpointConfig, error) {
	cfg := endpointConfig{
		accessKey: getenv(EnvAccessKey),
		secretKey: getenv(EnvSecretKey),
		region:    getenv(EnvRegion),
		caFile:    getenv(EnvCAFile),
	}
	raw := getenv(EnvEndpoint)
	scheme, host, ok := strings.Cut(raw, "://")
	switch {
	case !ok || (scheme != "http" && scheme != "https"):
		return cfg, fmt.Errorf("%s=%q: want http://host:port or https://host:port", EnvEndpoint, raw)
	case host == "" || strings.ContainsAny(host, "/?#"):
		return cfg, fmt.Errorf("%s=%q: want a host and port only, no path", EnvEndpoint, raw)
	case cfg.accessKey == "" || cfg.secretKey == "":
		return cfg, fmt.Errorf("%s is set: %s and %s must be set too", EnvEndpoint, EnvAccessKey,
			EnvSecretKey)
	}
	cfg.endpoint, cfg.secure = host, scheme == "https"
	if cfg.region == "" {
		cfg.region = "us-east-1"
	}
	if v := getenv(EnvInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("%s=%q: want 1 or 0 (true or false)", EnvInsecure, v)
		}
		cfg.insecure = b
	}
	if (cfg.caFile != "" || cfg.insecure) && !cfg.secure {
		return cfg, fmt.Errorf("%s or %s is set but %s=%q is not https", EnvCAFile, EnvInsecure,
			EnvEndpoint, raw)
	}
	for _, k := range strings.Split(getenv(EnvKMSKeys), ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.kmsKeys = append(cfg.kmsKeys, k)
		}
	}
	return cfg, nil
}

// connectEndpoint returns the server named by the environment, once it
// has answered a request with the given credentials.
func connectEndpoint(ctx context.Context, getenv func(string) string) (*Server, error) {
	cfg, err := endpointFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	s := &Server{
		source:    EnvEndpoint + " " + getenv(EnvEndpoint),
		endpoint:  cfg.endpoint,
		secure:    cfg.secure,
		region:    cfg.region,
		accessKey: cfg.accessKey,
		secretKey: cfg.secretKey,
		insecure:  cfg.insecure,
		kmsMode:   KMSExternal,
		kmsKeys:   cfg.kmsKeys,
	}
	if cfg.caFile != "" {
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvCAFile, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%s: no PEM certificate in the file", EnvCAFile, cfg.caFile)
		}
		s.rootCAs = pool
	}
	s.transport = s.NewTransport()

	opts := s.ClientOptions()
	opts.Transport = s.transport
	client, err := minio.New(s.endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvEndpoint, err)
	}
	if _, err := client.ListBuckets(ctx); err != nil {
		return nil, fmt.Errorf("reach %s with %s: %w", s.URL(), EnvAccessKey, err)
	}
	return s, nil
}
