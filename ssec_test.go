package s3sse_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// customerKey is an SSE-C key a test wrote to a file.
type customerKey struct {
	raw  []byte
	file string
	md5  string // base64, as S3 reports it
}

// newCustomerKey writes a random key to a file of its own, as raw bytes or
// as base64 with a trailing newline, the two forms a secret mount holds.
func newCustomerKey(t testing.TB, asBase64 bool) customerKey {
	t.Helper()
	raw := make([]byte, 32)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	k := customerKey{raw: raw, file: filepath.Join(t.TempDir(), "sse-c.key")}
	content := raw
	if asBase64 {
		content = []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	}
	require.NoError(t, os.WriteFile(k.file, content, 0o600))
	sum := md5.Sum(raw)
	k.md5 = base64.StdEncoding.EncodeToString(sum[:])
	return k
}

func (k customerKey) sse(t testing.TB) encrypt.ServerSide {
	t.Helper()
	s, err := encrypt.NewSSEC(k.raw)
	require.NoError(t, err)
	return s
}

func requireCustomerKey(t testing.TB, tenant *s3sse.TenantBucket, name string, k customerKey) {
	t.Helper()
	attrs, err := tenant.Attributes(context.Background(), name)
	require.NoError(t, err, "attributes of %s/%s", tenant.TenantID(), name)
	require.Equal(t, s3sse.TypeSSEC, attrs.Encryption.Type, "%s/%s stored as %s",
		tenant.TenantID(), name, attrs.Encryption)
	require.Equal(t, k.md5, attrs.Encryption.CustomerKeyMD5, "%s/%s under another key",
		tenant.TenantID(), name)
}

func TestCustomerKeysRoundTripPerTenant(t *testing.T) {
	srv := s3test.Shared(t)
	if !srv.Secure() {
		t.Skip("SSE-C needs an HTTPS server; the harness's servers are HTTPS unless told otherwise")
	}
	keyA, keyB := newCustomerKey(t, false), newCustomerKey(t, true)
	tb := newTestBucket(t, srv, s3sse.Config{Type: s3sse.TypeSSES3}, newOverrides(map[string]override{
		"tenant-a": {typ: "SSE-C", keyFile: keyA.file},
		"tenant-b": {typ: "SSE-C", keyFile: keyB.file},
	}))
	a, b, plain := tb.tenant(t, "tenant-a"), tb.tenant(t, "tenant-b"), tb.tenant(t, "tenant-plain")
	ctx := context.Background()

	uploads := []struct {
		name   string
		size   int
		stream bool
	}{
		{"single-put", 1 << 10, false},
		{"multipart", 2*s3sse.MinPartSize + 7, false},
		{"unknown-size", 2*s3sse.MinPartSize + 11, true},
	}
	for _, up := range uploads {
		body := randomBytes(t, up.size)
		var r = bytes.NewReader(body)
		if up.stream {
			require.NoError(t, a.Upload(ctx, up.name, hideSize(r)), up.name)
		} else {
			require.NoError(t, a.Upload(ctx, up.name, r), up.name)
		}
		requireCustomerKey(t, a, up.name, keyA)
		require.Equal(t, body, content(t)(a.Get(ctx, up.name)), up.name)
		require.Equal(t, body[10:20], content(t)(a.GetRange(ctx, up.name, 10, 10)), up.name)

		ok, err := a.Exists(ctx, up.name)
		require.NoError(t, err)
		require.True(t, ok, "Exists of an SSE-C object")
	}
	tb.requireNoIncompleteUploads(t)

	// Without the key, or with tenant B's, the server refuses, and the
	// error says the key is the problem.
	key := "tenant-a/single-put"
	for _, tc := range []struct {
		desc string
		sse  encrypt.ServerSide
	}{
		{"no key", nil},
		{"tenant B's key", keyB.sse(t)},
	} {
		_, err := tb.client.StatObject(ctx, tb.name, key, minio.StatObjectOptions{ServerSideEncryption: tc.sse})
		require.Error(t, err, tc.desc)
		require.True(t, s3sse.IsCustomerKeyMismatch(err), "%s: IsCustomerKeyMismatch(%v) = false", tc.desc, err)
	}

	// A copy between tenants reads with the source's key and writes with
	// the destination's.
	require.NoError(t, b.CopyFrom(ctx, a, "single-put", "from-a"))
	requireCustomerKey(t, b, "from-a", keyB)
	require.Equal(t, content(t)(a.Get(ctx, "single-put")), content(t)(b.Get(ctx, "from-a")))

	require.NoError(t, plain.CopyFrom(ctx, a, "multipart", "from-a"))
	attrs, err := plain.Attributes(ctx, "from-a")
	require.NoError(t, err)
	require.Equal(t, s3sse.TypeSSES3, attrs.Encryption.Type)

	require.NoError(t, a.CopyFrom(ctx, plain, "from-a", "back"))
	requireCustomerKey(t, a, "back", keyA)
}

