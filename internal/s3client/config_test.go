package s3client

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// newConfig returns a block with its flags registered under
// blocks-storage., after args and then the YAML of the block.
func newConfig(t *testing.T, block string, args ...string) *Config {
	t.Helper()
	cfg := &Config{}
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("blocks-storage.", f)
	require.NoError(t, yaml.Unmarshal([]byte(block), cfg), "yaml %q", block)
	require.NoError(t, f.Parse(args), "args %q", args)
	return cfg
}

func TestEveryKeyHasItsPrefixedFlag(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlagsWithPrefix("ruler-storage.", f)
	for _, name := range []string{
		"s3.endpoint", "s3.region", "s3.bucket-name", "s3.access-key-id",
		"s3.secret-access-key", "s3.insecure", "s3.signature-version", "s3.bucket-lookup-type",
		"s3.http.idle-conn-timeout", "s3.http.response-header-timeout",
		"s3.http.insecure-skip-verify", "s3.tls-handshake-timeout", "s3.http.tls-ca-path",
		"s3.sse.type", "s3.sse.kms-key-id", "s3.sse.kms-encryption-context",
	} {
		require.NotNil(t, f.Lookup("ruler-storage."+name), "flag -ruler-storage.%s", name)
	}

	require.Equal(t, DefaultSignatureVersion, cfg.SignatureVersion)
	require.Equal(t, DefaultBucketLookupType, cfg.BucketLookupType)
	require.Equal(t, 90*time.Second, cfg.HTTP.IdleConnTimeout)
	require.Equal(t, 2*time.Minute, cfg.HTTP.ResponseHeaderTimeout)
	require.Equal(t, 10*time.Second, cfg.HTTP.TLSHandshakeTimeout)
}

func TestYAMLKeysAreCortexs(t *testing.T) {
	cfg := newConfig(t, `
endpoint: s3.example.com
region: eu-west-1
bucket_name: blocks
access_key_id: AKIAEXAMPLE
secret_access_key: from-file
insecure: true
signature_version: v2
bucket_lookup_type: path
http:
  idle_conn_timeout: 30s
  insecure_skip_verify: true
  tls_handshake_timeout: 5s
  tls_ca_path: /etc/ssl/private-ca.pem
sse:
  type: SSE-S3
`, "-blocks-storage.s3.region=us-east-1")

	require.Equal(t, "s3.example.com", cfg.Endpoint)
	require.Equal(t, "us-east-1", cfg.Region, "the flag beats the file")
	require.Equal(t, "from-file", cfg.SecretAccessKey.Reveal())
	require.Equal(t, "v2", cfg.SignatureVersion)
	require.Equal(t, "path", cfg.BucketLookupType)
	require.Equal(t, "/etc/ssl/private-ca.pem", cfg.HTTP.TLSCAPath)
	require.Equal(t, 30*time.Second, cfg.HTTP.IdleConnTimeout, "set by the file")
	require.Equal(t, 2*time.Minute, cfg.HTTP.ResponseHeaderTimeout, "the flag's default, kept")
	require.NoError(t, cfg.Validate(""))
}

func TestValidateNamesKeyFlagAndValue(t *testing.T) {
	const valid = "{endpoint: s3.example.com, bucket_name: blocks}"
	tests := []struct {
		name string
		args []string // flags over the valid block
		want []string // parts of the error
	}{
		{
			name: "missing endpoint",
			args: []string{"-blocks-storage.s3.endpoint="},
			want: []string{"blocks_storage.s3.endpoint (flag -blocks-storage.s3.endpoint) is empty"},
		},
		{
			name: "endpoint with an unknown scheme",
			args: []string{"-blocks-storage.s3.endpoint=s3://s3.example.com"},
			want: []string{"blocks_storage.s3.endpoint (flag -blocks-storage.s3.endpoint)",
				`"s3://s3.example.com"`, "http:// or https://"},
		},
		{
			name: "endpoint with a path",
			args: []string{"-blocks-storage.s3.endpoint=https://s3.example.com/blocks"},
			want: []string{`"https://s3.example.com/blocks"`, "without a path",
				"blocks_storage.s3.bucket_name (flag -blocks-storage.s3.bucket-name)"},
		},
		{
			name: "endpoint with a path and no scheme",
			args: []string{"-blocks-storage.s3.endpoint=s3.example.com/blocks"},
			want: []string{`"s3.example.com/blocks"`, "without a path"},
		},
		{
			name: "missing bucket",
			args: []string{"-blocks-storage.s3.bucket-name="},
			want: []string{"blocks_storage.s3.bucket_name " +
				"(flag -blocks-storage.s3.bucket-name) is empty"},
		},
		{
			name: "access key without secret",
			args: []string{"-blocks-storage.s3.access-key-id=AKIAEXAMPLE"},
			want: []string{"blocks_storage.s3.access_key_id (flag -blocks-storage.s3.access-key-id) " +
				"is set", "secret_access_key (flag -blocks-storage.s3.secret-access-key) is not"},
		},
		{
			name: "bad signature version",
			args: []string{"-blocks-storage.s3.signature-version=v3"},
			want: []string{"blocks_storage.s3.signature_version " +
				`(flag -blocks-storage.s3.signature-version) "v3": valid: v4, v2`},
		},
		{
			name: "bad lookup type",
			args: []string{"-blocks-storage.s3.bucket-lookup-type=dns"},
			want: []string{"(flag -blocks-storage.s3.bucket-lookup-type) \"dns\"",
				"auto, virtual-hosted, path"},
		},
		{
			name: "negative timeout",
			args: []string{"-blocks-storage.s3.tls-handshake-timeout=-1s"},
			want: []string{"blocks_storage.s3.http.tls_handshake_timeout " +
				"(flag -blocks-storage.s3.tls-handshake-timeout) -1s: must not be negative"},
		},
		{
			name: "unknown SSE type",
			args: []string{"-blocks-storage.s3.sse.type=SSE-KSM"},
			want: []string{"blocks_storage.s3:", "sse.type (flag -blocks-storage.s3.sse.type)",
				`"SSE-KSM"`, "SSE-S3, SSE-KMS"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := newConfig(t, valid, tc.args...).Validate("")
			require.Error(t, err, "args %q", tc.args)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w, "args %q", tc.args)
			}
		})
	}

	err := newConfig(t, valid, "-blocks-storage.s3.bucket-name=").Validate("cortex.s3")
	require.ErrorContains(t, err, "cortex.s3.bucket_name (flag -blocks-storage.s3.bucket-name)",
		"a path given to Validate replaces the one the prefix implies")
}

