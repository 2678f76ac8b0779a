package s3sse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// These tests break things on purpose: the server dies mid-upload, the
// server has no KMS, the runtime config file is damaged while it reloads.
// Each checks that the library fails closed and leaves nothing behind.

// syncBuffer is a log destination that goroutines may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// faultBucket is a Bucket on a dedicated server, built from a client with
// few retries so that requests to a dead server give up in a second or two
// rather than the ten retries minio-go makes by default. Its log is kept.
func faultBucket(t *testing.T, srv *s3test.Server, defaults s3sse.Config,
	p s3sse.Provider) (*testBucket, *syncBuffer) {
	t.Helper()
	name := srv.NewBucket(t)
	opts := srv.ClientOptions()
	opts.MaxRetries = 2
	client, err := minio.New(srv.Endpoint(), opts)
	require.NoError(t, err)

	r, err := s3sse.NewResolver(defaults, p, nil)
	require.NoError(t, err)
	logs := &syncBuffer{}
	b, err := s3sse.NewBucket(client, name, r, &s3sse.BucketOptions{
		PartSize:     s3sse.MinPartSize,
		TenantPrefix: true,
		Logger:       log.NewLogfmtLogger(logs),
	})
	require.NoError(t, err)
	return &testBucket{Bucket: b, srv: srv, client: client, name: name}, logs
}

// killAfter is a reader that kills the server once n bytes were read,
// that is while the upload waits for its next part.
type killAfter struct {
	r      io.Reader
	n      int
	kill   func() error
	killed bool
	err    error // of the kill
}

func (k *killAfter) Read(p []byte) (int, error) {
	if k.n <= 0 && !k.killed {
		k.killed = true
		k.err = k.kill()
	}
	if k.n > 0 && len(p) > k.n {
		p = p[:k.n]
	}
	n, err := k.r.Read(p)
	k.n -= n
	return n, err
}

// incompleteUploads lists the unfinished multipart uploads of key.
func (tb *testBucket) incompleteUploads(t *testing.T, key string) []string {
	t.Helper()
	var ids []string
	for u := range tb.client.ListIncompleteUploads(context.Background(), tb.name, key, false) {
		require.NoError(t, u.Err)
		if u.Key == key {
			ids = append(ids, u.UploadID)
		}
	}
	return ids
}

func TestServerKilledDuringMultipartUpload(t *testing.T) {
	tests := []struct {
		name string
		// cleanUp is what clears the abort left pending: the host's call,
		// or the next upload of any tenant.
		cleanUp func(t *testing.T, tb *testBucket)
	}{
		{
			name: "AbortPending after the restart",
			cleanUp: func(t *testing.T, tb *testBucket) {
				require.Zero(t, tb.AbortPending(context.Background()),
					"aborts still pending once the server is back")
			},
		},
		{
			name: "the next upload",
			cleanUp: func(t *testing.T, tb *testBucket) {
				other := tb.tenant(t, "tenant-b")
				require.NoError(t, other.Upload(context.Background(), "after-restart",
					strings.NewReader("the same client, after the restart")))
				tb.requireStored(t, other, "after-restart", want{typ: s3sse.TypeSSES3})
				require.Zero(t, tb.AbortPending(context.Background()),
					"the upload did not clear the pending abort")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := s3test.StartDedicated(t, s3test.Options{})
			tb, logs := faultBucket(t, srv, s3sse.Config{Type: s3sse.TypeSSES3}, nil)
			a := tb.tenant(t, "tenant-a")
			ctx := context.Background()
			require.NoError(t, a.Upload(ctx, "before", strings.NewReader("x")),
				"the server works before the kill")

			// Three parts; the server dies once the first is sent.
			body := &killAfter{
				r:    bytes.NewReader(make([]byte, 3*s3sse.MinPartSize)),
				n:    s3sse.MinPartSize,
				kill: srv.Kill,
			}
			err := a.Upload(ctx, "interrupted", body)
			require.NoError(t, body.err, "kill the server")
			require.True(t, body.killed, "the reader never reached the second part")
			require.Error(t, err, "an upload to a dead server succeeded")
			require.Contains(t, err.Error(), `tenant "tenant-a"`, "the error names the tenant")
			require.Contains(t, err.Error(), "tenant-a/interrupted", "the error names the key")
			require.Contains(t, logs.String(), "abort of failed multipart upload failed",
				"the failed abort is logged")

			require.NoError(t, srv.Restart())
			key, _ := a.Key("interrupted")
			require.NotEmpty(t, tb.incompleteUploads(t, key),
				"the interrupted upload should still be on the server, waiting for its abort")
			ok, err := a.Exists(ctx, "interrupted")
			require.NoError(t, err)
			require.False(t, ok, "a half-sent object is visible after the restart")

			tc.cleanUp(t, tb)
			require.Empty(t, tb.incompleteUploads(t, key), "the interrupted upload was not aborted")
			tb.requireNoIncompleteUploads(t)

			// The client keeps working: no new client, no new bucket.
			require.NoError(t, a.Upload(ctx, "interrupted",
				bytes.NewReader(make([]byte, 2*s3sse.MinPartSize+1))))
			tb.requireStored(t, a, "interrupted", want{typ: s3sse.TypeSSES3})
			tb.requireStored(t, a, "before", want{typ: s3sse.TypeSSES3})
		})
	}
}