func TestCustomerKeyErrorsSayWhatIsWrong(t *testing.T) {
	srv := s3test.Shared(t)
	if !srv.Secure() {
		t.Skip("SSE-C needs an HTTPS server; the harness's servers are HTTPS unless told otherwise")
	}
	keyA, keyB := newCustomerKey(t, false), newCustomerKey(t, false)
	p := newOverrides(map[string]override{"tenant-a": {typ: "SSE-C", keyFile: keyA.file}})
	tb := newTestBucket(t, srv, s3sse.Config{}, p)
	a := tb.tenant(t, "tenant-a")
	ctx := context.Background()
	require.NoError(t, a.Upload(ctx, "obj", strings.NewReader("secret payload")))

	// The tenant's key changes without the old one kept for reads.
	p.set("tenant-a", override{typ: "SSE-C", keyFile: keyB.file})
	_, err := a.Get(ctx, "obj")
	require.ErrorIs(t, err, s3sse.ErrNoCustomerKeyFits)
	require.True(t, s3sse.IsCustomerKeyMismatch(err), "IsCustomerKeyMismatch(%v) = false", err)
	require.Contains(t, err.Error(), `tenant "tenant-a"`)
	requireNoKeyMaterial(t, err.Error(), keyA, keyB)

	_, err = a.Attributes(ctx, "obj")
	require.ErrorIs(t, err, s3sse.ErrNoCustomerKeyFits)

	// A key file that went missing fails the upload and writes nothing.
	missing := filepath.Join(t.TempDir(), "gone.key")
	p.set("tenant-a", override{typ: "SSE-C", keyFile: missing})
	err = a.Upload(ctx, "new", strings.NewReader("x"))
	require.ErrorIs(t, err, s3sse.ErrInvalidCustomerKey)
	require.Contains(t, err.Error(), missing)
	_, err = tb.client.StatObject(ctx, tb.name, "tenant-a/new", minio.StatObjectOptions{})
	require.True(t, s3sse.IsObjectNotFound(err), "written despite a missing key file: %v", err)
}

func requireNoKeyMaterial(t testing.TB, out string, keys ...customerKey) {
	t.Helper()
	for _, k := range keys {
		for _, form := range []string{
			string(k.raw),
			base64.StdEncoding.EncodeToString(k.raw),
			base64.RawStdEncoding.EncodeToString(k.raw),
			fmt.Sprintf("%x", k.raw),
		} {
			require.NotContains(t, out, form, "key material in output")
		}
	}
}

func TestCustomerKeyRotationKeepsOldObjectsReadable(t *testing.T) {
	srv := s3test.Shared(t)
	if !srv.Secure() {
		t.Skip("SSE-C needs an HTTPS server; the harness's servers are HTTPS unless told otherwise")
	}
	oldKey, newKey := newCustomerKey(t, false), newCustomerKey(t, true)
	p := newOverrides(map[string]override{"tenant-a": {typ: "SSE-C", keyFile: oldKey.file}})
	tb := newTestBucket(t, srv, s3sse.Config{}, p)
	a := tb.tenant(t, "tenant-a")
	ctx := context.Background()
	require.NoError(t, a.Upload(ctx, "old", strings.NewReader("written under the old key")))

	p.set("tenant-a", override{typ: "SSE-C", keyFile: newKey.file, previousKeyFiles: []string{oldKey.file}})
	require.NoError(t, a.Upload(ctx, "new", strings.NewReader("written under the new key")))
	requireCustomerKey(t, a, "new", newKey)
	requireCustomerKey(t, a, "old", oldKey)
	require.Equal(t, "written under the old key", string(content(t)(a.Get(ctx, "old"))))

	attrs, err := a.Attributes(ctx, "old")
	require.NoError(t, err)
	require.NoError(t, a.Reencrypt(ctx, "old", attrs.ETag))
	requireCustomerKey(t, a, "old", newKey)

	// With the old key dropped, the migrated object still reads.
	p.set("tenant-a", override{typ: "SSE-C", keyFile: newKey.file})
	require.Equal(t, "written under the old key", string(content(t)(a.Get(ctx, "old"))))

	// Moving away from SSE-C: the old key stays for reads only.
	p.set("tenant-a", override{typ: "SSE-S3", keyFile: newKey.file})
	require.NoError(t, a.Upload(ctx, "after", strings.NewReader("x")))
	attrs, err = a.Attributes(ctx, "after")
	require.NoError(t, err)
	require.Equal(t, s3sse.TypeSSES3, attrs.Encryption.Type)
	require.Equal(t, "written under the new key", string(content(t)(a.Get(ctx, "new"))))
}

