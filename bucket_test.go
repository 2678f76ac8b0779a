package s3sse_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// overrides is a host-supplied Provider whose values a test changes while
// uploads run, as a host's limits object would.
type overrides struct {
	mu      sync.RWMutex
	tenants map[string]override
}

type override struct {
	typ, keyID, context, keyFile string
	previousKeyFiles             []string
}

func newOverrides(m map[string]override) *overrides {
	if m == nil {
		m = map[string]override{}
	}
	return &overrides{tenants: m}
}

func (o *overrides) get(tenant string) override {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.tenants[tenant]
}

func (o *overrides) set(tenant string, v override) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tenants[tenant] = v
}

func (o *overrides) S3SSEType(t string) string                 { return o.get(t).typ }
func (o *overrides) S3SSEKMSKeyID(t string) string             { return o.get(t).keyID }
func (o *overrides) S3SSEKMSEncryptionContext(t string) string { return o.get(t).context }
func (o *overrides) S3SSECustomerKeyFile(t string) string      { return o.get(t).keyFile }
func (o *overrides) S3SSECustomerPreviousKeyFiles(t string) []string {
	return o.get(t).previousKeyFiles
}

// testBucket is a Bucket on the shared server in a bucket of the test's own.
type testBucket struct {
	*s3sse.Bucket
	srv    *s3test.Server
	client *minio.Client
	name   string
}

func newTestBucket(t testing.TB, srv *s3test.Server, defaults s3sse.Config, p s3sse.Provider) *testBucket {
	t.Helper()
	name := srv.NewBucket(t)
	client := srv.Client(t)
	r, err := s3sse.NewResolver(defaults, p, nil)
	require.NoError(t, err)
	b, err := s3sse.NewBucket(client, name, r, &s3sse.BucketOptions{
		PartSize:     s3sse.MinPartSize,
		TenantPrefix: true,
	})
	require.NoError(t, err)
	return &testBucket{Bucket: b, srv: srv, client: client, name: name}
}

func (tb *testBucket) tenant(t testing.TB, id string) *s3sse.TenantBucket {
	t.Helper()
	v, err := tb.Tenant(id)
	require.NoError(t, err)
	return v
}

// want is the encryption a test expects the server to report.
type want struct {
	typ     s3sse.SSEType
	keyID   string // KMS key name; the server reports it as an ARN ending in it
	context map[string]string
}

// requireStored checks what the server reports for the object, and, for
// KMS objects on the KMS stand-in, that every data key of the object came
// from the wanted key and no other.
func (tb *testBucket) requireStored(t testing.TB, tenant *s3sse.TenantBucket, name string, w want) {
	t.Helper()
	attrs, err := tenant.Attributes(context.Background(), name)
	require.NoError(t, err, "attributes of %s/%s", tenant.TenantID(), name)

	got := attrs.Encryption
	require.Equal(t, w.typ, got.Type, "tenant %s object %s: stored as %s", tenant.TenantID(), name, got)
	if w.typ == s3sse.TypeSSEKMS {
		require.True(t, strings.HasSuffix(got.KMSKeyID, w.keyID),
			"tenant %s object %s: key %q, want one ending in %q", tenant.TenantID(), name, got.KMSKeyID, w.keyID)
		require.Equal(t, w.context, got.Context, "tenant %s object %s: context", tenant.TenantID(), name)
	}

	if tb.srv.KMSMode() != s3test.KMSStandIn || w.typ != s3sse.TypeSSEKMS {
		return
	}
	key, _ := tenant.Key(name)
	calls := tb.srv.KMS().ObjectCalls(tb.name, key)
	require.NotEmpty(t, calls, "the KMS saw no call for %s", key)
	for _, c := range calls {
		require.Equal(t, w.keyID, c.Key, "tenant %s object %s: KMS %s call under another key",
			tenant.TenantID(), name, c.Op)
		for k, v := range w.context {
			require.Equal(t, v, c.Context[k], "tenant %s object %s: KMS context key %q",
				tenant.TenantID(), name, k)
		}
	}
}

// hideSize hides the reader's length, so Upload sees a stream of unknown size.
func hideSize(r io.Reader) io.Reader { return io.MultiReader(r) }

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// content reads what a Get or GetRange returned: content(t)(tenant.Get(ctx, name)).
func content(t testing.TB) func(io.ReadCloser, error) []byte {
	return func(rc io.ReadCloser, err error) []byte {
		t.Helper()
		require.NoError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return b
	}
}