func TestServerWithoutKMSRefusesSSEClearly(t *testing.T) {
	srv := s3test.StartDedicated(t, s3test.Options{NoKMS: true})
	tb, _ := faultBucket(t, srv, s3sse.Config{}, newOverrides(map[string]override{
		"tenant-s3":  {typ: "SSE-S3"},
		"tenant-kms": {typ: "SSE-KMS", keyID: "tenant-key", context: `{"tenant":"kms"}`},
	}))
	ctx := context.Background()

	for _, tenant := range []string{"tenant-s3", "tenant-kms"} {
		for _, up := range []struct {
			name string
			body func() io.Reader
		}{
			{"single-put", func() io.Reader { return strings.NewReader("must not be stored") }},
			{"multipart", func() io.Reader { return bytes.NewReader(make([]byte, 2*s3sse.MinPartSize+1)) }},
		} {
			tenantBucket := tb.tenant(t, tenant)
			err := tenantBucket.Upload(ctx, up.name, up.body())
			require.Error(t, err, "%s %s: SSE upload to a server without a KMS", tenant, up.name)

			var resp minio.ErrorResponse
			require.True(t, errors.As(err, &resp), "%s %s: not a server's answer: %v", tenant, up.name, err)
			t.Logf("%s %s: %v (HTTP %d, code %s)", tenant, up.name, err, resp.StatusCode, resp.Code)
			require.Equal(t, http.StatusNotImplemented, resp.StatusCode, "%s %s: %v", tenant, up.name, err)
			require.Equal(t, "NotImplemented", resp.Code, "%s %s: %v", tenant, up.name, err)
			msg := err.Error()
			require.Contains(t, msg, fmt.Sprintf("tenant %q", tenant), "the error names the tenant")
			require.Contains(t, msg, "KMS", "the error should say a KMS is missing: %s", msg)
			require.True(t, s3sse.IsKMSNotConfigured(err), "IsKMSNotConfigured(%v) = false", err)
			require.False(t, s3sse.IsKMSKeyNotFound(err), "no KMS is not a missing key: %v", err)

			ok, err := tenantBucket.Exists(ctx, up.name)
			require.NoError(t, err)
			require.False(t, ok, "%s %s: stored although the upload failed", tenant, up.name)
		}
	}
	tb.requireNoIncompleteUploads(t)

	// The server is otherwise fine: a tenant without SSE is written.
	plain := tb.tenant(t, "tenant-plain")
	require.NoError(t, plain.Upload(ctx, "obj", strings.NewReader("x")))
	tb.requireStored(t, plain, "obj", want{typ: s3sse.TypeNone})
}

// goodRuntimeConfig is a runtime config putting tenant-a under key with a
// context, between limits of other tenants that s3sse ignores.
func goodRuntimeConfig(key string) string {
	return fmt.Sprintf(`# runtime config
overrides:
  tenant-z:
    ingestion_rate: 10000
  tenant-a:
    ingestion_rate: 10000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: %s
    s3_sse_kms_encryption_context: '{"tenant":"a"}'
  tenant-b:
    s3_sse_type: SSE-S3
`, key)
}