func TestCustomerKeyFileRotatedOnDiskTakesEffectAtReload(t *testing.T) {
	srv := s3test.Shared(t)
	if !srv.Secure() {
		t.Skip("SSE-C needs an HTTPS server; the harness's servers are HTTPS unless told otherwise")
	}
	dir := t.TempDir()
	keyFile, prevFile := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
	first, second := newCustomerKey(t, false), newCustomerKey(t, false)
	require.NoError(t, os.WriteFile(keyFile, first.raw, 0o600))
	require.NoError(t, os.WriteFile(prevFile, first.raw, 0o600))

	runtimeFile := filepath.Join(dir, "runtime.yaml")
	require.NoError(t, os.WriteFile(runtimeFile, []byte(fmt.Sprintf(`overrides:
  tenant-a:
    s3_sse_type: SSE-C
    s3_sse_customer_key_file: %s
    s3_sse_customer_previous_key_files: [%s]
`, keyFile, prevFile)), 0o600))
	rc, err := s3sse.NewRuntimeConfig(context.Background(),
		s3sse.RuntimeConfigConfig{Files: []string{runtimeFile}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(rc.Stop)

	tb := newTestBucket(t, srv, s3sse.Config{}, rc)
	a := tb.tenant(t, "tenant-a")
	ctx := context.Background()
	require.NoError(t, a.Upload(ctx, "before", strings.NewReader("x")))
	requireCustomerKey(t, a, "before", first)

	// The secret mount is rotated: same file, new key.
	require.NoError(t, os.WriteFile(keyFile, second.raw, 0o600))
	require.NoError(t, rc.Reload())
	require.NoError(t, a.Upload(ctx, "after", strings.NewReader("y")))
	requireCustomerKey(t, a, "after", second)
	require.Equal(t, "x", string(content(t)(a.Get(ctx, "before"))), "readable with the previous key")
}

// refusingTransport fails the test if any request reaches it.
type refusingTransport struct{ t testing.TB }

func (r refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("a request was sent over plain HTTP: %s %s", req.Method, req.URL)
	return nil, errors.New("refused by the test")
}

func TestCustomerKeysAreNeverSentOverPlainHTTP(t *testing.T) {
	key := newCustomerKey(t, false)
	client, err := minio.New("127.0.0.1:9", &minio.Options{
		Creds:     credentials.NewStaticV4("access", "secret-access", ""),
		Secure:    false,
		Transport: refusingTransport{t},
	})
	require.NoError(t, err)
	r, err := s3sse.NewResolver(s3sse.Config{}, newOverrides(map[string]override{
		"tenant-c": {typ: "SSE-C", keyFile: key.file},
		"tenant-r": {typ: "SSE-S3", previousKeyFiles: []string{key.file}},
	}), nil)
	require.NoError(t, err)
	b, err := s3sse.NewBucket(client, "bucket", r, nil)
	require.NoError(t, err)
	ctx := context.Background()

	for _, id := range []string{"tenant-c", "tenant-r"} {
		tenant, err := b.Tenant(id)
		require.NoError(t, err)
		for op, call := range map[string]func() error{
			"upload": func() error { return tenant.Upload(ctx, "obj", strings.NewReader("x")) },
			"get":    func() error { _, err := tenant.Get(ctx, "obj"); return err },
			"exists": func() error { _, err := tenant.Exists(ctx, "obj"); return err },
			"copy":   func() error { return tenant.Copy(ctx, "obj", "obj2") },
		} {
			err := call()
			require.ErrorIs(t, err, s3sse.ErrCustomerKeyNeedsTLS, "%s %s", id, op)
			require.Contains(t, err.Error(), id)
			requireNoKeyMaterial(t, err.Error(), key)
		}
	}
}