func TestUploadStoresEachTenantsEncryption(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	defaults := s3sse.Config{
		Type:                 s3sse.TypeSSEKMS,
		KMSKeyID:             keys[0],
		KMSEncryptionContext: `{"component":"blocks"}`,
	}
	tb := newTestBucket(t, srv, defaults, newOverrides(map[string]override{
		"tenant-s3": {typ: "SSE-S3"},
		"tenant-a":  {typ: "SSE-KMS", keyID: keys[1], context: `{"tenant":"a"}`},
		"tenant-b":  {typ: "SSE-KMS", keyID: keys[2], context: `{"tenant":"b"}`},
	}))

	tenants := []struct {
		id   string
		want want
	}{
		{"tenant-default", want{s3sse.TypeSSEKMS, keys[0], map[string]string{"component": "blocks"}}},
		{"tenant-s3", want{typ: s3sse.TypeSSES3}},
		{"tenant-a", want{s3sse.TypeSSEKMS, keys[1], map[string]string{"tenant": "a"}}},
		{"tenant-b", want{s3sse.TypeSSEKMS, keys[2], map[string]string{"tenant": "b"}}},
	}
	uploads := []struct {
		name   string
		size   int
		stream bool // hide the size
	}{
		{"single-put", 1 << 10, false},
		{"multipart", 2*s3sse.MinPartSize + 12345, false},
		{"unknown-size-small", 1 << 10, true},
		{"unknown-size-multipart", 2*s3sse.MinPartSize + 54321, true},
	}

	for _, tc := range tenants {
		t.Run(tc.id, func(t *testing.T) {
			tenant := tb.tenant(t, tc.id)
			for _, up := range uploads {
				body := randomBytes(t, up.size)
				var r io.Reader = bytes.NewReader(body)
				if up.stream {
					r = hideSize(r)
				}
				require.NoError(t, tenant.Upload(context.Background(), up.name, r), up.name)

				tb.requireStored(t, tenant, up.name, tc.want)
				got := content(t)(tenant.Get(context.Background(), up.name))
				require.True(t, bytes.Equal(body, got), "%s: content differs after a round trip", up.name)

				part := content(t)(tenant.GetRange(context.Background(), up.name, 100, 50))
				require.Equal(t, body[100:150], part, "%s: range 100+50", up.name)
			}
		})
	}

	// The tenant prefix keeps every tenant's objects apart.
	var names []string
	require.NoError(t, tb.tenant(t, "tenant-a").Iter(context.Background(), "", func(n string) error {
		names = append(names, n)
		return nil
	}, nil))
	require.ElementsMatch(t, []string{"single-put", "multipart", "unknown-size-small",
		"unknown-size-multipart"}, names)
	tb.requireNoIncompleteUploads(t)
}

func (tb *testBucket) requireNoIncompleteUploads(t testing.TB) {
	t.Helper()
	for u := range tb.client.ListIncompleteUploads(context.Background(), tb.name, "", true) {
		require.NoError(t, u.Err)
		require.Failf(t, "incomplete upload left behind", "key %s, upload %s", u.Key, u.UploadID)
	}
}

func TestCopyTakesTheDestinationTenantsEncryption(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	tb := newTestBucket(t, srv, s3sse.Config{Type: s3sse.TypeSSES3}, newOverrides(map[string]override{
		"tenant-a": {typ: "SSE-KMS", keyID: keys[1], context: `{"tenant":"a"}`},
		"tenant-b": {typ: "SSE-KMS", keyID: keys[2], context: `{"tenant":"b"}`},
	}))
	a, b, plain := tb.tenant(t, "tenant-a"), tb.tenant(t, "tenant-b"), tb.tenant(t, "tenant-plain")
	ctx := context.Background()
	body := randomBytes(t, 4096)
	require.NoError(t, a.Upload(ctx, "src", bytes.NewReader(body)))

	require.NoError(t, b.CopyFrom(ctx, a, "src", "from-a"))
	tb.requireStored(t, b, "from-a", want{s3sse.TypeSSEKMS, keys[2], map[string]string{"tenant": "b"}})
	require.Equal(t, body, content(t)(b.Get(ctx, "from-a")))

	require.NoError(t, plain.CopyFrom(ctx, a, "src", "from-a"))
	tb.requireStored(t, plain, "from-a", want{typ: s3sse.TypeSSES3})

	require.NoError(t, a.Copy(ctx, "src", "copy"))
	tb.requireStored(t, a, "copy", want{s3sse.TypeSSEKMS, keys[1], map[string]string{"tenant": "a"}})
}

