package main

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
)

// writeTemp writes a file in the test's temporary directory.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestEveryComponentRegistersItsFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs)

	var got []string
	fs.VisitAll(func(f *flag.Flag) { got = append(got, f.Name) })

	// The same flags under every prefix: Cortex's names, and the library's
	// sse flags.
	perComponent := []string{
		"backend",
		"s3.endpoint", "s3.bucket-name", "s3.region", "s3.access-key-id",
		"s3.secret-access-key", "s3.insecure", "s3.signature-version", "s3.bucket-lookup-type",
		"s3.http.idle-conn-timeout", "s3.http.response-header-timeout",
		"s3.http.insecure-skip-verify", "s3.tls-handshake-timeout", "s3.http.tls-ca-path",
		"s3.sse.type", "s3.sse.kms-key-id", "s3.sse.kms-encryption-context",
		"s3.sse.customer-key-file", "s3.sse.customer-previous-key-files",
	}
	var want []string
	for _, prefix := range []string{"blocks-storage.", "ruler-storage.", "alertmanager-storage."} {
		for _, name := range perComponent {
			want = append(want, prefix+name)
		}
	}
	want = append(want, "runtime-config.file", "runtime-config.reload-period")
	sort.Strings(want)
	require.Equal(t, want, got)
}

func TestConfigFileAndFlags(t *testing.T) {
	file := writeTemp(t, "config.yaml", `
blocks_storage:
  backend: s3
  s3:
    endpoint: s3.example.com
    bucket_name: blocks
    access_key_id: AKIAEXAMPLE
    secret_access_key: from-file
    http:
      tls_ca_path: /etc/ssl/private-ca.pem
      idle_conn_timeout: 30s
    sse:
      type: SSE-KMS
      kms_key_id: alias/blocks
      kms_encryption_context:
        component: blocks
ruler_storage:
  s3:
    endpoint: s3.example.com
    bucket_name: ruler
    sse:
      type: SSE-S3
alertmanager_storage:
  s3:
    endpoint: s3.example.com
    bucket_name: alertmanager
runtime_config:
  file: /etc/cortex/runtime.yaml
  period: 5s
`)
	cfg, _, _, set, err := parseArgs([]string{
		"-config.file=" + file,
		"-ruler-storage.s3.sse.type=SSE-KMS",
		"-alertmanager-storage.s3.insecure",
	}, &strings.Builder{})
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())

	b := cfg.BlocksStorage.S3
	require.Equal(t, "s3.example.com", b.Endpoint)
	require.Equal(t, "AKIAEXAMPLE", b.AccessKeyID)
	require.Equal(t, "from-file", b.SecretAccessKey.Reveal())
	require.Equal(t, "/etc/ssl/private-ca.pem", b.HTTP.TLSCAPath)
	require.Equal(t, 30*time.Second, b.HTTP.IdleConnTimeout, "set by the file")
	require.Equal(t, 2*time.Minute, b.HTTP.ResponseHeaderTimeout, "the flag's default, kept")
	require.Equal(t, s3sse.TypeSSEKMS, b.SSE.Type)
	require.Equal(t, s3sse.EncryptionContext(`{"component":"blocks"}`), b.SSE.KMSEncryptionContext)

	require.Equal(t, s3sse.TypeSSEKMS, cfg.RulerStorage.S3.SSE.Type, "the flag beats the file")
	require.True(t, cfg.AlertmanagerStorage.S3.Insecure)
	require.Equal(t, s3sse.TypeNone, cfg.AlertmanagerStorage.S3.SSE.Type)
	require.Equal(t, []string{"/etc/cortex/runtime.yaml"}, cfg.RuntimeConfig.Files)
	require.Equal(t, 5*time.Second, cfg.RuntimeConfig.ReloadPeriod)
	require.True(t, set["ruler-storage.s3.sse.type"])
}

func TestConfigErrorsNameKeyAndFlag(t *testing.T) {
	const valid = `
blocks_storage: {s3: {endpoint: s3.example.com, bucket_name: blocks}}
ruler_storage: {s3: {endpoint: s3.example.com, bucket_name: ruler}}
alertmanager_storage: {s3: {endpoint: s3.example.com, bucket_name: alertmanager}}
`
	tests := []struct {
		name string
		args []string // flags over the valid file
		want []string // parts of the error
	}{
		{
			name: "missing endpoint",
			args: []string{"-ruler-storage.s3.endpoint="},
			want: []string{"ruler_storage.s3.endpoint (flag -ruler-storage.s3.endpoint) is empty"},
		},
		{
			name: "endpoint with a path",
			args: []string{"-blocks-storage.s3.endpoint=https://s3.example.com/blocks"},
			want: []string{"blocks_storage.s3.endpoint (flag -blocks-storage.s3.endpoint)",
				`"https://s3.example.com/blocks"`, "without a path",
				"blocks_storage.s3.bucket_name (flag -blocks-storage.s3.bucket-name)"},
		},
		{
			name: "missing bucket",
			args: []string{"-alertmanager-storage.s3.bucket-name="},
			want: []string{"alertmanager_storage.s3.bucket_name " +
				"(flag -alertmanager-storage.s3.bucket-name) is empty"},
		},
		{
			name: "access key without secret",
			args: []string{"-blocks-storage.s3.access-key-id=AKIAEXAMPLE"},
			want: []string{"blocks_storage.s3.access_key_id (flag -blocks-storage.s3.access-key-id) is set",
				"secret_access_key (flag -blocks-storage.s3.secret-access-key) is not"},
		},
		{
			name: "unknown SSE type",
			args: []string{"-ruler-storage.s3.sse.type=SSE-KSM"},
			want: []string{"ruler_storage.s3:", "sse.type (flag -ruler-storage.s3.sse.type)",
				`"SSE-KSM"`, "SSE-S3, SSE-KMS"},
		},
		{
			name: "other backend",
			args: []string{"-blocks-storage.backend=gcs"},
			want: []string{`blocks_storage.backend (flag -blocks-storage.backend) "gcs"`},
		},
	}
	file := writeTemp(t, "config.yaml", valid)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-config.file=" + file}, tc.args...)
			cfg, _, _, _, err := parseArgs(args, &strings.Builder{})
			require.NoError(t, err, "args %q", args)
			err = cfg.Validate()
			require.Error(t, err, "args %q", args)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w, "args %q", args)
			}
		})
	}
}

func TestConfigFileRefusesMisspeltKey(t *testing.T) {
	file := writeTemp(t, "config.yaml", "blocks_storage:\n  s3:\n    bucketname: blocks\n")
	_, _, _, _, err := parseArgs([]string{"-config.file=" + file}, &strings.Builder{})
	require.ErrorContains(t, err, "field bucketname not found")
	require.ErrorContains(t, err, file)
}
