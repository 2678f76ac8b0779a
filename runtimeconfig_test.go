package s3sse

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// logBuffer is a go-kit logger that keeps what it logs, in logfmt, for a
// test to read. It is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Log(keyvals ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return log.NewLogfmtLogger(&l.buf).Log(keyvals...)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the logged lines that contain every one of parts.
func (l *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		match := line != ""
		for _, p := range parts {
			match = match && strings.Contains(line, p)
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}

// testClock drives a RuntimeConfig's reload loop and time by hand.
type testClock struct {
	mu      sync.Mutex
	now     time.Time
	ticks   chan time.Time
	ticked  chan struct{}
	stopped chan struct{}
}

func newTestClock() *testClock {
	return &testClock{
		now:     time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		ticks:   make(chan time.Time),
		ticked:  make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *testClock) runtimeClock() runtimeClock {
	return runtimeClock{
		now: c.Now,
		newTicker: func(time.Duration) (<-chan time.Time, func()) {
			return c.ticks, func() { close(c.stopped) }
		},
		afterTick: func() { c.ticked <- struct{}{} },
	}
}

// tick makes the loop reload once and waits until it has.
func (c *testClock) tick(t *testing.T) {
	t.Helper()
	select {
	case c.ticks <- c.Now():
	case <-time.After(10 * time.Second):
		t.Fatal("the reload loop did not take the tick")
	}
	select {
	case <-c.ticked:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload loop did not finish the reload")
	}
}

// runtimeFile writes a runtime config file in a fresh directory and returns
// its path; rewrite changes it the way a config map update does.
func runtimeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runtime.yaml")
	rewrite(t, path, content)
	return path
}

// rewrite replaces a file by a rename, as Kubernetes swaps mounted files,
// so that a reader never sees it half-written.
func rewrite(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// keyFileOf writes key, base64, to a file in a fresh directory.
func keyFileOf(t *testing.T, key []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenant.key")
	rewrite(t, path, base64.StdEncoding.EncodeToString(key)+"\n")
	return path
}

// newTestRuntimeConfig loads files with a hand-driven clock and no reload
// goroutine unless period is set; it is stopped when the test ends.
func newTestRuntimeConfig(t *testing.T, logger log.Logger, files ...string) *RuntimeConfig {
	t.Helper()
	rc, err := newRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: files}, nil,
		logger, runtimeClock{})
	require.NoError(t, err, "load %v", files)
	t.Cleanup(rc.Stop)
	return rc
}

// requireEncryption resolves the tenant and checks its type and key id.
func requireEncryption(t *testing.T, r *Resolver, tenant string, typ SSEType, keyID string) *Encryption {
	t.Helper()
	e, err := r.Encryption(tenant)
	require.NoError(t, err, "tenant %q", tenant)
	require.Equal(t, typ, e.Type(), "tenant %q: type", tenant)
	require.Equal(t, keyID, e.KMSKeyID(), "tenant %q: KMS key id", tenant)
	return e
}

const twoTenants = `overrides:
  tenant-a:
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: key-a
  tenant-b:
    s3_sse_type: SSE-S3
`

func TestRuntimeConfigLoadsCortexRuntimeConfig(t *testing.T) {
	logs := &logBuffer{}
	rc := newTestRuntimeConfig(t, logs, filepath.Join("testdata", "runtime", "cortex-runtime.yaml"))
	r, err := NewResolver(Config{Type: TypeSSES3}, rc, nil)
	require.NoError(t, err)

	tests := []struct {
		tenant  string            // tenant resolved
		typ     SSEType           // type it must get
		keyID   string            // KMS key id it must get
		context map[string]string // KMS context it must get
	}{
		{"team-payments", TypeSSEKMS, "arn:aws:kms:eu-west-1:111122223333:key/0f4e7c52-payments",
			map[string]string{"tenant": "team-payments", "data": "metrics"}},
		// Everything merged from team-payments but its own key id.
		{"team-payments-dr", TypeSSEKMS, "arn:aws:kms:eu-central-1:111122223333:key/7a1d-payments-dr",
			map[string]string{"tenant": "team-payments", "data": "metrics"}},
		{"team-identity", TypeSSEKMS, "alias/team-identity",
			map[string]string{"tenant": "team-identity", "classification": "restricted"}},
		{"team-search", TypeSSES3, "", nil},
		// No override, or one without a type: the sse block.
		{"team-frontend", TypeSSES3, "", nil},
		{"team-legacy", TypeSSES3, "", nil},
		{"tenant with spaces", TypeSSES3, "", nil},
		{"free-tier-0001", TypeSSES3, "", nil},
		{"not-in-the-file", TypeSSES3, "", nil},
	}
	for _, tt := range tests {
		e := requireEncryption(t, r, tt.tenant, tt.typ, tt.keyID)
		require.Equal(t, tt.context, e.Context(), "tenant %q: context", tt.tenant)
	}

	require.Equal(t, 4, rc.Status().Tenants, "tenants with s3_sse_type")
	require.Equal(t, "SSE-KMS", rc.S3SSEType("team-payments-dr"))
	require.Equal(t, "alias/legacy", rc.S3SSEKMSKeyID("team-legacy"),
		"the provider reports values as written, even those that do not apply")
	require.Len(t, logs.lines("level=warn", "team-legacy", "s3_sse_kms_key_id",
		"does not apply"), 1, "logs:\n%s", logs)
}

