package main

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
)

// checkJSONOf runs check with -output json and decodes what it printed.
func checkJSONOf(t *testing.T, args ...string) (checkJSON, result) {
	t.Helper()
	r := runCmd(t, append(append([]string{"check"}, args...), "-output", "json")...)
	var out checkJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "check printed no JSON:\n%s\n%s",
		r.stdout, r.stderr)
	return out, r
}

func keyMD5(key []byte) string {
	sum := md5.Sum(key)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestCheckValidConfigPrintsDefaultAndEveryOverride(t *testing.T) {
	dir := t.TempDir()
	keyB, keyBytesB := writeKeyFile(t, dir, "keys/b", true)
	oldB, oldBytesB := writeKeyFile(t, dir, "keys/b.old", false)
	cfg := writeFile(t, dir, "cortex.yaml", `
target: all
blocks_storage:
  backend: s3
  s3:
    endpoint: s3.eu-west-1.amazonaws.com
    bucket_name: blocks
    list_objects_version: v2
    sse:
      type: SSE-KMS
      kms_key_id: alias/blocks
      kms_encryption_context:
        component: blocks
ruler_storage:
  s3:
    sse:
      type: SSE-S3
`)
	base := writeFile(t, dir, "runtime.yaml", `
overrides:
  tenant-a:
    ingestion_rate: 50000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: alias/tenant-a
    s3_sse_kms_encryption_context: '{"tenant":"a"}'
  tenant-b:
    s3_sse_type: SSE-C
    s3_sse_customer_key_file: `+keyB+`
  tenant-c:
    max_series: 10
`)
	// A later file wins for the keys it sets, as dskit merges them.
	later := writeFile(t, dir, "runtime-later.yaml", `
overrides:
  tenant-b:
    s3_sse_customer_previous_key_files: [`+oldB+`]
  tenant-d:
    s3_sse_type: SSE-S3
`)

	got, r := checkJSONOf(t, "-config.file", filepath.Join(dir, "cortex.yaml"),
		"-runtime-config.file", base+","+later)
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	requireNoSecret(t, r, keyBytesB, oldBytesB)

	want := checkJSON{
		Valid: true,
		Default: encryptionJSON{Valid: true, Type: s3sse.TypeSSEKMS, KMSKeyID: "alias/blocks",
			KMSEncryptionContext: map[string]string{"component": "blocks"},
			Sources:              []string{"sse block (" + cfg + " and flags)"}},
		Tenants: []encryptionJSON{
			{Tenant: "tenant-a", Valid: true, Type: s3sse.TypeSSEKMS, KMSKeyID: "alias/tenant-a",
				KMSEncryptionContext: map[string]string{"tenant": "a"}, Sources: []string{base}},
			{Tenant: "tenant-b", Valid: true, Type: s3sse.TypeSSEC, CustomerKeyFile: keyB,
				CustomerKeyMD5: keyMD5(keyBytesB), PreviousKeyFiles: []string{oldB},
				Sources: []string{base, later}},
			{Tenant: "tenant-d", Valid: true, Type: s3sse.TypeSSES3, Sources: []string{later}},
		},
		Warnings: []string{},
		Problems: []problemJSON{},
	}
	require.Equal(t, want, got)

	// The text output says the same in a table.
	r = runCmd(t, "check", "-config.file", cfg, "-runtime-config.file", base+","+later)
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 5, "header, default and three tenants:\n%s", r.stdout)
	require.Regexp(t, `^\(default\)\s+SSE-KMS\s+alias/blocks\s+\{"component":"blocks"\}`, lines[1])
	require.Regexp(t, `^tenant-b\s+SSE-C\s+-\s+-\s+`+regexp.QuoteMeta(keyB+" (md5 "+
		keyMD5(keyBytesB)+"); previous: "+oldB), lines[3])
}

func TestCheckFlagsBeatTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cortex.yaml", `
blocks_storage:
  s3:
    sse:
      type: SSE-KMS
      kms_key_id: alias/from-file