// writeInPlace rewrites the file the way a non-atomic writer does: the
// old content is gone before the new one is complete.
func writeInPlace(t *testing.T, file, content string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestRuntimeConfigDamagedDuringReloadKeepsLastGoodConfig(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	good := goodRuntimeConfig(keys[1])
	wantA := want{s3sse.TypeSSEKMS, keys[1], map[string]string{"tenant": "a"}}

	tests := []struct {
		name   string
		damage func(t *testing.T, file string)
		// reason is what the rejected reload's error must say.
		reason string
	}{
		{
			name:   "deleted",
			damage: func(t *testing.T, file string) { require.NoError(t, os.Remove(file)) },
			reason: "no such file",
		},
		{
			name:   "truncated to nothing",
			damage: func(t *testing.T, file string) { require.NoError(t, os.Truncate(file, 0)) },
			reason: "empty",
		},
		{
			name: "truncated inside the context",
			damage: func(t *testing.T, file string) {
				cut := strings.Index(good, `"tenant":"a"`) + 5
				require.NoError(t, os.Truncate(file, int64(cut)))
			},
			reason: "line",
		},
		{
			name: "caught half-written in place, inside a key",
			damage: func(t *testing.T, file string) {
				next := goodRuntimeConfig(keys[2])
				writeInPlace(t, file, next[:strings.Index(next, "s3_sse_kms_key_id")+9])
			},
			reason: "line",
		},
		{
			name: "caught half-written in place, inside the type",
			damage: func(t *testing.T, file string) {
				next := goodRuntimeConfig(keys[2])
				writeInPlace(t, file, next[:strings.Index(next, "SSE-KMS")+4])
			},
			reason: "SSE-",
		},
		{
			name: "replaced by a directory",
			damage: func(t *testing.T, file string) {
				require.NoError(t, os.Remove(file))
				require.NoError(t, os.Mkdir(file, 0o700))
			},
			reason: "directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "runtime.yaml")
			require.NoError(t, os.WriteFile(file, []byte(good), 0o600))
			logs := &syncBuffer{}
			rc, err := s3sse.NewRuntimeConfig(context.Background(), s3sse.RuntimeConfigConfig{
				Files: []string{file},
			}, nil, log.NewLogfmtLogger(logs))
			require.NoError(t, err)
			t.Cleanup(rc.Stop)
			before := rc.Status()
			require.True(t, before.LastReloadSuccessful)

			tb := newTestBucket(t, srv, s3sse.Config{}, rc)
			a := tb.tenant(t, "tenant-a")
			ctx := context.Background()
			require.NoError(t, a.Upload(ctx, "before", strings.NewReader("x")))
			tb.requireStored(t, a, "before", wantA)

			tc.damage(t, file)
			err = rc.Reload()
			require.Error(t, err, "a reload of the damaged file was accepted")
			require.Contains(t, err.Error(), file, "the error names the file")
			require.Contains(t, err.Error(), tc.reason)

			status := rc.Status()
			require.False(t, status.LastReloadSuccessful, "status after a rejected reload")
			require.Equal(t, err, status.Err, "status error")
			require.Equal(t, before.Hash, status.Hash, "the config in force changed")
			require.Equal(t, before.LoadedAt, status.LoadedAt, "the config in force was reloaded")
			require.Equal(t, 2, status.Tenants, "tenants with an override in force")
			require.Contains(t, logs.String(), "last good config stays in force")
			require.Contains(t, logs.String(), "level=error")

			require.NoError(t, a.Upload(ctx, "after", strings.NewReader("x")))
			tb.requireStored(t, a, "after", wantA)
			b := tb.tenant(t, "tenant-b")
			require.NoError(t, b.Upload(ctx, "after", strings.NewReader("x")))
			tb.requireStored(t, b, "after", want{typ: s3sse.TypeSSES3})

			// Once the file is whole again, the reload takes it.
			_ = os.Remove(file)
			require.NoError(t, os.WriteFile(file, []byte(goodRuntimeConfig(keys[2])), 0o600))
			require.NoError(t, rc.Reload())
			require.True(t, rc.Status().LastReloadSuccessful)
			require.NoError(t, a.Upload(ctx, "repaired", strings.NewReader("x")))
			tb.requireStored(t, a, "repaired",
				want{s3sse.TypeSSEKMS, keys[2], map[string]string{"tenant": "a"}})
		})
	}
}

// loadTenant is one tenant of the load test: its override in each of the
// two versions of the runtime config file, and what each gives it.
type loadTenant struct {
	id string
	// overrides are the tenant's limits in versions 0 and 1; nil is no
	// override, so the sse block (no SSE) applies.
	overrides [2]map[string]any
	// encryptions are what the two versions resolve to.
	encryptions [2]*s3sse.Encryption
	// alwaysEncrypted is whether both versions encrypt the tenant.
	alwaysEncrypted bool
}

