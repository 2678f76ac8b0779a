package s3test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"
)

func TestPlanSource(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644))
	workDir := filepath.Join(root, "internal", "pkg")
	require.NoError(t, os.MkdirAll(workDir, 0o755))
	toolsBin := filepath.Join(root, toolsMinIO)
	noModule := t.TempDir()

	tests := []struct {
		name        string
		env         map[string]string
		workDir     string   // where the go.mod search starts; default workDir
		executables []string // paths that count as runnable binaries
		dockerErr   error    // what the Docker health check says; nil: healthy
		dedicated   bool
		wantKind    sourceKind
		wantBinary  string
		wantErr     string   // substring of the error; "" for none
		wantPassed  []string // substrings of the reasons earlier sources were passed over
		wantDocker  bool     // whether Docker must have been asked
	}{
		{
			name:     "endpoint from the environment first",
			env:      map[string]string{EnvEndpoint: "https://s3.example:9000", EnvMinIOBin: "/bin/x"},
			wantKind: sourceEndpoint,
		},
		{
			name:        "dedicated servers skip the endpoint",
			env:         map[string]string{EnvEndpoint: "https://s3.example:9000"},
			executables: []string{toolsBin},
			dedicated:   true,
			wantKind:    sourceBinary, wantBinary: toolsBin,
			wantPassed: []string{"not used for dedicated servers"},
		},
		{
			name:        "S3SSE_MINIO_BIN before the tools binary",
			env:         map[string]string{EnvMinIOBin: "/opt/minio"},
			executables: []string{"/opt/minio", toolsBin},
			wantKind:    sourceBinary, wantBinary: "/opt/minio",
		},
		{
			name:        "S3SSE_MINIO_BIN naming nothing runnable is an error",
			env:         map[string]string{EnvMinIOBin: "/opt/missing"},
			executables: []string{toolsBin},
			wantErr:     "S3SSE_MINIO_BIN=/opt/missing",
		},
		{
			name:        "tools binary under the module root",
			executables: []string{toolsBin},
			wantKind:    sourceBinary, wantBinary: toolsBin,
		},
		{
			name:       "container when there is no binary and Docker is healthy",
			wantKind:   sourceContainer,
			wantDocker: true,
			wantPassed: []string{"no MinIO at " + toolsBin},
		},
		{
			name:       "nothing when Docker is not usable either",
			dockerErr:  errors.New("cannot connect\nsecond line"),
			wantKind:   sourceNone,
			wantDocker: true,
			wantPassed: []string{EnvEndpoint + " is not set", "`make minio`", "cannot connect"},
		},
		{
			name:       "outside any module",
			workDir:    noModule,
			dockerErr:  errors.New("no socket"),
			wantKind:   sourceNone,
			wantDocker: true,
			wantPassed: []string{"no go.mod in " + noModule},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dockerAsked := false
			look := lookout{
				getenv:  func(k string) string { return tt.env[k] },
				workDir: workDir,
				executable: func(path string) error {
					for _, p := range tt.executables {
						if p == path {
							return nil
						}
					}
					return os.ErrNotExist
				},
				dockerHealth: func(context.Context) error {
					dockerAsked = true
					return tt.dockerErr
				},
			}
			if tt.workDir != "" {
				look.workDir = tt.workDir
			}

			plan, err := planSource(context.Background(), look, tt.dedicated)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr, "env %v", tt.env)
				return
			}
			require.NoError(t, err, "env %v", tt.env)
			require.Equal(t, tt.wantKind, plan.kind, "source kind for env %v", tt.env)
			require.Equal(t, tt.wantBinary, plan.binary, "binary for env %v", tt.env)
			require.Equal(t, tt.wantDocker, dockerAsked, "Docker asked for env %v", tt.env)
			passed := strings.Join(plan.passed, "; ")
			for _, want := range tt.wantPassed {
				require.Contains(t, passed, want, "reasons for env %v", tt.env)
			}
			if plan.kind == sourceNone {
				err := plan.noServerError()
				require.ErrorIs(t, err, ErrNoServer)
				require.Contains(t, err.Error(), "make minio", "no-server message")
				require.NotContains(t, err.Error(), "second line", "no-server message keeps one line")
			}
		})
	}
}