`)
	got, r := checkJSONOf(t, "-config.file", cfg, "-blocks-storage.s3.sse.kms-key-id", "alias/flag")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, "alias/flag", got.Default.KMSKeyID, "the flag given must win over the file")
	require.Equal(t, s3sse.TypeSSEKMS, got.Default.Type, "the file's type must stay")
}

func TestCheckReadsEveryConfigLayout(t *testing.T) {
	tests := []struct {
		name string
		// component is the -component flag; empty leaves the default.
		component string
		// file is the config file's text.
		file string
		// wantType is the type of the effective sse block.
		wantType s3sse.SSEType
	}{
		{"cortex file, default component", "", "blocks_storage:\n  s3:\n    sse:\n      type: SSE-S3\n" +
			"ruler_storage:\n  s3:\n    sse:\n      type: DSSE-KMS\n", s3sse.TypeSSES3},
		{"cortex file, ruler", "ruler-storage", "blocks_storage:\n  s3:\n    sse:\n      type: SSE-S3\n" +
			"ruler_storage:\n  s3:\n    sse:\n      type: DSSE-KMS\n", s3sse.TypeDSSEKMS},
		{"cortex file without the component's section", "alertmanager-storage",
			"blocks_storage:\n  s3:\n    sse:\n      type: SSE-S3\n", s3sse.TypeNone},
		{"storage block", "", "s3:\n  endpoint: x:9000\n  sse:\n    type: SSE-KMS\n", s3sse.TypeSSEKMS},
		{"s3 block", "", "endpoint: x:9000\nsse:\n  type: SSE-S3\n", s3sse.TypeSSES3},
		{"bare sse block", "", "type: SSE-KMS\nkms_key_id: k\n", s3sse.TypeSSEKMS},
		{"empty file", "", "", s3sse.TypeNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "config.yaml", tt.file)
			args := []string{"-config.file", cfg}
			if tt.component != "" {
				args = append(args, "-component", tt.component)
			}
			got, r := checkJSONOf(t, args...)
			require.Equal(t, exitOK, r.code, "file:\n%s\nstderr:\n%s", tt.file, r.stderr)
			require.Equal(t, tt.wantType, got.Default.Type, "file:\n%s", tt.file)
		})
	}
}

func TestCheckExpandsEnvironmentReferences(t *testing.T) {
	t.Setenv("S3SSE_TEST_KMS_KEY", "alias/from-env")
	cfg := writeFile(t, t.TempDir(), "cortex.yaml", `
blocks_storage:
  s3:
    sse:
      type: ${S3SSE_TEST_SSE_TYPE:SSE-KMS}
      kms_key_id: ${S3SSE_TEST_KMS_KEY}
`)
	got, r := checkJSONOf(t, "-config.file", cfg, "-config.expand-env")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, s3sse.TypeSSEKMS, got.Default.Type, "the default of ${VAR:default}")
	require.Equal(t, "alias/from-env", got.Default.KMSKeyID)
}

func TestCheckListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	short := writeFile(t, dir, "keys/short", "too short")
	missing := filepath.Join(dir, "keys/missing")
	_, goodKey := writeKeyFile(t, dir, "keys/good", true)
	good := filepath.Join(dir, "keys/good")
	cfg := writeFile(t, dir, "cortex.yaml", `
blocks_storage:
  s3:
    sse:
      type: SSE-KMS
      kms_keyid: alias/typo
      kms_encryption_context: '{"aws:service":"s3"}'
`)
	first := writeFile(t, dir, "first.yaml", `
overrides:
  tenant-a:
    ingestion_rate: 50000
    s3_sse_type: SSE-KSM
    s3_sse_kms_encryption_context: '{"tenant": 7}'
  tenant-b:
    s3_sse_type: SSE-C
    s3_sse_customer_key_file: `+short+`
    s3_sse_customer_previous_key_files: [`+missing+`, `+good+`]
  tenant-ok:
    s3_sse_type: SSE-S3
`)
	second := writeFile(t, dir, "second.yaml", `
overrides:
  tenant-c:
    s3_sse_type: SSE-S3
    s3_sse_kms_keyid: alias/c
  tenant-d:
    s3_sse_kms_encryption_context: [a, b]
  tenant-e:
    s3_sse_type: SSE-C
  tenant-f:
    s3_sse_kms_key_id: alias/f