// loadUpload is one upload of the load test and the config epochs around it.
type loadUpload struct {
	tenant *loadTenant
	name   string
	// before and after are the flip epoch read before and after the
	// upload; both even and equal means no flip overlapped it.
	before, after int64
	err           error
}

// loadTenants builds n tenants in five groups: two KMS keys and contexts;
// SSE-S3 and a third KMS key; no SSE and SSE-S3; the same KMS key in both
// versions; and two SSE-C keys of the tenant's own (each version naming the
// other key as previous, so that both stay readable).
func loadTenants(t *testing.T, n int, keys []string, secure bool) []*loadTenant {
	t.Helper()
	dir := t.TempDir()
	keyFile := func(id string, version int) string {
		path := filepath.Join(dir, fmt.Sprintf("%s-%d.key", id, version))
		require.NoError(t, os.WriteFile(path, randomBytes(t, 32), 0o600))
		return path
	}
	kms := func(key, context string) map[string]any {
		m := map[string]any{"ingestion_rate": 1000, "s3_sse_type": "SSE-KMS", "s3_sse_kms_key_id": key}
		if context != "" {
			m["s3_sse_kms_encryption_context"] = context
		}
		return m
	}
	sseS3 := map[string]any{"ingestion_rate": 1000, "s3_sse_type": "SSE-S3"}

	tenants := make([]*loadTenant, n)
	for i := range tenants {
		lt := &loadTenant{id: fmt.Sprintf("load-%02d", i), alwaysEncrypted: true}
		switch group := i % 5; {
		case group == 0:
			lt.overrides[0] = kms(keys[1], fmt.Sprintf(`{"tenant":%q,"version":"a"}`, lt.id))
			lt.overrides[1] = kms(keys[2], fmt.Sprintf(`{"tenant":%q,"version":"b"}`, lt.id))
		case group == 1:
			lt.overrides[0] = sseS3
			lt.overrides[1] = kms(keys[3], "")
		case group == 2:
			lt.overrides[1] = sseS3
			lt.alwaysEncrypted = false
		case group == 3:
			lt.overrides[0] = kms(keys[1], fmt.Sprintf(`{"tenant":%q}`, lt.id))
			lt.overrides[1] = lt.overrides[0]
		case group == 4 && secure:
			k0, k1 := keyFile(lt.id, 0), keyFile(lt.id, 1)
			lt.overrides[0] = map[string]any{"s3_sse_type": "SSE-C", "s3_sse_customer_key_file": k0,
				"s3_sse_customer_previous_key_files": []string{k1}}
			lt.overrides[1] = map[string]any{"s3_sse_type": "SSE-C", "s3_sse_customer_key_file": k1,
				"s3_sse_customer_previous_key_files": []string{k0}}
		default: // SSE-C needs TLS
			lt.overrides[0] = sseS3
			lt.overrides[1] = kms(keys[2], fmt.Sprintf(`{"tenant":%q}`, lt.id))
		}
		for v, o := range lt.overrides {
			lt.encryptions[v] = encryptionOf(t, o)
		}
		tenants[i] = lt
	}
	return tenants
}

// encryptionOf is what an override's limits resolve to; nil limits give
// the load test's sse block, no SSE.
func encryptionOf(t *testing.T, limits map[string]any) *s3sse.Encryption {
	t.Helper()
	var c s3sse.Config
	if limits != nil {
		str := func(k string) string { s, _ := limits[k].(string); return s }
		c = s3sse.Config{
			Type:                 s3sse.SSEType(str("s3_sse_type")),
			KMSKeyID:             str("s3_sse_kms_key_id"),
			KMSEncryptionContext: s3sse.EncryptionContext(str("s3_sse_kms_encryption_context")),
			CustomerKeyFile:      str("s3_sse_customer_key_file"),
		}
		c.CustomerPreviousKeyFiles, _ = limits["s3_sse_customer_previous_key_files"].([]string)
	}
	e, err := c.Encryption()
	require.NoError(t, err, "limits %v", limits)
	return e
}