func TestRuntimeConfigReadsPlainFiles(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "runtime", "plain-overrides.yaml"))
	require.NoError(t, err)
	_, plain := scanPlainYAML(data)
	require.True(t, plain, "the file is in the plain reader's subset; it must not need yaml.v3")

	rc := newTestRuntimeConfig(t, nil, filepath.Join("testdata", "runtime", "plain-overrides.yaml"))
	r, err := NewResolver(Config{}, rc, nil)
	require.NoError(t, err)
	e := requireEncryption(t, r, "tenant-1", TypeSSEKMS, "arn:aws:kms:us-east-1:111122223333:key/tenant-1")
	require.Equal(t, map[string]string{"tenant": "tenant-1"}, e.Context())
	requireEncryption(t, r, "tenant-2", TypeDSSEKMS, "alias/tenant-2")
	requireEncryption(t, r, "tenant-3", TypeSSES3, "")
	requireEncryption(t, r, "tenant-4", TypeNone, "")
}

func TestRuntimeConfigPicksUpChangedFile(t *testing.T) {
	file := runtimeFile(t, twoTenants)
	clock := newTestClock()
	rc, err := newRuntimeConfig(context.Background(),
		RuntimeConfigConfig{Files: []string{file}, ReloadPeriod: time.Minute}, nil, nil,
		clock.runtimeClock())
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	r, err := NewResolver(Config{}, rc, nil)
	require.NoError(t, err)
	requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-a")
	before := rc.Status()

	rewrite(t, file, strings.Replace(twoTenants, "key-a", "key-a2", 1))
	clock.advance(time.Minute)
	clock.tick(t)

	requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-a2")
	requireEncryption(t, r, "tenant-b", TypeSSES3, "")
	after := rc.Status()
	require.NotEqual(t, before.Hash, after.Hash, "a changed file changes the hash")
	require.Equal(t, clock.Now(), after.LoadedAt)
}

func TestRuntimeConfigUnchangedFileRebuildsNothing(t *testing.T) {
	file := runtimeFile(t, twoTenants)
	rc := newTestRuntimeConfig(t, nil, file)
	snap := rc.current.Load()

	rewrite(t, file, twoTenants) // same content, new file
	require.NoError(t, rc.Reload())
	require.Same(t, snap, rc.current.Load(), "unchanged content must not replace the config")

	// A change to one tenant rebuilds that tenant only.
	rewrite(t, file, strings.Replace(twoTenants, "key-a", "key-a2", 1))
	require.NoError(t, rc.Reload())
	next := rc.current.Load()
	require.NotSame(t, snap, next)
	require.NotSame(t, snap.tenants["tenant-a"].enc, next.tenants["tenant-a"].enc)
	require.Same(t, snap.tenants["tenant-b"].enc, next.tenants["tenant-b"].enc,
		"tenant-b did not change; its value must be kept")
}