func TestEndpointFromEnv(t *testing.T) {
	full := map[string]string{
		EnvEndpoint: "https://s3.example:9000", EnvAccessKey: "ak", EnvSecretKey: "sk",
	}
	with := func(kv ...string) map[string]string {
		env := make(map[string]string)
		for k, v := range full {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}

	tests := []struct {
		name    string
		env     map[string]string
		want    endpointConfig // compared when wantErr is empty
		wantErr string         // substring of the error
	}{
		{
			name: "https with defaults",
			env:  full,
			want: endpointConfig{endpoint: "s3.example:9000", secure: true, accessKey: "ak",
				secretKey: "sk", region: "us-east-1"},
		},
		{
			name: "http with region and keys",
			env: with(EnvEndpoint, "http://127.0.0.1:9000", EnvRegion, "eu-west-1",
				EnvKMSKeys, " key-a, ,key-b "),
			want: endpointConfig{endpoint: "127.0.0.1:9000", accessKey: "ak", secretKey: "sk",
				region: "eu-west-1", kmsKeys: []string{"key-a", "key-b"}},
		},
		{
			name: "insecure https with a CA file",
			env:  with(EnvInsecure, "1", EnvCAFile, "/ca.pem"),
			want: endpointConfig{endpoint: "s3.example:9000", secure: true, accessKey: "ak",
				secretKey: "sk", region: "us-east-1", caFile: "/ca.pem", insecure: true},
		},
		{name: "no scheme", env: with(EnvEndpoint, "s3.example:9000"), wantErr: "want http://"},
		{name: "other scheme", env: with(EnvEndpoint, "s3://bucket"), wantErr: "want http://"},
		{name: "a path", env: with(EnvEndpoint, "https://h:1/bucket"), wantErr: "no path"},
		{name: "no secret key", env: with(EnvSecretKey, ""), wantErr: EnvSecretKey},
		{name: "bad insecure flag", env: with(EnvInsecure, "maybe"), wantErr: `"maybe"`},
		{
			name:    "CA file for plain http",
			env:     with(EnvEndpoint, "http://h:1", EnvCAFile, "/ca.pem"),
			wantErr: "is not https",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := endpointFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr, "env %v", tt.env)
				require.NotContains(t, err.Error(), "sk", "error shows the secret key")
				return
			}
			require.NoError(t, err, "env %v", tt.env)
			require.Equal(t, tt.want, got, "env %v", tt.env)
		})
	}
}

func TestConnectEndpointChecksCredentials(t *testing.T) {
	srv := Shared(t)
	access, secret := srv.Credentials()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca, err := testAuthority()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(caFile, ca.certPEM, 0o644))
	env := map[string]string{
		EnvEndpoint: srv.URL(), EnvAccessKey: access, EnvSecretKey: secret, EnvCAFile: caFile,
		EnvKMSKeys: DefaultKMSKey,
	}
	getenv := func(k string) string { return env[k] }

	ep, err := connectEndpoint(context.Background(), getenv)
	require.NoError(t, err, "connect to the shared server as an endpoint")
	require.Equal(t, KMSExternal, ep.KMSMode())
	require.Equal(t, []string{DefaultKMSKey}, ep.KMSKeys())
	require.Error(t, ep.Kill(), "Kill on an endpoint server")
	bucket := ep.NewBucket(t)
	require.NoError(t, put(t, ep.Client(t), bucket, "obj", encrypt.NewSSE()))

	env[EnvSecretKey] = "wrong-secret-value"
	_, err = connectEndpoint(context.Background(), getenv)
	require.Error(t, err, "connect with a wrong secret key")
	require.NotContains(t, err.Error(), "wrong-secret-value", "error shows the secret key")
}

// Path (c): with no endpoint and no binary, the harness asks Docker. Here
// (no Docker) that must end in the no-server message; where Docker runs,
// the test starts MinIO in a container and uses it.
func TestContainerSourceWhenNoBinary(t *testing.T) {
	look := realLookout()
	look.getenv = func(string) string { return "" }
	look.workDir = t.TempDir() // no go.mod, so no tools binary

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	srv, err := acquire(ctx, look, true, Options{})
	if errors.Is(err, ErrNoServer) {
		t.Logf("no Docker, found in %v: %v", time.Since(start).Round(time.Millisecond), err)
		require.ErrorContains(t, err, "no usable Docker engine")
		require.Less(t, time.Since(start), 30*time.Second, "time to find out Docker is missing")
		return
	}
	require.NoError(t, err, "start a container server")
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	require.Equal(t, KMSSingleKey, srv.KMSMode())
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	require.NoError(t, put(t, client, bucket, "obj", encrypt.NewSSE()))
	info, err := client.StatObject(ctx, bucket, "obj", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, "AES256", info.Metadata.Get(headerSSE))
}