// writeLoadVersion writes version v of the runtime config by renaming a
// complete file over it, as a host should.
func writeLoadVersion(file string, tenants []*loadTenant, v int) error {
	overrides := map[string]any{"tenant-without-sse": map[string]any{"ingestion_rate": 5}}
	for _, lt := range tenants {
		if lt.overrides[v] != nil {
			overrides[lt.id] = lt.overrides[v]
		}
	}
	b, err := yaml.Marshal(map[string]any{"overrides": overrides, "multi_kv_config": nil})
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", file, v)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func TestLoadUploadsWhileTheRuntimeConfigFlips(t *testing.T) {
	const (
		numTenants = 20
		perTenant  = 100 // objects per tenant
		workers    = 8   // concurrent uploads; 2 cores serve MinIO, the KMS and the test
		flipEvery  = 3 * time.Millisecond
		// Every tenth flip waits longer, so that some uploads run wholly
		// under one version and can be held to exactly that version.
		holdEvery10th = 150 * time.Millisecond
	)
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 4)
	tenants := loadTenants(t, numTenants, keys, srv.Secure())

	file := filepath.Join(t.TempDir(), "runtime.yaml")
	require.NoError(t, writeLoadVersion(file, tenants, 0))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The reload loop races the explicit reloads below; between flips it
	// finds nothing changed.
	rc, err := s3sse.NewRuntimeConfig(ctx, s3sse.RuntimeConfigConfig{
		Files:        []string{file},
		ReloadPeriod: time.Millisecond,
	}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	tb := newTestBucket(t, srv, s3sse.Config{}, rc)

	// The flipper writes the other version and reloads. The epoch is odd
	// while a flip is under way and even while a version is settled in
	// force: version (epoch/2)%2.
	var (
		epoch    atomic.Int64
		flips    int
		flipErr  error
		stopFlip = make(chan struct{})
		flipDone = make(chan struct{})
	)
	go func() {
		defer close(flipDone)
		for v := 1; ; v = 1 - v {
			wait := flipEvery
			if flips%10 == 9 {
				wait = holdEvery10th
			}
			select {
			case <-stopFlip:
				return
			case <-time.After(wait):
			}
			epoch.Add(1)
			if err := writeLoadVersion(file, tenants, v); err != nil {
				flipErr = err
				return
			}
			if err := rc.Reload(); err != nil {
				flipErr = err
				return
			}
			epoch.Add(1)
			flips++
		}
	}()

	start := time.Now()
	jobs := make(chan *loadUpload)
	results := make(chan *loadUpload, numTenants*perTenant)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range jobs {
				tenant, err := tb.Tenant(u.tenant.id)
				if err == nil {
					u.before = epoch.Load()
					err = tenant.Upload(context.Background(), u.name,
						strings.NewReader(strings.Repeat(u.name+" of "+u.tenant.id+"\n", 8)))
					u.after = epoch.Load()
				}
				u.err = err
				results <- u
			}
		}()
	}
	for i := range perTenant {
		for _, lt := range tenants {
			jobs <- &loadUpload{tenant: lt, name: fmt.Sprintf("obj-%03d", i)}
		}
	}
	close(jobs)
	wg.Wait()
	close(results)
	close(stopFlip)
	<-flipDone
	uploadTime := time.Since(start)
	require.NoError(t, flipErr, "flip the runtime config")
	require.Greater(t, flips, 10, "the config hardly flipped during the uploads")

	var (
		objects, settled, duringFlip, plain int
		byVersion                           [2]int
		calls                               = tb.kmsCallsByObject()
	)
	for u := range results {
		require.NoError(t, u.err, "tenant %s object %s", u.tenant.id, u.name)
		objects++
		tenant := tb.tenant(t, u.tenant.id)
		attrs, err := tenant.Attributes(context.Background(), u.name)
		require.NoError(t, err, "tenant %s object %s", u.tenant.id, u.name)
		stored := attrs.Encryption

		var matches [2]bool
		for v, e := range u.tenant.encryptions {
			matches[v] = storedAs(stored, e)
		}
		require.True(t, matches[0] || matches[1],
			"tenant %s object %s: stored as %s; the tenant's versions were %s and %s",
			u.tenant.id, u.name, stored, u.tenant.encryptions[0], u.tenant.encryptions[1])
		if u.before == u.after && u.before%2 == 0 {
			v := int(u.before/2) % 2
			require.True(t, matches[v], "tenant %s object %s: stored as %s while version %d (%s) "+
				"was in force throughout", u.tenant.id, u.name, stored, v, u.tenant.encryptions[v])
			settled++
		} else {
			duringFlip++
		}
		if u.tenant.alwaysEncrypted {
			require.NotEqual(t, s3sse.TypeNone, stored.Type,
				"tenant %s object %s: unencrypted, but every version encrypts the tenant", u.tenant.id, u.name)
		}
		if stored.Type == s3sse.TypeNone {
			plain++
		}
		for v := range matches {
			if matches[v] && !matches[1-v] {
				byVersion[v]++
			}
		}
		tb.requireKMSCallsUnder(t, calls, tenant, u.name, stored)
	}
	tb.requireNoIncompleteUploads(t)

	require.Equal(t, numTenants*perTenant, objects)
	require.Positive(t, byVersion[0], "no object under version 0")
	require.Positive(t, byVersion[1], "no object under version 1")
	t.Logf("%d objects of %d tenants in %v with %d workers; the runtime config flipped %d times "+
		"(reload loop every %v as well)", objects, numTenants, uploadTime.Round(time.Millisecond),
		workers, flips, time.Millisecond)
	t.Logf("%d uploads ran while one version was in force and got it; %d overlapped a flip "+
		"and got one of the two", settled, duringFlip)
	t.Logf("objects only version 0 allows: %d; only version 1: %d; either: %d; unencrypted "+
		"(allowed for the tenants one version leaves plain): %d",
		byVersion[0], byVersion[1], objects-byVersion[0]-byVersion[1], plain)
}