func TestRuntimeConfigKeepsLastGoodConfig(t *testing.T) {
	keyFile := keyFileOf(t, newKey(t))
	tests := []struct {
		name    string // what is broken
		content string // the file's new content; "" deletes the file
		want    error  // sentinel the error must match, nil for none
		parts   []string
	}{{
		name:    "not YAML",
		content: "overrides:\n  tenant-a: [\n",
		parts:   []string{"runtime.yaml", "line"},
	}, {
		name:    "unknown s3_sse key",
		content: twoTenants + "    s3_sse_kms_keyid: key-b\n",
		want:    ErrUnknownOverrideKey,
		parts:   []string{`tenant "tenant-b"`, "s3_sse_kms_keyid", `"key-b"`, "line 7", "s3_sse_kms_key_id"},
	}, {
		name:    "unknown SSE type",
		content: strings.Replace(twoTenants, "SSE-S3", "SSE_S3", 1),
		want:    ErrUnknownSSEType,
		parts:   []string{`tenant "tenant-b"`, "s3_sse_type", `"SSE_S3"`, "SSE-KMS"},
	}, {
		name: "context not JSON",
		content: twoTenants + "  tenant-c:\n    s3_sse_type: SSE-KMS\n" +
			"    s3_sse_kms_encryption_context: '{\"a\":1}'\n",
		want:  ErrInvalidEncryptionContext,
		parts: []string{`tenant "tenant-c"`, "s3_sse_kms_encryption_context", `{\"a\":1}`, "string"},
	}, {
		name: "SSE-C key file missing",
		content: twoTenants + "  tenant-c:\n    s3_sse_type: SSE-C\n" +
			"    s3_sse_customer_key_file: " + keyFile + ".missing\n",
		want:  ErrInvalidCustomerKey,
		parts: []string{`tenant "tenant-c"`, "s3_sse_customer_key_file", keyFile + ".missing"},
	}, {
		name:    "tenant listed twice",
		content: twoTenants + "  tenant-a:\n    s3_sse_type: SSE-S3\n",
		want:    ErrInvalidConfig,
		parts:   []string{`tenant "tenant-a"`, "line 7", "already listed at line 2"},
	}, {
		name:    "overrides not a mapping",
		content: "overrides: [tenant-a]\n",
		parts:   []string{"runtime.yaml", "overrides must be a mapping"},
	}, {
		name:  "file deleted",
		parts: []string{"runtime.yaml", "no such file"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := runtimeFile(t, twoTenants)
			logs := &logBuffer{}
			clock := newTestClock()
			reg := prometheus.NewPedanticRegistry()
			rc, err := newRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{file}},
				reg, logs, clock.runtimeClock())
			require.NoError(t, err)
			r, err := NewResolver(Config{}, rc, nil)
			require.NoError(t, err)
			good := rc.Status()

			if tt.content == "" {
				require.NoError(t, os.Remove(file))
			} else {
				rewrite(t, file, tt.content)
			}
			clock.advance(time.Minute)
			err = rc.Reload()

			require.Error(t, err, "input:\n%s", tt.content)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want, "input:\n%s", tt.content)
			}
			for _, p := range tt.parts {
				require.Contains(t, err.Error(), p, "input:\n%s", tt.content)
			}
			requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-a")
			requireEncryption(t, r, "tenant-b", TypeSSES3, "")

			st := rc.Status()
			require.False(t, st.LastReloadSuccessful)
			require.Equal(t, err, st.Err)
			require.Equal(t, clock.Now(), st.LastReload)
			require.Equal(t, good.LastSuccess, st.LastSuccess, "a failed reload is no success")
			require.Equal(t, good.Hash, st.Hash, "the config in force did not change")
			require.Equal(t, good.LoadedAt, st.LoadedAt)
			requireMetrics(t, reg, good.Hash, 0, 2, good.LastSuccess)

			logged := logs.lines("level=error", "last good config stays in force")
			require.NotEmpty(t, logged, "logs:\n%s", logs)
			line := strings.Join(logged, "\n")
			require.Contains(t, line, "file="+file, "every problem names its file")
			if tt.want != nil {
				require.Regexp(t, `tenant=\S`, line)
				require.Regexp(t, `key=s3_sse|key=overrides`, line)
			}
		})
	}
}