func TestBucketName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	names := []string{
		"TestX",
		"TestUpload/SSE-KMS_with_context",
		strings.Repeat("VeryLongTestName", 10),
		"Test/../..//weird__NAME!",
	}
	seen := make(map[string]bool)
	for _, n := range names {
		got := bucketName(n)
		require.Regexp(t, valid, got, "bucket name for test %q", n)
		require.NotContains(t, got, "--", "bucket name for test %q", n)
		require.False(t, seen[got], "bucket name %s repeated", got)
		seen[got] = true
	}
	require.NotEqual(t, bucketName("TestX"), bucketName("TestX"), "names are unique per call")
}

func TestPackageOfFunc(t *testing.T) {
	tests := []struct {
		fn   string // runtime function name
		want string // package import path
	}{
		{
			fn:   "github.com/s3sse/s3sse/internal/s3test.TestMain",
			want: "github.com/s3sse/s3sse/internal/s3test",
		},
		{fn: "github.com/s3sse/s3sse_test.TestMain", want: "github.com/s3sse/s3sse"},
		{fn: "github.com/o/r.v2/pkg.TestMain.func1", want: "github.com/o/r.v2/pkg"},
		{fn: "main.TestMain", want: "main"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, packageOfFunc(tt.fn), "package of %s", tt.fn)
	}
}

func TestWriteRanMarker(t *testing.T) {
	dir := t.TempDir()
	pkg := "github.com/s3sse/s3sse/internal/s3test"

	require.NoError(t, writeRanMarker(dir, pkg, nil), "no server used")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "marker written though no test used a server")

	require.NoError(t, writeRanMarker("", pkg, []string{"MinIO binary /x/minio"}), "no dir")

	require.NoError(t, writeRanMarker(dir, pkg, []string{"MinIO binary /x/minio"}))
	body, err := os.ReadFile(filepath.Join(dir, "github.com_s3sse_s3sse_internal_s3test"))
	require.NoError(t, err, "marker file")
	require.Equal(t, "MinIO binary /x/minio\n", string(body))
}

func TestServerLogKeepsStartAndEndWithoutSecrets(t *testing.T) {
	var lines []string
	l := newServerLog()
	l.setObserver(func(line string) { lines = append(lines, line) })
	l.redact("s3cr3t")
	out, errs := l.stream("stdout"), l.stream("stderr")

	_, _ = out.Write([]byte("API: https://127.0.0.1:1 \nfirst half"))
	_, _ = errs.Write([]byte("an error with s3cr3t\n"))
	_, _ = out.Write([]byte(" of a line\n"))
	require.Equal(t, []string{"API: https://127.0.0.1:1 ", "an error with s3cr3t",
		"first half of a line"}, lines, "lines seen by the observer")

	filler := strings.Repeat("x", 1000) + "\n"
	for range 2 * maxServerLog / len(filler) {
		_, _ = out.Write([]byte(filler))
	}
	_, _ = out.Write([]byte("the last line\n"))
	got := l.String()
	require.NotContains(t, got, "s3cr3t", "log shows a secret")
	require.Contains(t, got, "an error with ********")
	require.Contains(t, got, "API: https://127.0.0.1:1", "log keeps its start")
	require.Contains(t, got, "the last line", "log keeps its end")
	require.Contains(t, got, "lines left out")
	require.Less(t, len(got), maxServerLog+4096, "log size")
}

// The secrets a started server holds must not show in its output dump.
func TestServerLogHidesCredentials(t *testing.T) {
	srv := StartDedicated(t, Options{})
	_, secret := srv.Credentials()
	srv.log.note("secret " + secret + " api key " + srv.kms.apiKey)

	got := srv.Log()
	require.NotContains(t, got, secret, "log shows the root secret")
	require.NotContains(t, got, srv.kms.apiKey, "log shows the KES API key")
	require.Contains(t, got, "--- s3test: secret ********")
}