func TestReencryptRewritesInPlaceOnlyWhenUnchanged(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 2)
	tb := newTestBucket(t, srv, s3sse.Config{}, newOverrides(map[string]override{
		"tenant-a": {typ: "SSE-KMS", keyID: keys[1]},
	}))
	a := tb.tenant(t, "tenant-a")
	ctx := context.Background()

	// An object written around the wrapper, as before encryption was on.
	body := []byte("written before the tenant was encrypted")
	_, err := tb.client.PutObject(ctx, tb.name, "tenant-a/old", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain", UserMetadata: map[string]string{"Origin": "test"}})
	require.NoError(t, err)
	before, err := a.Attributes(ctx, "old")
	require.NoError(t, err)
	require.Equal(t, s3sse.TypeNone, before.Encryption.Type)

	err = a.Reencrypt(ctx, "old", "0123456789abcdef0123456789abcdef")
	require.ErrorIs(t, err, s3sse.ErrPreconditionFailed, "a stale ETag must not rewrite the object")
	tb.requireStored(t, a, "old", want{typ: s3sse.TypeNone})

	require.NoError(t, a.Reencrypt(ctx, "old", before.ETag))
	tb.requireStored(t, a, "old", want{typ: s3sse.TypeSSEKMS, keyID: keys[1]})
	require.Equal(t, body, content(t)(a.Get(ctx, "old")))

	info, err := tb.client.StatObject(ctx, tb.name, "tenant-a/old", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, "text/plain", info.ContentType, "content type kept")
	require.Equal(t, "test", info.UserMetadata["Origin"], "user metadata kept")
}

func TestUnknownKMSKeyFailsAndLeavesNothing(t *testing.T) {
	srv := s3test.Shared(t)
	srv.RequireKMS(t)
	tb := newTestBucket(t, srv, s3sse.Config{}, newOverrides(map[string]override{
		"tenant-x": {typ: "SSE-KMS", keyID: "no-such-key"},
	}))
	x := tb.tenant(t, "tenant-x")

	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"single-put", strings.NewReader("small")},
		{"multipart", bytes.NewReader(make([]byte, 2*s3sse.MinPartSize+1))},
		{"unknown-size", hideSize(bytes.NewReader(make([]byte, 2*s3sse.MinPartSize+1)))},
	} {
		err := x.Upload(context.Background(), tc.name, tc.body)
		require.Error(t, err, tc.name)
		require.True(t, s3sse.IsKMSKeyNotFound(err), "%s: IsKMSKeyNotFound(%v) = false", tc.name, err)
		require.Contains(t, err.Error(), `tenant "tenant-x"`)

		ok, err := x.Exists(context.Background(), tc.name)
		require.NoError(t, err)
		require.False(t, ok, "%s: an object exists after a failed upload", tc.name)
	}
	tb.requireNoIncompleteUploads(t)
}

func TestDisabledKMSKeyIsAccessDenied(t *testing.T) {
	srv := s3test.StartDedicated(t, s3test.Options{})
	kms := srv.RequireKMS(t)
	keys := srv.RequireKMSKeys(t, 2)
	tb := newTestBucket(t, srv, s3sse.Config{}, newOverrides(map[string]override{
		"tenant-a": {typ: "SSE-KMS", keyID: keys[1]},
	}))
	a := tb.tenant(t, "tenant-a")
	require.NoError(t, a.Upload(context.Background(), "before", strings.NewReader("x")))

	require.NoError(t, kms.DisableKey(keys[1]))
	err := a.Upload(context.Background(), "after", strings.NewReader("x"))
	require.Error(t, err)
	require.True(t, s3sse.IsAccessDenied(err), "IsAccessDenied(%v) = false", err)
	require.False(t, s3sse.IsKMSKeyNotFound(err), "a disabled key is not a missing key: %v", err)
	// NOTE: reads of objects written before are not checked: MinIO keeps
	// recently used data keys and answers them without asking the KMS.
}