`)

	got, r := checkJSONOf(t, "-config.file", cfg, "-runtime-config.file", first+","+second)
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.False(t, got.Valid)
	requireNoSecret(t, r, goodKey)

	// problem is the part of a problem this test pins down.
	type problem struct{ file, tenant, key, value string }
	var problems []problem
	for _, p := range got.Problems {
		require.NotEmpty(t, p.Rule, "problem %+v says no rule", p)
		problems = append(problems, problem{p.File, p.Tenant, p.Key, p.Value})
	}
	require.Equal(t, []problem{
		{cfg, "", "sse.kms_keyid", "alias/typo"},
		{"", "", "sse.kms_encryption_context", `{"aws:service":"s3"}`},
		{first, "tenant-a", "s3_sse_type", "SSE-KSM"},
		{first, "tenant-a", "s3_sse_kms_encryption_context", `{"tenant": 7}`},
		{first, "tenant-b", "s3_sse_customer_key_file", short},
		{first, "tenant-b", "s3_sse_customer_previous_key_files", missing},
		{second, "tenant-c", "s3_sse_kms_keyid", "alias/c"},
		{second, "tenant-e", "s3_sse_customer_key_file", ""},
		{second, "tenant-d", "s3_sse_kms_encryption_context", "[a, b]"},
	}, problems, "every problem, the sse block's first, then by tenant")

	valid := map[string]bool{}
	for _, e := range got.Tenants {
		valid[e.Tenant] = e.Valid
	}
	require.Equal(t, map[string]bool{"tenant-a": false, "tenant-b": false, "tenant-c": false,
		"tenant-e": false, "tenant-ok": true}, valid)
	require.False(t, got.Default.Valid)

	// The text output lists the same problems, one a line, on stderr.
	r = runCmd(t, "check", "-config.file", cfg, "-runtime-config.file", first+","+second)
	require.Equal(t, exitNonCompliant, r.code)
	require.Equal(t, len(problems), strings.Count(r.stderr, "problem: "), "stderr:\n%s", r.stderr)
	require.Contains(t, r.stderr, fmt.Sprintf("%d problems found", len(problems)))
	require.Contains(t, r.stderr, `file `+first+`: tenant "tenant-a": s3_sse_type "SSE-KSM": `+
		`unknown SSE type; valid: SSE-S3, SSE-KMS, DSSE-KMS, SSE-C`)
	require.Contains(t, r.stderr, `warning: tenant "tenant-f": `+second+
		` sets s3_sse_kms_key_id but not s3_sse_type`)
}

func TestCheckUnreadableRuntimeConfigIsAProblem(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "runtime.yaml")
	got, r := checkJSONOf(t, "-runtime-config.file", missing)
	require.Equal(t, exitNonCompliant, r.code)
	require.Len(t, got.Problems, 1)
	require.Contains(t, got.Problems[0].Message, missing)
}

func TestCheckRefusesWhatAHostWouldRefuse(t *testing.T) {
	// A key written twice for one tenant: the tool's own pass would take
	// the last, the library refuses the file. check must side with the
	// library, so that it never passes a file a host would not load.
	rt := writeFile(t, t.TempDir(), "runtime.yaml", `
overrides:
  tenant-a:
    s3_sse_type: SSE-S3
    s3_sse_type: SSE-KMS
`)
	got, r := checkJSONOf(t, "-runtime-config.file", rt)
	require.Equal(t, exitNonCompliant, r.code, "stdout:\n%s", r.stdout)
	require.Len(t, got.Problems, 1)
	require.Equal(t, "tenant-a", got.Problems[0].Tenant)
	require.Equal(t, "s3_sse_type", got.Problems[0].Key)
	require.Contains(t, got.Problems[0].Rule, "already set")

	// audit and reencrypt refuse to start on it.
	r = runCmd(t, "audit", "-runtime-config.file", rt, "-blocks-storage.s3.endpoint",
		"127.0.0.1:1", "-blocks-storage.s3.bucket-name", "blocks")
	require.Equal(t, exitUsage, r.code, "stderr:\n%s", r.stderr)
	require.Contains(t, r.stderr, "the configuration has 1 problem; nothing was sent to S3")
}