// storedAs reports whether an object is stored exactly as e encrypts.
// Satisfies takes any encryption for a policy that sends no header, as the
// bucket's default may give one; the test's bucket has no default, so there
// the object must be unencrypted.
func storedAs(stored s3sse.StoredEncryption, e *s3sse.Encryption) bool {
	if e.Type() == s3sse.TypeNone {
		return stored.Type == s3sse.TypeNone
	}
	ok, _ := stored.Satisfies(e)
	return ok
}

// kmsCallsByObject indexes the KMS stand-in's calls by the object they
// were for, "<bucket>/<key>"; nil when the server has no stand-in. One
// snapshot serves a whole check, where KMS.ObjectCalls copies every call.
func (tb *testBucket) kmsCallsByObject() map[string][]s3test.KMSCall {
	if tb.srv.KMSMode() != s3test.KMSStandIn {
		return nil
	}
	idx := map[string][]s3test.KMSCall{}
	for _, c := range tb.srv.KMS().Calls() {
		if obj, ok := c.Context[tb.name]; ok {
			idx[obj] = append(idx[obj], c)
		}
	}
	return idx
}

// requireKMSCallsUnder checks, on the KMS stand-in, that every key
// operation MinIO made for a KMS object used the key the object reports.
func (tb *testBucket) requireKMSCallsUnder(t *testing.T, calls map[string][]s3test.KMSCall,
	tenant *s3sse.TenantBucket, name string, stored s3sse.StoredEncryption) {
	t.Helper()
	if calls == nil || stored.Type != s3sse.TypeSSEKMS {
		return
	}
	key, _ := tenant.Key(name)
	objCalls := calls[tb.name+"/"+key]
	require.NotEmpty(t, objCalls, "the KMS saw no call for %s", key)
	for _, c := range objCalls {
		require.True(t, strings.HasSuffix(stored.KMSKeyID, c.Key),
			"object %s reports key %s, but the KMS %s call was under %s", key, stored.KMSKeyID, c.Op, c.Key)
	}
}