func TestRuntimeConfigFirstLoadFails(t *testing.T) {
	tests := []struct {
		name  string // what is wrong
		files []string
		want  string // part of the error
	}{
		{"missing file", []string{filepath.Join(t.TempDir(), "absent.yaml")}, "absent.yaml"},
		{"invalid tenant", []string{runtimeFile(t, "overrides:\n  a:\n    s3_sse_type: AES\n")},
			`tenant "a": s3_sse_type "AES"`},
		{"empty file name", []string{""}, "runtime_config.file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			rc, err := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: tt.files},
				nil, logs)
			require.Error(t, err, "files %v", tt.files)
			require.Nil(t, rc)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestRuntimeConfigMergesFiles(t *testing.T) {
	base := runtimeFile(t, `overrides:
  tenant-a:
    ingestion_rate: 1000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: key-a
    s3_sse_kms_encryption_context: '{"tenant":"a"}'
  tenant-b:
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: key-b
  tenant-c:
    s3_sse_type: SSE-S3
`)
	limits := runtimeFile(t, `overrides:
  tenant-a:
    ingestion_rate: 2000
  tenant-d:
    ingestion_rate: 2000
`)
	sse := runtimeFile(t, `overrides:
  tenant-b:
    s3_sse_kms_key_id: key-b2
  tenant-c:
    s3_sse_type: ""
  tenant-d:
    s3_sse_type: DSSE-KMS
    s3_sse_kms_key_id: key-d
`)
	rc := newTestRuntimeConfig(t, nil, base, limits, sse)
	r, err := NewResolver(Config{Type: TypeSSEKMS, KMSKeyID: "default"}, rc, nil)
	require.NoError(t, err)

	// A later file that sets only other limits leaves the encryption alone.
	e := requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-a")
	require.Equal(t, map[string]string{"tenant": "a"}, e.Context())
	// A later file wins for each key it sets, and only for those.
	requireEncryption(t, r, "tenant-b", TypeSSEKMS, "key-b2")
	// An empty type in a later file turns the override off.
	requireEncryption(t, r, "tenant-c", TypeSSEKMS, "default")
	requireEncryption(t, r, "tenant-d", TypeDSSEKMS, "key-d")

	// An error names the file that set the bad key.
	rewrite(t, sse, "overrides:\n  tenant-a:\n    s3_sse_kms_encryption_context: '[]'\n")
	err = rc.Reload()
	require.ErrorIs(t, err, ErrInvalidEncryptionContext)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, sse, ce.File, "the context comes from the third file: %v", err)
}

func TestRuntimeConfigRefusesMisspelledKeys(t *testing.T) {
	tests := []struct {
		key  string // the misspelled key
		line string // extra content that sends the file to yaml.v3, or ""
	}{
		{"s3_sse_kms_keyid", ""},
		{"s3_sse_kms_keyid", "    drop_labels: [a]\n"},
		{"S3_SSE_TYPE", ""},
		{"s3-sse-type", ""},
		{"s3sse_type", ""},
		{"s3_sse_kms_encryption_contex", "    drop_labels: [a]\n"},
		{"s3_sse_customer_keyfile", ""},
		{"s3_sse", ""},
	}
	for _, tt := range tests {
		content := "overrides:\n  tenant-a:\n" + tt.line + "    s3_sse_type: SSE-KMS\n    " +
			tt.key + ": value\n"
		_, plain := scanPlainYAML([]byte(content))
		require.Equal(t, tt.line == "", plain, "input:\n%s", content)

		file := runtimeFile(t, content)
		_, err := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{file}},
			nil, nil)
		require.ErrorIs(t, err, ErrUnknownOverrideKey, "input:\n%s", content)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "input:\n%s", content)
		require.Equal(t, file, ce.File)
		require.Equal(t, "tenant-a", ce.Tenant)
		require.Equal(t, tt.key, ce.Key)
		require.Equal(t, "value", ce.Value)
		require.Contains(t, ce.Reason, "s3_sse_customer_previous_key_files",
			"the error lists the valid keys")
	}
}

