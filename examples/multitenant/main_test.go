package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse/internal/s3test"
)

// serverConfig writes a config file for the shared server: every component
// in its own bucket, blocks with SSE-S3 by default, and a runtime config
// that gives tenant team-a its own KMS key.
func serverConfig(t *testing.T, srv *s3test.Server, kmsKey string) string {
	t.Helper()
	dir := t.TempDir()
	access, secret := srv.Credentials()

	caFile := ""
	if pem := srv.CACertPEM(); pem != nil && srv.Secure() {
		caFile = filepath.Join(dir, "ca.crt")
		require.NoError(t, os.WriteFile(caFile, pem, 0o644))
	}
	runtime := filepath.Join(dir, "runtime.yaml")
	require.NoError(t, os.WriteFile(runtime, []byte(fmt.Sprintf(`overrides:
  team-a:
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: %s
`, kmsKey)), 0o644))

	var b strings.Builder
	for _, comp := range components {
		fmt.Fprintf(&b, `%s:
  s3:
    endpoint: %s
    bucket_name: %s
    region: %s
    access_key_id: %s
    secret_access_key: %q
    insecure: %t
    http: {tls_ca_path: %q}
    sse: {type: SSE-S3}
`, comp.yamlKey, srv.Endpoint(), srv.NewBucket(t), srv.Region(), access, secret,
			!srv.Secure(), caFile)
	}
	fmt.Fprintf(&b, "runtime_config: {file: %s, period: 0s}\n", runtime)
	return writeTemp(t, "config.yaml", b.String())
}

func TestPutAndStat(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 2)
	config := serverConfig(t, srv, keys[1])
	payload := writeTemp(t, "meta.json", `{"version":1}`)

	tests := []struct {
		name string
		args []string // after -config.file
		want string   // the line printed
	}{
		{
			name: "tenant with an override",
			args: []string{"put", "blocks", "team-a", "01HZX/meta.json", payload},
			want: "/team-a/01HZX/meta.json: 13 bytes, SSE-KMS key=arn:aws:kms:" + keys[1] + "\n",
		},
		{
			name: "the same object, stat",
			args: []string{"stat", "blocks", "team-a", "01HZX/meta.json"},
			want: "/team-a/01HZX/meta.json: 13 bytes, SSE-KMS key=arn:aws:kms:" + keys[1] + "\n",
		},
		{
			name: "tenant on the sse block",
			args: []string{"put", "ruler", "team-b", "rules/a.yaml", payload},
			want: "/team-b/rules/a.yaml: 13 bytes, SSE-S3\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			args := append([]string{"-config.file=" + config}, tc.args...)
			err := run(context.Background(), args, &stdout, &stderr)
			require.NoError(t, err, "args %q; log:\n%s", args, &stderr)
			require.True(t, strings.HasSuffix(stdout.String(), tc.want),
				"args %q: got %q, want it to end in %q", args, stdout.String(), tc.want)
		})
	}
}

func TestPrintConfigMasksTheSecret(t *testing.T) {
	file := writeTemp(t, "config.yaml", `
blocks_storage: {s3: {endpoint: s3.example.com, bucket_name: blocks, access_key_id: AKIA,
  secret_access_key: `+secretValue+`}}
ruler_storage: {s3: {endpoint: s3.example.com, bucket_name: ruler}}
alertmanager_storage: {s3: {endpoint: s3.example.com, bucket_name: alertmanager}}
`)
	var stdout, stderr strings.Builder
	err := run(context.Background(), []string{"-config.file=" + file, "-print-config"},
		&stdout, &stderr)
	require.NoError(t, err)
	require.NotContains(t, stdout.String()+stderr.String(), secretValue)
	require.Contains(t, stdout.String(), "secret_access_key: '********'")
	require.Contains(t, stdout.String(), "bucket_name: alertmanager")
}

func TestCommandLineErrors(t *testing.T) {
	valid := writeTemp(t, "config.yaml", `
blocks_storage: {s3: {endpoint: s3.example.com, bucket_name: blocks}}
ruler_storage: {s3: {endpoint: s3.example.com, bucket_name: ruler}}
alertmanager_storage: {s3: {endpoint: s3.example.com, bucket_name: alertmanager}}
`)
	tests := []struct {
		name string
		args []string
		want string // part of the error
	}{
		{"no arguments", nil, "nothing to do"},
		{"no command", []string{"-config.file=" + valid}, "no command"},
		{"unknown command", []string{"-config.file=" + valid, "get"}, `unknown command "get"`},
		{"too few arguments", []string{"-config.file=" + valid, "put", "blocks", "a"},
			"put takes 4 arguments (COMPONENT TENANT OBJECT FILE), got 2"},
		{"invalid config", []string{"-config.file=" + valid, "-ruler-storage.s3.bucket-name=",
			"stat", "ruler", "a", "b"}, "ruler_storage.s3.bucket_name"},
		{"demo with a config file", []string{"-demo", "-config.file=" + valid},
			"-demo writes its own configuration"},
		{"demo with one endpoint of three", []string{"-demo",
			"-blocks-storage.s3.endpoint=s3.example.com"},
			"set -ruler-storage.s3.endpoint and -alertmanager-storage.s3.endpoint too"},
		{"demo without keys", []string{"-demo", "-demo.kms-keys=a,b",
			"-blocks-storage.s3.endpoint=h", "-ruler-storage.s3.endpoint=h",
			"-alertmanager-storage.s3.endpoint=h"}, "needs three KMS key ids"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t, false)
			var stdout, stderr strings.Builder
			err := run(context.Background(), tc.args, &stdout, &stderr)
			require.ErrorContains(t, err, tc.want, "args %q", tc.args)
		})
	}
}