func TestInvalidOverrideFailsClosed(t *testing.T) {
	srv := s3test.Shared(t)
	tb := newTestBucket(t, srv, s3sse.Config{Type: s3sse.TypeSSES3}, newOverrides(map[string]override{
		"tenant-bad-type":    {typ: "SSE-KMX"},
		"tenant-bad-context": {typ: "SSE-KMS", context: `{"team": 7}`},
	}))

	for _, tc := range []struct {
		tenant   string
		sentinel error
		mentions []string
	}{
		{"tenant-bad-type", s3sse.ErrUnknownSSEType, []string{"s3_sse_type", "SSE-KMX", "SSE-S3"}},
		{"tenant-bad-context", s3sse.ErrInvalidEncryptionContext, []string{"s3_sse_kms_encryption_context", `"team"`}},
	} {
		tenant := tb.tenant(t, tc.tenant)
		err := tenant.Upload(context.Background(), "obj", strings.NewReader("must not be written"))
		require.ErrorIs(t, err, s3sse.ErrResolveSSE, tc.tenant)
		require.ErrorIs(t, err, tc.sentinel, tc.tenant)
		require.Contains(t, err.Error(), fmt.Sprintf("%q", tc.tenant))
		for _, m := range tc.mentions {
			require.Contains(t, err.Error(), m, "the error should say %s", m)
		}

		_, err = tb.client.StatObject(context.Background(), tb.name, tc.tenant+"/obj", minio.StatObjectOptions{})
		require.True(t, s3sse.IsObjectNotFound(err), "%s: object written despite the invalid override: %v",
			tc.tenant, err)
	}
}

func TestConcurrentUploadsKeepTheirTenantsEncryption(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 4)
	p := newOverrides(nil)
	wants := map[string]want{}
	for i := range 10 {
		id := fmt.Sprintf("tenant-%02d", i)
		switch i % 4 {
		case 0:
			p.set(id, override{typ: "SSE-S3"})
			wants[id] = want{typ: s3sse.TypeSSES3}
		default:
			key := keys[i%4]
			ctx := fmt.Sprintf(`{"tenant":%q}`, id)
			p.set(id, override{typ: "SSE-KMS", keyID: key, context: ctx})
			wants[id] = want{s3sse.TypeSSEKMS, key, map[string]string{"tenant": id}}
		}
	}
	tb := newTestBucket(t, srv, s3sse.Config{}, p)

	const uploads = 50
	var wg sync.WaitGroup
	errs := make(chan error, uploads)
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("tenant-%02d", i%10)
			tenant, err := tb.Tenant(id)
			if err == nil {
				err = tenant.Upload(context.Background(), fmt.Sprintf("obj-%02d", i), strings.NewReader(id))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	for i := range uploads {
		id := fmt.Sprintf("tenant-%02d", i%10)
		tb.requireStored(t, tb.tenant(t, id), fmt.Sprintf("obj-%02d", i), wants[id])
	}
}

func TestRuntimeConfigChangeReachesTheNextUpload(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	file := filepath.Join(t.TempDir(), "runtime.yaml")
	writeRuntimeConfig(t, file, keys[1])

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rc, err := s3sse.NewRuntimeConfig(ctx, s3sse.RuntimeConfigConfig{Files: []string{file}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)

	tb := newTestBucket(t, srv, s3sse.Config{Type: s3sse.TypeSSES3}, rc)
	a := tb.tenant(t, "tenant-a")
	require.NoError(t, a.Upload(context.Background(), "before", strings.NewReader("x")))
	tb.requireStored(t, a, "before", want{s3sse.TypeSSEKMS, keys[1], map[string]string{"tenant": "a"}})

	writeRuntimeConfig(t, file, keys[2])
	require.NoError(t, rc.Reload())
	require.NoError(t, a.Upload(context.Background(), "after", strings.NewReader("x")))
	tb.requireStored(t, a, "after", want{s3sse.TypeSSEKMS, keys[2], map[string]string{"tenant": "a"}})
	tb.requireStored(t, a, "before", want{s3sse.TypeSSEKMS, keys[1], map[string]string{"tenant": "a"}})
}

func writeRuntimeConfig(t testing.TB, file, key string) {
	t.Helper()
	content := fmt.Sprintf(`overrides:
  tenant-a:
    ingestion_rate: 10000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: %s
    s3_sse_kms_encryption_context: '{"tenant":"a"}'
`, key)
	tmp := file + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, file))
}