func TestRuntimeConfigStatus(t *testing.T) {
	file := runtimeFile(t, twoTenants)
	clock := newTestClock()
	reg := prometheus.NewPedanticRegistry()
	rc, err := newRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{file}},
		reg, nil, clock.runtimeClock())
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	loaded := clock.Now()

	st := rc.Status()
	require.True(t, st.LastReloadSuccessful)
	require.NoError(t, st.Err)
	require.Equal(t, loaded, st.LastReload)
	require.Equal(t, loaded, st.LastSuccess)
	require.Equal(t, loaded, st.LoadedAt)
	require.Equal(t, 2, st.Tenants)
	require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{64}$`), st.Hash)
	requireMetrics(t, reg, st.Hash, 1, 2, loaded)

	// Nothing changed: a success, but the config in force is the same.
	clock.advance(time.Minute)
	require.NoError(t, rc.Reload())
	st = rc.Status()
	require.True(t, st.LastReloadSuccessful)
	require.Equal(t, clock.Now(), st.LastSuccess)
	require.Equal(t, loaded, st.LoadedAt)
	requireMetrics(t, reg, st.Hash, 1, 2, clock.Now())
	hash := st.Hash

	// Broken: the status says why, the hash stays.
	clock.advance(time.Minute)
	rewrite(t, file, "overrides: {")
	require.Error(t, rc.Reload())
	st = rc.Status()
	require.False(t, st.LastReloadSuccessful)
	require.Error(t, st.Err)
	require.Equal(t, clock.Now(), st.LastReload)
	require.Equal(t, clock.Now().Add(-time.Minute), st.LastSuccess)
	require.Equal(t, hash, st.Hash)
	requireMetrics(t, reg, hash, 0, 2, clock.Now().Add(-time.Minute))

	// Fixed with one tenant more.
	clock.advance(time.Minute)
	rewrite(t, file, twoTenants+"  tenant-c:\n    s3_sse_type: SSE-S3\n")
	require.NoError(t, rc.Reload())
	st = rc.Status()
	require.True(t, st.LastReloadSuccessful)
	require.Equal(t, 3, st.Tenants)
	require.Equal(t, clock.Now(), st.LoadedAt)
	require.NotEqual(t, hash, st.Hash)
	requireMetrics(t, reg, st.Hash, 1, 3, clock.Now())
}

// requireMetrics checks the RuntimeConfig's gauges as a scrape shows them.
func requireMetrics(t *testing.T, reg *prometheus.Registry, hash string, successful float64,
	tenants int, lastSuccess time.Time) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"s3sse_runtime_config_last_reload_successful":                successful,
		"s3sse_runtime_config_last_reload_success_timestamp_seconds": float64(lastSuccess.Unix()),
		"s3sse_runtime_config_hash{sha256=" + hash + "}":             1,
		"s3sse_runtime_config_tenants_with_overrides":                float64(tenants),
	}
	require.Equal(t, want, got)
}

func TestRuntimeConfigNilRegistererAndNoFiles(t *testing.T) {
	rc, err := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	require.Nil(t, rc.metrics)
	require.True(t, rc.Status().LastReloadSuccessful)
	require.Zero(t, rc.Status().Tenants)
	require.Empty(t, rc.S3SSEType("any"))

	r, err := NewResolver(Config{Type: TypeSSES3}, rc, nil)
	require.NoError(t, err)
	requireEncryption(t, r, "any", TypeSSES3, "")
}

func TestRuntimeConfigMetricsRegisterOnce(t *testing.T) {
	file := runtimeFile(t, twoTenants)
	reg := prometheus.NewRegistry()
	cfg := RuntimeConfigConfig{Files: []string{file}}
	rc, err := NewRuntimeConfig(context.Background(), cfg, reg, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	_, err = NewRuntimeConfig(context.Background(), cfg, reg, nil)
	require.ErrorContains(t, err, "register runtime config metrics")

	// Each under its own label, two RuntimeConfigs share a registry.
	reg = prometheus.NewRegistry()
	for _, component := range []string{"ingester", "ruler"} {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"component": component}, reg)
		rc, err := NewRuntimeConfig(context.Background(), cfg, wrapped, nil)
		require.NoError(t, err, "component %s", component)
		t.Cleanup(rc.Stop)
	}
}

func TestRuntimeConfigStopEndsTheGoroutine(t *testing.T) {
	for _, how := range []string{"context", "Stop"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rc, err := NewRuntimeConfig(ctx, RuntimeConfigConfig{Files: []string{runtimeFile(t, twoTenants)},
				ReloadPeriod: time.Millisecond}, nil, nil)
			require.NoError(t, err)
			require.Eventually(t, reloadLoopRunning(rc), 10*time.Second, time.Millisecond,
				"the loop runs while the RuntimeConfig does")

			if how == "context" {
				cancel()
			} else {
				rc.Stop()
			}
			select {
			case <-rc.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the reload goroutine did not end after %s", how)
			}
			running := reloadLoopRunning(rc)
			require.Eventually(t, func() bool { return !running() }, 10*time.Second,
				time.Millisecond, "a goroutine still runs the reload loop")
			rc.Stop() // again, and after the context: no effect, no hang

			r, err := NewResolver(Config{}, rc, nil)
			require.NoError(t, err)
			requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-a")
		})
	}
}

// reloadLoopRunning reports whether a goroutine runs rc's reload loop: a
// traceback prints the receiver, rc's address, as the first argument.
func reloadLoopRunning(rc *RuntimeConfig) func() bool {
	return func() bool {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		return bytes.Contains(buf[:n], []byte(fmt.Sprintf("(*RuntimeConfig).loop(%p", rc)))
	}
}

func TestRuntimeConfigStopsItsTicker(t *testing.T) {
	clock := newTestClock()
	rc, err := newRuntimeConfig(context.Background(),
		RuntimeConfigConfig{Files: []string{runtimeFile(t, twoTenants)}, ReloadPeriod: time.Second},
		nil, nil, clock.runtimeClock())
	require.NoError(t, err)
	rc.Stop()
	select {
	case <-clock.stopped:
	default:
		t.Fatal("Stop left the ticker running")
	}
}

func TestRuntimeConfigRotatesCustomerKeys(t *testing.T) {
	oldKey, newKeyBytes := newKey(t), newKey(t)
	keyFile := keyFileOf(t, oldKey)
	file := runtimeFile(t, "overrides:\n  tenant-a:\n    s3_sse_type: SSE-C\n"+
		"    s3_sse_customer_key_file: "+keyFile+"\n")
	logs := &logBuffer{}
	rc := newTestRuntimeConfig(t, logs, file)
	r, err := NewResolver(Config{}, rc, nil)
	require.NoError(t, err)
	e := requireEncryption(t, r, "tenant-a", TypeSSEC, "")
	require.Equal(t, md5b64(oldKey), e.CustomerKeyMD5())
	hash := rc.Status().Hash

	// The secret mount is updated; the runtime config file is not.
	rewrite(t, keyFile, base64.StdEncoding.EncodeToString(newKeyBytes))
	require.NoError(t, rc.Reload())
	e = requireEncryption(t, r, "tenant-a", TypeSSEC, "")
	require.Equal(t, md5b64(newKeyBytes), e.CustomerKeyMD5(), "the rotated key is in force")
	require.NotEqual(t, hash, rc.Status().Hash, "the hash covers the key files")

	// Unchanged: the same value stays.
	require.NoError(t, rc.Reload())
	same, err := r.Encryption("tenant-a")
	require.NoError(t, err)
	require.Same(t, e, same)

	// A broken key file is refused; the key in force stays.
	rewrite(t, keyFile, "too short")
	err = rc.Reload()
	require.ErrorIs(t, err, ErrInvalidCustomerKey)
	require.Contains(t, err.Error(), keyFile)
	e = requireEncryption(t, r, "tenant-a", TypeSSEC, "")
	require.Equal(t, md5b64(newKeyBytes), e.CustomerKeyMD5())

	for _, key := range [][]byte{oldKey, newKeyBytes} {
		requireNoSecret(t, logs.String(), key)
		requireNoSecret(t, err.Error(), key)
	}
}

func TestResolverDefaultBlockFollowsRuntimeConfigReloads(t *testing.T) {
	oldKey, next := newKey(t), newKey(t)
	keyFile := keyFileOf(t, oldKey)
	logs := &logBuffer{}
	rc := newTestRuntimeConfig(t, logs, runtimeFile(t, twoTenants))
	r, err := NewResolver(Config{Type: TypeSSEC, CustomerKeyFile: keyFile}, rc, logs)
	require.NoError(t, err)
	require.Equal(t, md5b64(oldKey), r.Default().CustomerKeyMD5())

	rewrite(t, keyFile, base64.StdEncoding.EncodeToString(next))
	require.Equal(t, md5b64(oldKey), r.Default().CustomerKeyMD5(), "no reload yet")
	require.NoError(t, rc.Reload())
	require.Equal(t, md5b64(next), r.Default().CustomerKeyMD5(), "the reload reads the block's key again")
	e := requireEncryption(t, r, "tenant-without-override", TypeSSEC, "")
	require.Equal(t, md5b64(next), e.CustomerKeyMD5())

	// A key file that breaks keeps the last key, and says so once.
	require.NoError(t, os.Remove(keyFile))
	require.NoError(t, rc.Reload(), "the block's key is not part of the runtime config's status")
	require.NoError(t, rc.Reload())
	require.Equal(t, md5b64(next), r.Default().CustomerKeyMD5())
	require.Len(t, logs.lines("level=error", "previous key stays in force", keyFile), 1,
		"logs:\n%s", logs)
	requireNoSecret(t, logs.String(), next)
}

func TestRuntimeConfigWarnsOncePerValue(t *testing.T) {
	content := twoTenants + "    s3_sse_kms_key_id: unused-by-sse-s3\n"
	file := runtimeFile(t, content)
	logs := &logBuffer{}
	rc := newTestRuntimeConfig(t, logs, file)
	rewrite(t, file, content+"  tenant-c:\n    s3_sse_type: SSE-S3\n")
	require.NoError(t, rc.Reload())
	require.NoError(t, rc.Reload())

	require.Len(t, logs.lines("level=warn", `tenant \"tenant-b\"`, "s3_sse_kms_key_id"), 1,
		"a warning that still holds is not repeated; logs:\n%s", logs)

	// Gone, then back: logged again.
	rewrite(t, file, twoTenants)
	require.NoError(t, rc.Reload())
	rewrite(t, file, content)
	require.NoError(t, rc.Reload())
	require.Len(t, logs.lines("level=warn", `tenant \"tenant-b\"`, "s3_sse_kms_key_id"), 2,
		"logs:\n%s", logs)
}