// TestTenantCannotReachAnotherTenantsPrefix tries the paths a tenant could
// use to reach another's objects. Names are checked by the library (Key);
// Iter's directory is not, and MinIO refuses ".." in a prefix while S3
// takes it literally: either way nothing of the other tenant is listed.
func TestTenantCannotReachAnotherTenantsPrefix(t *testing.T) {
	srv := s3test.Shared(t)
	tb := newTestBucket(t, srv, s3sse.Config{}, nil)
	ctx := context.Background()
	a, b := tb.tenant(t, "tenant-a"), tb.tenant(t, "tenant-b")
	require.NoError(t, b.Upload(ctx, "secret/obj", strings.NewReader("tenant b's")))
	require.NoError(t, a.Upload(ctx, "own", strings.NewReader("tenant a's")))

	for _, name := range []string{"../tenant-b/secret/obj", "x/../../tenant-b/secret/obj",
		"./../tenant-b/secret/obj"} {
		_, err := a.Get(ctx, name)
		require.ErrorIs(t, err, s3sse.ErrInvalidObjectName, "Get(%q)", name)
		_, err = a.Exists(ctx, name)
		require.ErrorIs(t, err, s3sse.ErrInvalidObjectName, "Exists(%q)", name)
		require.ErrorIs(t, a.Delete(ctx, name), s3sse.ErrInvalidObjectName, "Delete(%q)", name)
		require.ErrorIs(t, a.Copy(ctx, name, "stolen"), s3sse.ErrInvalidObjectName, "Copy(%q)", name)
	}

	for _, dir := range []string{"", "../tenant-b", "../tenant-b/secret", "..", "/../tenant-b",
		"./../tenant-b", "x/../../tenant-b", "%2e%2e/tenant-b", "..%2ftenant-b"} {
		for _, recursive := range []bool{false, true} {
			var names []string
			err := a.Iter(ctx, dir, func(n string) error { names = append(names, n); return nil },
				&s3sse.IterOptions{Recursive: recursive})
			for _, n := range names {
				require.NotContains(t, n, "secret", "Iter(%q, recursive %v) listed tenant-b's %q",
					dir, recursive, n)
			}
			if dir == "" {
				require.NoError(t, err)
				require.Equal(t, []string{"own"}, names, "tenant-a's own listing")
			}
			if strings.Contains(dir, "..") && !strings.Contains(dir, "%") {
				require.ErrorIs(t, err, s3sse.ErrInvalidObjectName, "Iter(%q)", dir)
			}
		}
	}
	require.Equal(t, "tenant b's", string(content(t)(b.Get(ctx, "secret/obj"))), "tenant-b's object")
}

// TestRuntimeConfigCaughtHalfWrittenAtEveryByte reloads every prefix of a
// runtime config file, as a reload that catches a writer rewriting the
// file in place would read it, and pins which of them the library
// rejects: every prefix that is empty or comments only, that ends inside a
// key, or that ends inside a quoted value. The others parse (a file cut at
// the end of a line is a valid file) and are counted: no reader can tell
// them from an edit, which is why files must be replaced by a rename.
func TestRuntimeConfigCaughtHalfWrittenAtEveryByte(t *testing.T) {
	old := goodRuntimeConfig("key-old")
	next := goodRuntimeConfig("key-next")
	file := filepath.Join(t.TempDir(), "runtime.yaml")
	require.NoError(t, os.WriteFile(file, []byte(old), 0o600))
	rc, err := s3sse.NewRuntimeConfig(context.Background(), s3sse.RuntimeConfigConfig{
		Files: []string{file},
	}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	r, err := s3sse.NewResolver(s3sse.Config{}, rc, nil)
	require.NoError(t, err)
	inForce := rc.Status().Hash

	var rejected, accepted int
	for n := 0; n < len(next); n++ {
		prefix := next[:n]
		writeInPlace(t, file, prefix)
		err := rc.Reload()

		last := prefix[strings.LastIndexByte(prefix, '\n')+1:]
		body := strings.TrimSpace(last)
		mustReject := ""
		switch {
		case strings.TrimSpace(strings.Join(nonComments(prefix), "")) == "":
			mustReject = "empty or comments only"
		case body != "" && body[0] != '#' && !strings.Contains(body, ":"):
			mustReject = "cut inside a key"
		case strings.Count(body, "'")%2 == 1:
			mustReject = "cut inside a quoted value"
		}

		if err != nil {
			rejected++
			status := rc.Status()
			require.False(t, status.LastReloadSuccessful, "prefix %q", prefix)
			require.Equal(t, inForce, status.Hash, "prefix %q: a rejected reload changed the config", prefix)
			a, err := r.Encryption("tenant-a")
			require.NoError(t, err)
			require.Equal(t, "key-old", a.KMSKeyID(), "prefix %q: tenant-a after a rejected reload", prefix)
		} else {
			require.Empty(t, mustReject, "prefix %q (%s) was accepted", prefix, mustReject)
			accepted++
		}

		// Back to the old file, so that each prefix is read after it.
		writeInPlace(t, file, old)
		require.NoError(t, rc.Reload())
		require.Equal(t, inForce, rc.Status().Hash)
	}
	t.Logf("%d prefixes of a %d-byte file: %d rejected, %d parsed as a valid file", len(next),
		len(next), rejected, accepted)
}

// nonComments returns the lines of text that are not comments.
func nonComments(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return out
}