func TestTenantViewsAreConfined(t *testing.T) {
	srv := s3test.Shared(t)
	tb := newTestBucket(t, srv, s3sse.Config{}, nil)

	for _, id := range []string{"", ".", "..", "a/b", "tab\there", "nul\x00", strings.Repeat("x", 151)} {
		_, err := tb.Tenant(id)
		require.ErrorIs(t, err, s3sse.ErrInvalidTenantID, "tenant ID %q", id)
	}
	_, err := tb.Tenant(strings.Repeat("x", 150))
	require.NoError(t, err, "150 bytes is the limit, not over it")

	a := tb.tenant(t, "tenant-a")
	for _, name := range []string{"", "../tenant-b/obj", "x/../../tenant-b/obj", "./obj"} {
		err := a.Upload(context.Background(), name, strings.NewReader("x"))
		require.ErrorIs(t, err, s3sse.ErrInvalidObjectName, "name %q", name)
	}

	ctx := context.Background()
	require.NoError(t, a.Upload(ctx, "dir/obj", strings.NewReader("x")))
	require.NoError(t, tb.tenant(t, "tenant-b").Upload(ctx, "dir/other", strings.NewReader("y")))
	var top, all []string
	require.NoError(t, a.Iter(ctx, "", func(n string) error { top = append(top, n); return nil }, nil))
	require.NoError(t, a.Iter(ctx, "", func(n string) error { all = append(all, n); return nil },
		&s3sse.IterOptions{Recursive: true}))
	require.Equal(t, []string{"dir/"}, top)
	require.Equal(t, []string{"dir/obj"}, all)

	require.NoError(t, a.Delete(ctx, "dir/obj"))
	ok, err := a.Exists(ctx, "dir/obj")
	require.NoError(t, err)
	require.False(t, ok)
	_, err = a.Get(ctx, "dir/obj")
	require.True(t, s3sse.IsObjectNotFound(err), "get of a deleted object: %v", err)
}

func TestUploadOfAFailingReaderAbortsTheMultipartUpload(t *testing.T) {
	srv := s3test.Shared(t)
	tb := newTestBucket(t, srv, s3sse.Config{}, nil)
	a := tb.tenant(t, "tenant-a")

	boom := errors.New("disk went away")
	r := io.MultiReader(bytes.NewReader(make([]byte, 2*s3sse.MinPartSize)), &failingReader{boom})
	err := a.Upload(context.Background(), "broken", r)
	require.ErrorIs(t, err, boom)

	ok, err := a.Exists(context.Background(), "broken")
	require.NoError(t, err)
	require.False(t, ok)
	tb.requireNoIncompleteUploads(t)
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestUploadWithCancelledContextAbortsTheMultipartUpload(t *testing.T) {
	srv := s3test.Shared(t)
	tb := newTestBucket(t, srv, s3sse.Config{}, nil)
	a := tb.tenant(t, "tenant-a")

	ctx, cancel := context.WithCancel(context.Background())
	r := io.MultiReader(bytes.NewReader(make([]byte, s3sse.MinPartSize+1)),
		&cancelOnRead{cancel: cancel, r: bytes.NewReader(make([]byte, s3sse.MinPartSize))})
	err := a.Upload(ctx, "cancelled", r)
	require.ErrorIs(t, err, context.Canceled)

	// The abort runs on a context of its own; give MinIO no time to forget.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if tb.AbortPending(context.Background()) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.requireNoIncompleteUploads(t)
}

type cancelOnRead struct {
	cancel context.CancelFunc
	r      io.Reader
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}

// MinIO gives a server-side copy the source's KMS context when the
// destination sends none, while sealing its data key without one: the copy
// could then never be read. Copies replace the metadata, which avoids it.
func TestCopyFromAContextToNoContextStaysReadable(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	tb := newTestBucket(t, srv, s3sse.Config{}, newOverrides(map[string]override{
		"tenant-ctx":   {typ: "SSE-KMS", keyID: keys[1], context: `{"tenant":"ctx"}`},
		"tenant-noctx": {typ: "SSE-KMS", keyID: keys[2]},
	}))
	withCtx, noCtx := tb.tenant(t, "tenant-ctx"), tb.tenant(t, "tenant-noctx")
	ctx := context.Background()
	body := []byte("copied across contexts")
	require.NoError(t, withCtx.Upload(ctx, "src", bytes.NewReader(body)))

	require.NoError(t, noCtx.CopyFrom(ctx, withCtx, "src", "dst"))
	tb.requireStored(t, noCtx, "dst", want{typ: s3sse.TypeSSEKMS, keyID: keys[2]})
	require.Equal(t, body, content(t)(noCtx.Get(ctx, "dst")))
}