func TestResolverRacesReloads(t *testing.T) {
	versions := []string{twoTenants, strings.NewReplacer("key-a", "key-a2", "SSE-S3", "SSE-KMS").
		Replace(twoTenants)}
	file := runtimeFile(t, versions[0])
	rc := newTestRuntimeConfig(t, nil, file)
	r, err := NewResolver(Config{Type: TypeSSES3}, rc, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a, err := r.Encryption("tenant-a")
				if err != nil {
					errs <- err
					return
				}
				if id := a.KMSKeyID(); id != "key-a" && id != "key-a2" {
					errs <- errors.New("tenant-a resolved to key id " + id)
					return
				}
				if _, err := r.Resolve("tenant-b"); err != nil {
					errs <- err
					return
				}
				_ = rc.S3SSEKMSKeyID("tenant-a")
				_ = rc.Status()
			}
		}()
	}
	for i := 0; i < 200; i++ {
		rewrite(t, file, versions[i%2])
		require.NoError(t, rc.Reload())
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRuntimeConfigFlags(t *testing.T) {
	var c RuntimeConfigConfig
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlagsWithPrefix("runtime-config.", fs)

	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	require.ElementsMatch(t, []string{"runtime-config.file", "runtime-config.reload-period"}, names)
	require.Equal(t, "10s", fs.Lookup("runtime-config.reload-period").DefValue)
	require.Equal(t, "", fs.Lookup("runtime-config.file").DefValue)
	require.Equal(t, DefaultReloadPeriod, c.ReloadPeriod)

	require.NoError(t, fs.Parse([]string{"-runtime-config.file=a.yaml, b.yaml",
		"-runtime-config.reload-period=1m"}))
	require.Equal(t, []string{"a.yaml", "b.yaml"}, c.Files)
	require.Equal(t, time.Minute, c.ReloadPeriod)

	c.ReloadPeriod = -time.Second
	require.ErrorContains(t, c.Validate(), "-runtime-config.reload-period")
}

func TestRuntimeConfigYAML(t *testing.T) {
	tests := []struct {
		name  string   // what the YAML shows
		yaml  string   // the runtime_config block
		files []string // files wanted
		per   time.Duration
		err   string // part of the error, "" for none
	}{
		{"Cortex's string", "file: a.yaml,b.yaml\nperiod: 30s\n", []string{"a.yaml", "b.yaml"}, 30 * time.Second, ""},
		{"a list", "file: [a.yaml, b.yaml]\n", []string{"a.yaml", "b.yaml"}, DefaultReloadPeriod, ""},
		{"period only keeps the flag's files", "period: 1m\n", []string{"flag.yaml"}, time.Minute, ""},
		{"empty", "{}\n", []string{"flag.yaml"}, DefaultReloadPeriod, ""},
		{"unknown key", "files: a.yaml\n", nil, 0, `unknown key "files"`},
		{"bad period", "period: often\n", nil, 0, "often"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c RuntimeConfigConfig
			c.RegisterFlagsWithPrefix("runtime-config.", flag.NewFlagSet("test", flag.PanicOnError))
			c.Files = []string{"flag.yaml"}
			err := yaml.Unmarshal([]byte(tt.yaml), &c)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err, "input:\n%s", tt.yaml)
				return
			}
			require.NoError(t, err, "input:\n%s", tt.yaml)
			require.Equal(t, tt.files, c.Files, "input:\n%s", tt.yaml)
			require.Equal(t, tt.per, c.ReloadPeriod, "input:\n%s", tt.yaml)
		})
	}

	out, err := yaml.Marshal(RuntimeConfigConfig{Files: []string{"a.yaml", "b.yaml"}, ReloadPeriod: 30 * time.Second})
	require.NoError(t, err)
	require.Equal(t, "file: a.yaml,b.yaml\nperiod: 30s\n", string(out))
}