func TestValidateAcceptsASchemeThatDecidesOverInsecure(t *testing.T) {
	tests := []struct {
		endpoint   string
		insecure   bool // the insecure key
		wantSecure bool // whether the client uses HTTPS
	}{
		{endpoint: "s3.example.com", insecure: false, wantSecure: true},
		{endpoint: "s3.example.com:9000", insecure: true, wantSecure: false},
		{endpoint: "http://s3.example.com", insecure: false, wantSecure: false},
		{endpoint: "https://s3.example.com:9000/", insecure: true, wantSecure: true},
	}
	for _, tc := range tests {
		cfg := newConfig(t, "{bucket_name: b}", "-blocks-storage.s3.endpoint="+tc.endpoint,
			"-blocks-storage.s3.access-key-id=a", "-blocks-storage.s3.secret-access-key=s")
		cfg.Insecure = tc.insecure
		require.NoError(t, cfg.Validate(""), "endpoint %q", tc.endpoint)
		client, err := cfg.NewClient()
		require.NoError(t, err, "endpoint %q", tc.endpoint)
		require.Equal(t, tc.wantSecure, client.EndpointURL().Scheme == "https",
			"endpoint %q, insecure %t: got %s", tc.endpoint, tc.insecure, client.EndpointURL())
	}
}

func TestNewClientRefusesABadCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))

	tests := []struct {
		name string
		file string
		want string // part of the error
	}{
		{"missing file", filepath.Join(dir, "none.pem"), "read CA file"},
		{"no certificate in it", notPEM, "no PEM certificate in the file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newConfig(t, "{endpoint: s3.example.com, bucket_name: b}",
				"-blocks-storage.s3.http.tls-ca-path="+tc.file)
			_, err := cfg.NewClient()
			require.ErrorContains(t, err, "blocks_storage.s3.http.tls_ca_path "+
				"(flag -blocks-storage.s3.http.tls-ca-path)", "file %s", tc.file)
			require.ErrorContains(t, err, tc.want, "file %s", tc.file)
		})
	}
}

// TestClientReachesATLSServerThroughItsCAFile builds the client from the
// block alone, as a host does, against MinIO over TLS with a certificate
// from an authority the system does not know.
func TestClientReachesATLSServerThroughItsCAFile(t *testing.T) {
	srv := s3test.StartDedicated(t, s3test.Options{NoKMS: true})
	require.True(t, srv.Secure(), "the harness's default server speaks TLS")
	bucket := srv.NewBucket(t)
	access, secret := srv.Credentials()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, srv.CACertPEM(), 0o600))

	block := func(extra ...string) *Config {
		args := append([]string{
			"-blocks-storage.s3.endpoint=" + srv.Endpoint(),
			"-blocks-storage.s3.bucket-name=" + bucket,
			"-blocks-storage.s3.region=" + srv.Region(),
			"-blocks-storage.s3.access-key-id=" + access,
			"-blocks-storage.s3.secret-access-key=" + secret,
		}, extra...)
		return newConfig(t, "", args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var requests atomic.Int64
	client, err := block("-blocks-storage.s3.http.tls-ca-path=" + caFile).NewClientWrapped(
		func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests.Add(1)
				return next.RoundTrip(r)
			})
		})
	require.NoError(t, err)
	exists, err := client.BucketExists(ctx, bucket)
	require.NoError(t, err, "with the CA file")
	require.True(t, exists, "bucket %s", bucket)
	require.Positive(t, requests.Load(), "requests went through the wrapped transport")

	client, err = block().NewClient()
	require.NoError(t, err)
	_, err = client.BucketExists(ctx, bucket)
	require.ErrorContains(t, err, "certificate", "without the CA file the server is not trusted")

	client, err = block("-blocks-storage.s3.http.insecure-skip-verify").NewClient()
	require.NoError(t, err)
	_, err = client.BucketExists(ctx, bucket)
	require.NoError(t, err, "insecure-skip-verify accepts the certificate")

	client, err = block("-blocks-storage.s3.endpoint=http://"+srv.Endpoint(),
		"-blocks-storage.s3.http.tls-ca-path="+caFile).NewClient()
	require.NoError(t, err)
	_, err = client.BucketExists(ctx, bucket)
	require.Error(t, err, "an http:// endpoint speaks plain HTTP, which a TLS server refuses")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
