package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// result is what one run of the command returned and printed.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command line as main does.
func runCmd(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runApp runs the command line with a's hooks; a's writers are set here.
func runApp(t *testing.T, ctx context.Context, a *app, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a.stdout, a.stderr = &stdout, &stderr
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// writeFile writes text to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// writeKeyFile writes a new random SSE-C key to name under dir, as raw
// bytes or as base64, and returns its path and the key.
func writeKeyFile(t *testing.T, dir, name string, asBase64 bool) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	text := string(key)
	if asBase64 {
		text = base64.StdEncoding.EncodeToString(key) + "\n"
	}
	return writeFile(t, dir, name, text), key
}

// requireNoSecret fails if any output holds one of the secrets, raw or in
// base64.
func requireNoSecret(t *testing.T, r result, secrets ...[]byte) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{string(s), base64.StdEncoding.EncodeToString(s)} {
			require.NotContains(t, r.stdout, form, "stdout holds a secret")
			require.NotContains(t, r.stderr, form, "stderr holds a secret")
		}
	}
}

func TestUsageErrorsExitWithCode2(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// wantErr is a part of what stderr must say.
		wantErr string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"rotate"}, `unknown command "rotate"`},
		{"unknown flag", []string{"check", "-no-such-flag"}, "-no-such-flag"},
		{"positional argument", []string{"audit", "tenant-a"}, `unexpected argument "tenant-a"`},
		{"unknown component", []string{"check", "-component", "chunks-storage"},
			`-component "chunks-storage": unknown component; valid: blocks-storage`},
		{"bad output", []string{"check", "-output", "yaml"}, `-output "yaml"`},
		{"bad concurrency", []string{"audit", "-concurrency", "0"}, "-concurrency 0"},
		{"bad progress", []string{"audit", "-progress", "dots"}, `-progress "dots"`},
		{"bad tenant", []string{"audit", "-tenant", "a/b"}, `invalid tenant ID "a/b"`},
		{"missing config file", []string{"check", "-config.file", "/nonexistent/cortex.yaml"},
			"/nonexistent/cortex.yaml"},
		{"no endpoint", []string{"audit", "-blocks-storage.s3.bucket-name", "b"},
			"-blocks-storage.s3.endpoint"},
		{"no bucket", []string{"reencrypt", "-blocks-storage.s3.endpoint", "127.0.0.1:1"},
			"-blocks-storage.s3.bucket-name"},
		{"bad lookup type", []string{"audit", "-blocks-storage.s3.endpoint", "127.0.0.1:1",
			"-blocks-storage.s3.bucket-name", "b", "-blocks-storage.s3.bucket-lookup-type", "dns"},
			`-blocks-storage.s3.bucket-lookup-type) "dns": valid: auto, virtual-hosted, path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, tt.args...)
			require.Equal(t, exitUsage, r.code, "args %q: stderr:\n%s", tt.args, r.stderr)
			require.Contains(t, r.stderr, tt.wantErr, "args %q", tt.args)
		})
	}
}

func TestHelpPrintsFlagsAndExitsZero(t *testing.T) {
	for _, cmd := range []string{"check", "audit", "reencrypt"} {
		r := runCmd(t, cmd, "-help")
		require.Equal(t, exitOK, r.code, "%s -help: stderr:\n%s", cmd, r.stderr)
		require.Contains(t, r.stdout, "Usage: s3sse "+cmd)
		for _, flag := range []string{"-config.file", "-runtime-config.file",
			"-blocks-storage.s3.endpoint", "-ruler-storage.s3.sse.type",
			"-alertmanager-storage.s3.http.tls-ca-path", "-blocks-storage.s3.secret-access-key"} {
			require.Contains(t, r.stdout, flag, "%s -help lists no %s", cmd, flag)
		}
	}
	r := runCmd(t, "help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stdout, "Exit codes:")
}

func TestSecretAccessKeyIsNeverPrinted(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cortex.yaml", `
blocks_storage:
  s3:
    endpoint: 127.0.0.1:1
    bucket_name: blocks
    access_key_id: AKIDEXAMPLE
    secret_access_key: `+secret+`
    sse:
      type: SSE-KMZ
`)
	for _, args := range [][]string{
		{"check", "-config.file", cfg},
		{"check", "-config.file", cfg, "-output", "json"},
		{"audit", "-config.file", cfg},
		{"reencrypt", "-config.file", cfg, "-apply", "-blocks-storage.s3.sse.type", "SSE-S3",
			"-blocks-storage.s3.region", "us-east-1"},
		{"audit", "-blocks-storage.s3.secret-access-key", secret, "-help"},
	} {
		r := runCmd(t, args...)
		require.NotContains(t, r.stdout+r.stderr, secret, "args %q printed the secret", args)
	}
}

// TestConfigFileCAPathIsRead checks that the tool reads the CA key of the
// s3 block the wiring example writes, by naming a file that is not there.
func TestConfigFileCAPathIsRead(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-ca.pem")
	cfg := writeFile(t, dir, "cortex.yaml", `
blocks_storage:
  s3:
    endpoint: 127.0.0.1:1
    bucket_name: blocks
    http:
      tls_ca_path: `+missing+`
`)
	r := runCmd(t, "audit", "-config.file", cfg)
	require.Equal(t, exitUsage, r.code, "stderr:\n%s", r.stderr)
	require.Contains(t, r.stderr, "blocks_storage.s3.http.tls_ca_path "+
		"(flag -blocks-storage.s3.http.tls-ca-path)", "stderr names the key")
	require.Contains(t, r.stderr, missing, "stderr names the file")
}