// plainYAMLCases are inputs for the plain reader: those it reads must
// read the same through yaml.v3, and those it leaves must go there.
var plainYAMLCases = []struct {
	name  string // what the input shows
	input string
	plain bool // whether the plain reader reads it
}{
	{"empty", "", true},
	{"comments only", "# nothing\n\n   # here\n", true},
	{"no overrides", "multi_kv_config:\n  primary: consul\n", true},
	{"null overrides", "overrides: ~\nother: 1\n", true},
	{"tenants", twoTenants, true},
	{"quoted keys and values", "overrides:\n  \"tenant a\":\n    's3_sse_type': \"SSE-S3\"\n" +
		"    s3_sse_kms_key_id: 'it''s'\n", true},
	{"comments after values", "overrides: # tenants\n  a: # a\n    s3_sse_type: SSE-S3 # x\n" +
		"    s3_sse_kms_key_id: 'k' # y\n    x: a#b\n", true},
	{"null tenant and null key", "overrides:\n  a:\n  b: ~\n  c:\n    s3_sse_type:\n" +
		"    s3_sse_kms_key_id: null\n", true},
	{"deeper unrelated limits", "overrides:\n  a:\n    limits:\n      s3_sse_type: x\n" +
		"      deep:\n        k: v\n    s3_sse_type: SSE-S3\nz: 1\n", true},
	{"ARN and negative numbers", "overrides:\n  a:\n    s3_sse_kms_key_id: arn:aws:kms:x:1:key/a\n" +
		"    max: -1\n", true},
	{"flow characters inside a plain value", "overrides:\n  a:\n    x: b,c[d]{e}\n", true},
	{"duplicate tenants are left to the loader", "overrides:\n  a:\n  a:\n", true},

	{"list", "overrides:\n  a:\n    drop: [x]\n", false},
	{"block list", "overrides:\n  a:\n    drop:\n    - x\n", false},
	{"anchor", "overrides:\n  a: &x\n    k: v\n", false},
	{"merge key", "overrides:\n  a:\n    <<: *x\n", false},
	{"context as a mapping", "overrides:\n  a:\n    s3_sse_kms_encryption_context:\n      t: a\n", false},
	{"value on a continuation line", "overrides:\n  a:\n    k: one\n      two\n", false},
	{"colon in a plain value", "a: b: c\n", false},
	{"odd indentation", "overrides:\n    a:\n  b:\n", false},
	{"tab", "overrides:\n\ta: x\n", false},
	{"CRLF", "overrides:\r\n  a: x\r\n", false},
	{"document marker", "---\noverrides:\n", false},
	{"escape", "overrides:\n  a:\n    s3_sse_kms_key_id: \"a\\tb\"\n", false},
	{"scalar tenant", "overrides:\n  a: 5\n", false},
	{"scalar overrides", "overrides: 5\n", false},
	{"indented top level", "  overrides:\n", false},
	{"non-ASCII", "overrides:\n  é:\n", false},
	{"text after a quoted value", "a: 'x' y\n", false},
	{"overrides twice", "overrides:\noverrides:\n", false},
	{"key over YAML's 1024 characters", "overrides:\n  " + strings.Repeat("k", 1030) + ":\n", false},
}

func TestScanPlainYAMLAgreesWithYAMLv3(t *testing.T) {
	for _, tt := range plainYAMLCases {
		t.Run(tt.name, func(t *testing.T) {
			got, plain := scanPlainYAML([]byte(tt.input))
			require.Equal(t, tt.plain, plain, "input:\n%s", tt.input)
			if !plain {
				return
			}
			want, err := scanYAML([]byte(tt.input))
			require.NoError(t, err, "input:\n%s", tt.input)
			require.Equal(t, want, got, "input:\n%s", tt.input)
		})
	}
}

// FuzzScanPlainYAML checks that whatever the plain reader reads, yaml.v3
// reads too, and finds the same tenants, keys, values and lines.
func FuzzScanPlainYAML(f *testing.F) {
	for _, tt := range plainYAMLCases {
		f.Add([]byte(tt.input))
	}
	for _, name := range []string{"cortex-runtime.yaml", "plain-overrides.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "runtime", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, plain := scanPlainYAML(data)
		if !plain {
			return
		}
		want, err := scanYAML(data)
		require.NoError(t, err, "the plain reader read what yaml.v3 refuses; input:\n%q", data)
		require.Equal(t, want, got, "input:\n%q", data)
	})
}
