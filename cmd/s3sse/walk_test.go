package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// fixture is a bucket of the harness's MinIO holding several tenants'
// objects, some of them not under their tenant's encryption, and the
// command-line flags that point the tool at it.
type fixture struct {
	srv    *s3test.Server
	client *minio.Client
	bucket string
	dir    string
	args   []string // flags naming the endpoint, bucket, credentials and configs

	kmsKey, otherKMSKey string // tenant-a's policy key, and one it must not use
	keyC, oldKeyC       []byte // tenant-c's current and previous SSE-C keys
	strayKey            []byte // an SSE-C key no tenant lists

	objects []*plantedObject
}

// plantedObject is an object the fixture wrote, as it wrote it.
type plantedObject struct {
	tenant, name string
	content      []byte
	sse          encrypt.ServerSide
	contentType  string
	metadata     map[string]string
	// nonCompliant says whether the tenant's policy wants it rewritten.
	nonCompliant bool
}

func (o *plantedObject) key() string { return o.tenant + "/" + o.name }

// The tenants' policies in every fixture:
//
//	tenant-a  SSE-KMS under kmsKey with context {"tenant":"a"} (override)
//	tenant-b  SSE-S3 (the sse block)
//	tenant-c  SSE-C with keyC; oldKeyC still readable (override)
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 2)
	f := &fixture{
		srv:         srv,
		client:      srv.Client(t),
		bucket:      srv.NewBucket(t),
		dir:         t.TempDir(),
		kmsKey:      keys[1],
		otherKMSKey: keys[0],
	}
	keyFile, keyC := writeKeyFile(t, f.dir, "keys/tenant-c", true)
	oldKeyFile, oldKeyC := writeKeyFile(t, f.dir, "keys/tenant-c.old", false)
	f.keyC, f.oldKeyC = keyC, oldKeyC
	f.strayKey = randomBytes(t, 32)

	runtime := writeFile(t, f.dir, "runtime.yaml", fmt.Sprintf(`
overrides:
  tenant-a:
    ingestion_rate: 10000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: %s
    s3_sse_kms_encryption_context: '{"tenant":"a"}'
  tenant-c:
    s3_sse_type: SSE-C
    s3_sse_customer_key_file: %s
    s3_sse_customer_previous_key_files: [%s]
`, f.kmsKey, keyFile, oldKeyFile))
	access, secret := srv.Credentials()
	cfg := writeFile(t, f.dir, "cortex.yaml", fmt.Sprintf(`
blocks_storage:
  backend: s3
  s3:
    endpoint: %s
    bucket_name: %s
    region: %s
    access_key_id: %s
    secret_access_key: ${S3SSE_TEST_SECRET}
    insecure: %t
    sse:
      type: SSE-S3
`, srv.Endpoint(), f.bucket, srv.Region(), access, !srv.Secure()))
	t.Setenv("S3SSE_TEST_SECRET", secret)

	f.args = []string{"-config.file", cfg, "-config.expand-env", "-runtime-config.file", runtime,
		"-progress", "off"}
	if srv.Secure() {
		tlsConfig := srv.NewTransport().TLSClientConfig
		if tlsConfig.InsecureSkipVerify {
			f.args = append(f.args, "-blocks-storage.s3.http.insecure-skip-verify")
		} else {
			f.args = append(f.args, "-blocks-storage.s3.http.tls-ca-path",
				writeServerCA(t, f.dir, srv.Endpoint(), tlsConfig))
		}
	}
	return f
}

// writeServerCA writes the root of the server's certificate chain, as the
// harness's client verifies it, to a PEM file: what an operator would pass
// for a server with a private CA.
func writeServerCA(t *testing.T, dir, endpoint string, cfg *tls.Config) string {
	t.Helper()
	conn, err := tls.Dial("tcp", endpoint, cfg)
	require.NoError(t, err, "TLS handshake with %s", endpoint)
	defer conn.Close()
	chains := conn.ConnectionState().VerifiedChains
	require.NotEmpty(t, chains, "no verified chain from %s", endpoint)
	root := chains[0][len(chains[0])-1]
	return writeFile(t, dir, "ca.pem",
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func ssec(t *testing.T, key []byte) encrypt.ServerSide {
	t.Helper()
	s, err := encrypt.NewSSEC(key)
	require.NoError(t, err)
	return s
}

func ssekms(t *testing.T, key string, context map[string]string) encrypt.ServerSide {
	t.Helper()
	s, err := encrypt.NewSSEKMS(key, context)
	require.NoError(t, err)
	return s
}

// put writes an object straight through minio-go, with the encryption
// given, as a client that predates the tenant's policy would have.
func (f *fixture) put(t *testing.T, o *plantedObject) {
	t.Helper()
	opts := minio.PutObjectOptions{ServerSideEncryption: o.sse, ContentType: o.contentType,
		UserMetadata: o.metadata}
	if len(o.content) > 5<<20 {
		opts.PartSize = 5 << 20 // a multipart object, whose ETag is not an MD5
	}
	_, err := f.client.PutObject(context.Background(), f.bucket, o.key(),
		bytes.NewReader(o.content), int64(len(o.content)), opts)
	require.NoError(t, err, "put %s", o.key())
	f.objects = append(f.objects, o)
}

// plant writes the standard mix of objects: for each tenant some under its
// policy and some not, one multipart, one with metadata, one empty.
func (f *fixture) plant(t *testing.T) {
	t.Helper()
	ctxA := map[string]string{"tenant": "a"}
	for _, o := range []*plantedObject{
		{tenant: "tenant-a", name: "01HA/index", sse: ssekms(t, f.kmsKey, ctxA)},
		{tenant: "tenant-a", name: "01HA/chunks/000001", sse: ssekms(t, f.kmsKey, ctxA)},
		{tenant: "tenant-a", name: "01HB/index", sse: encrypt.NewSSE(), nonCompliant: true},
		{tenant: "tenant-a", name: "01HB/meta.json", nonCompliant: true,
			contentType: "application/json", metadata: map[string]string{"Thanos-Version": "1"}},
		{tenant: "tenant-a", name: "01HC/chunks/000001", nonCompliant: true,
			sse: ssekms(t, f.otherKMSKey, ctxA)},
		{tenant: "tenant-a", name: "01HC/index", nonCompliant: true,
			sse: ssekms(t, f.kmsKey, map[string]string{"tenant": "b"})},
		{tenant: "tenant-a", name: "01HD/chunks/000001", nonCompliant: true,
			content: randomBytes(t, 6<<20+123)},
		{tenant: "tenant-b", name: "01HE/index", sse: encrypt.NewSSE()},
		{tenant: "tenant-b", name: "01HE/meta.json", nonCompliant: true},
		{tenant: "tenant-b", name: "markers/empty", nonCompliant: true, content: []byte{}},
		{tenant: "tenant-c", name: "01HF/index", sse: ssec(t, f.keyC)},
		{tenant: "tenant-c", name: "01HF/meta.json", sse: ssec(t, f.oldKeyC), nonCompliant: true},
		{tenant: "tenant-c", name: "01HG/index", sse: encrypt.NewSSE(), nonCompliant: true},
	} {
		if o.content == nil {
			o.content = randomBytes(t, 1000+len(f.objects)*517)
		}
		f.put(t, o)
	}
}

func (f *fixture) nonCompliantKeys() []string {
	var keys []string
	for _, o := range f.objects {
		if o.nonCompliant {
			keys = append(keys, o.key())
		}
	}
	sort.Strings(keys)
	return keys
}

// records runs the tool with -output json and splits what it printed.
type records struct {
	objects []objectJSON
	tenants map[string]tenantJSON
	summary summaryJSON
}

func (f *fixture) runJSON(t *testing.T, a *app, args ...string) (records, result) {
	t.Helper()
	if a == nil {
		a = &app{}
	}
	// The command first, then the fixture's flags, which the test's own
	// flags after them override.
	full := append(append(args[:1:1], f.args...), args[1:]...)
	r := runApp(t, context.Background(), a, append(full, "-output", "json")...)
	recs := records{tenants: map[string]tenantJSON{}}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var raw json.RawMessage
		require.NoError(t, dec.Decode(&raw), "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		var kind struct{ Record string }
		require.NoError(t, json.Unmarshal(raw, &kind))
		switch kind.Record {
		case "object":
			var o objectJSON
			require.NoError(t, json.Unmarshal(raw, &o))
			recs.objects = append(recs.objects, o)
		case "tenant":
			var tj tenantJSON
			require.NoError(t, json.Unmarshal(raw, &tj))
			recs.tenants[tj.Tenant] = tj
		case "summary":
			require.NoError(t, json.Unmarshal(raw, &recs.summary))
		default:
			t.Fatalf("unknown record %s", raw)
		}
	}
	require.Equal(t, "summary", recs.summary.Record, "no summary; stderr:\n%s", r.stderr)
	require.Equal(t, r.code, recs.summary.ExitCode, "summary and exit code disagree")
	return recs, r
}

// keysWith lists the keys of the object records with the status.
func (r records) keysWith(status string) []string {
	keys := []string{}
	for _, o := range r.objects {
		if o.Status == status {
			keys = append(keys, o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// stored is what the server reports for an object now, read with the keys
// the fixture knows.
func (f *fixture) stored(t *testing.T, key string) (
	s3sse.StoredEncryption, []byte, minio.ObjectInfo) {
	t.Helper()
	ctx := context.Background()
	for _, sse := range []encrypt.ServerSide{nil, ssec(t, f.keyC), ssec(t, f.oldKeyC),
		ssec(t, f.strayKey)} {
		obj, err := f.client.GetObject(ctx, f.bucket, key,
			minio.GetObjectOptions{ServerSideEncryption: sse})
		require.NoError(t, err)
		info, err := obj.Stat()
		if err != nil {
			obj.Close()
			continue
		}
		content, err := io.ReadAll(obj)
		obj.Close()
		require.NoError(t, err, "read %s", key)
		return s3sse.StoredEncryptionOf(info.Metadata), content, info
	}
	t.Fatalf("no key the fixture holds reads %s", key)
	return s3sse.StoredEncryption{}, nil, minio.ObjectInfo{}
}

func TestAuditFindsExactlyThePlantedObjects(t *testing.T) {
	f := newFixture(t)
	f.plant(t)
	// An object outside any tenant is counted, not audited.
	_, err := f.client.PutObject(context.Background(), f.bucket, "stray", strings.NewReader("x"),
		1, minio.PutObjectOptions{})
	require.NoError(t, err)

	recs, r := f.runJSON(t, nil, "audit")
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusNonCompliant),
		"the non-compliant objects must be exactly those planted")
	require.Len(t, recs.objects, len(f.nonCompliantKeys()), "only non-compliant objects are listed")

	for _, o := range recs.objects {
		require.NotEmpty(t, o.Reason, "object %s: no reason", o.Key)
		require.NotEmpty(t, o.ETag, "object %s: no ETag", o.Key)
	}

	want := map[string][3]int64{ // objects, compliant, non-compliant
		"tenant-a": {7, 2, 5}, "tenant-b": {3, 1, 2}, "tenant-c": {3, 1, 2},
	}
	for tenant, w := range want {
		got := recs.tenants[tenant]
		require.Equal(t, w, [3]int64{got.Objects, got.Compliant, got.NonCompliant},
			"tenant %s: objects, compliant, non-compliant", tenant)
		var bytes, objects int64
		for _, o := range f.objects {
			if o.tenant == tenant {
				bytes += int64(len(o.content))
			}
		}
		for _, c := range got.ByEncryption {
			objects += c.Objects
		}
		require.Equal(t, bytes, got.Bytes, "tenant %s: bytes", tenant)
		require.Equal(t, got.Objects, objects, "tenant %s: by_encryption adds up", tenant)
	}

	// tenant-c's objects by stored encryption: one under each SSE-C key,
	// one SSE-S3.
	byEnc := map[string]int64{}
	for _, c := range recs.tenants["tenant-c"].ByEncryption {
		byEnc[string(c.Encryption.Type)+" "+c.Encryption.CustomerKeyMD5] = c.Objects
	}
	require.Equal(t, map[string]int64{"SSE-C " + keyMD5(f.keyC): 1,
		"SSE-C " + keyMD5(f.oldKeyC): 1, "SSE-S3 ": 1}, byEnc)

	require.Equal(t, int64(1), recs.summary.OutsideTenants)
	require.Equal(t, 3, recs.summary.Tenants)
	require.False(t, recs.summary.Compliant)

	// -tenant narrows the walk.
	recs, r = f.runJSON(t, nil, "audit", "-tenant", "tenant-b")
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, []string{"tenant-b/01HE/meta.json", "tenant-b/markers/empty"},
		recs.keysWith(statusNonCompliant))
	require.Len(t, recs.tenants, 1)
}

func TestAuditOfCompliantBucketExitsZero(t *testing.T) {
	f := newFixture(t)
	f.put(t, &plantedObject{tenant: "tenant-b", name: "x", sse: encrypt.NewSSE(),
		content: []byte("ok")})
	f.put(t, &plantedObject{tenant: "tenant-c", name: "y", sse: ssec(t, f.keyC),
		content: []byte("ok")})

	recs, r := f.runJSON(t, nil, "audit")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.True(t, recs.summary.Compliant)
	require.Empty(t, recs.objects)

	// The text output says so too.
	r = runCmd(t, append([]string{"audit"}, f.args...)...)
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Contains(t, r.stdout, "2 tenants, 2 objects (4 B): 2 comply, 0 do not.")
}

func TestAuditReportsSSECObjectUnderUnknownKey(t *testing.T) {
	f := newFixture(t)
	f.put(t, &plantedObject{tenant: "tenant-c", name: "lost", sse: ssec(t, f.strayKey),
		content: []byte("secret"), nonCompliant: true})
	f.put(t, &plantedObject{tenant: "tenant-b", name: "lost", sse: ssec(t, f.strayKey),
		content: []byte("secret"), nonCompliant: true})

	recs, r := f.runJSON(t, nil, "audit")
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusNonCompliant))
	for _, o := range recs.objects {
		require.Contains(t, o.Reason, "none of the tenant's key files holds", "object %s", o.Key)
	}
	requireNoSecret(t, r, f.strayKey, f.keyC, f.oldKeyC)

	// reencrypt cannot fix them, and says why: an error, not a success.
	recs, r = f.runJSON(t, nil, "reencrypt", "-apply")
	require.Equal(t, exitError, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusCannotReencrypt))
}

func TestReencryptMakesEveryObjectCompliantAndKeepsContent(t *testing.T) {
	f := newFixture(t)
	f.plant(t)
	before := map[string]minio.ObjectInfo{}
	for _, o := range f.objects {
		_, _, info := f.stored(t, o.key())
		before[o.key()] = info
	}

	// A dry run changes nothing.
	recs, r := f.runJSON(t, nil, "reencrypt")
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusWouldReencrypt))
	for _, o := range f.objects {
		_, _, info := f.stored(t, o.key())
		require.Equal(t, before[o.key()].ETag, info.ETag, "dry run changed %s", o.key())
	}

	recs, r = f.runJSON(t, nil, "reencrypt", "-apply")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusReencrypted))
	require.Equal(t, int64(len(f.nonCompliantKeys())), recs.summary.Reencrypted)
	requireNoSecret(t, r, f.keyC, f.oldKeyC)

	// Every object is now under its tenant's encryption, with the same
	// bytes and metadata; compliant objects were not touched.
	for _, o := range f.objects {
		stored, content, info := f.stored(t, o.key())
		require.True(t, bytes.Equal(o.content, content), "%s: content changed", o.key())
		switch o.tenant {
		case "tenant-a":
			require.Equal(t, s3sse.TypeSSEKMS, stored.Type, o.key())
			require.True(t, strings.HasSuffix(stored.KMSKeyID, f.kmsKey), "%s: key %s",
				o.key(), stored.KMSKeyID)
			require.Equal(t, map[string]string{"tenant": "a"}, stored.Context, o.key())
		case "tenant-b":
			require.Equal(t, s3sse.TypeSSES3, stored.Type, o.key())
		case "tenant-c":
			require.Equal(t, s3sse.TypeSSEC, stored.Type, o.key())
			require.Equal(t, keyMD5(f.keyC), stored.CustomerKeyMD5, "%s: not under the current key",
				o.key())
		}
		if o.contentType != "" {
			require.Equal(t, o.contentType, info.ContentType, "%s: content type", o.key())
		}
		for k, v := range o.metadata {
			require.Equal(t, v, info.UserMetadata[k], "%s: metadata %s", o.key(), k)
		}
		if !o.nonCompliant {
			require.Equal(t, before[o.key()].ETag, info.ETag, "%s was compliant but rewritten",
				o.key())
		}
	}

	// Running it again finds nothing left to do.
	recs, r = f.runJSON(t, nil, "reencrypt", "-apply")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Empty(t, recs.objects)
	require.Equal(t, int64(0), recs.summary.Reencrypted)
}

func TestReencryptSkipsAnObjectWrittenConcurrently(t *testing.T) {
	f := newFixture(t)
	f.plant(t)
	const changed = "tenant-a/01HB/index"
	newContent := []byte("written by a concurrent writer after the audit")

	var once sync.Once
	a := &app{beforeCopy: func(tenant, name string) {
		if tenant+"/"+name != changed {
			return
		}
		once.Do(func() {
			// The writer is not s3sse: plain SSE-S3, not the tenant's policy.
			_, err := f.client.PutObject(context.Background(), f.bucket, changed,
				bytes.NewReader(newContent), int64(len(newContent)),
				minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()})
			require.NoError(t, err)
		})
	}}
	recs, r := f.runJSON(t, a, "reencrypt", "-apply")
	require.Equal(t, exitNonCompliant, r.code, "a skipped object remains non-compliant; "+
		"stderr:\n%s", r.stderr)
	require.Equal(t, []string{changed}, recs.keysWith(statusSkipped))
	var wantDone []string
	for _, k := range f.nonCompliantKeys() {
		if k != changed {
			wantDone = append(wantDone, k)
		}
	}
	require.Equal(t, wantDone, recs.keysWith(statusReencrypted))

	// The concurrent write won: its content and encryption are untouched.
	stored, content, _ := f.stored(t, changed)
	require.Equal(t, newContent, content)
	require.Equal(t, s3sse.TypeSSES3, stored.Type)

	// A second run re-encrypts the new version.
	recs, r = f.runJSON(t, nil, "reencrypt", "-apply")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, []string{changed}, recs.keysWith(statusReencrypted))
	_, content, _ = f.stored(t, changed)
	require.Equal(t, newContent, content)
}

func TestReencryptResumesAfterInterruption(t *testing.T) {
	f := newFixture(t)
	f.plant(t)
	total := len(f.nonCompliantKeys())
	const before = 3

	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var done []string
	a := &app{stopping: stopping, afterCopy: func(tenant, name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		require.NoError(t, err)
		done = append(done, tenant+"/"+name)
		if len(done) == before {
			stop() // as the first Ctrl-C does: copies in flight finish, no new ones start
		}
	}}
	recs, r := f.runJSON(t, a, "reencrypt", "-apply", "-concurrency", "1")
	require.Equal(t, exitInterrupted, r.code, "stderr:\n%s", r.stderr)
	require.True(t, recs.summary.Interrupted)
	sort.Strings(done)
	require.Equal(t, done, recs.keysWith(statusReencrypted))
	require.Len(t, done, before)

	recs, r = f.runJSON(t, nil, "reencrypt", "-apply")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	rest := recs.keysWith(statusReencrypted)
	require.Len(t, rest, total-before, "the second run does only what is left")
	require.Equal(t, f.nonCompliantKeys(), sortedUnion(done, rest))

	recs, r = f.runJSON(t, nil, "audit")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	for _, o := range f.objects {
		_, content, _ := f.stored(t, o.key())
		require.True(t, bytes.Equal(o.content, content), "%s: content changed", o.key())
	}
}

func sortedUnion(a, b []string) []string {
	out := append(append([]string{}, a...), b...)
	sort.Strings(out)
	return out
}

func TestAuditProgress(t *testing.T) {
	f := newFixture(t)
	f.plant(t)
	args := func(progress string) []string {
		out := append([]string{"audit"}, f.args...)
		return append(out, "-progress", progress) // the last -progress wins
	}

	// On a terminal, auto draws a bar on stderr and clears it at the end.
	defer func(d time.Duration) { barInterval = d }(barInterval)
	barInterval = time.Millisecond
	a := &app{terminal: func(io.Writer) bool { return true }}
	r := runApp(t, context.Background(), a, args("auto")...)
	require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
	require.Contains(t, r.stderr, "\r\x1b[K[")
	require.True(t, strings.HasSuffix(r.stderr, "\r\x1b[K"), "the bar is not cleared:\n%q",
		r.stderr)

	// Elsewhere, auto prints a plain line per tenant.
	r = runApp(t, context.Background(), &app{}, args("auto")...)
	require.NotContains(t, r.stderr, "\x1b")
	for _, tenant := range []string{"tenant-a", "tenant-b", "tenant-c"} {
		require.Contains(t, r.stderr, "audit: tenant "+tenant+": ")
	}
	require.Contains(t, r.stdout, "NON-COMPLIANT    tenant-a/01HB/index")
	require.Regexp(t, `tenant-a\s+SSE-KMS key=`+f.kmsKey+` context=\{"tenant":"a"\}\s+7\s+`,
		r.stdout)

	r = runApp(t, context.Background(), &app{}, args("off")...)
	require.Empty(t, r.stderr)
}

// requestHook is a transport that calls before ahead of every request.
type requestHook struct {
	next   http.RoundTripper
	before func(*http.Request)
}

func (h requestHook) RoundTrip(req *http.Request) (*http.Response, error) {
	h.before(req)
	return h.next.RoundTrip(req)
}

// isPartCopy and isCompletion tell the requests of a multipart copy apart.
func isPartCopy(req *http.Request) bool {
	return req.Method == http.MethodPut && req.URL.Query().Has("partNumber") &&
		req.Header.Get("X-Amz-Copy-Source") != ""
}

func isCompletion(req *http.Request) bool {
	return req.Method == http.MethodPost && req.URL.Query().Has("uploadId")
}

// plantLarge writes objects above the 5 MiB copy part size the tests set:
// one to move from SSE-S3 to SSE-KMS, with metadata, and one from tenant-c's
// previous SSE-C key to its current one.
func (f *fixture) plantLarge(t *testing.T) (kms, ssecObj *plantedObject) {
	t.Helper()
	kms = &plantedObject{tenant: "tenant-a", name: "01HL/chunks/000001", nonCompliant: true,
		content: randomBytes(t, 12<<20+7), sse: encrypt.NewSSE(),
		contentType: "application/x-tsdb-chunk", metadata: map[string]string{"Origin": "ingester-3"}}
	ssecObj = &plantedObject{tenant: "tenant-c", name: "01HL/chunks/000001", nonCompliant: true,
		content: randomBytes(t, 11<<20+1), sse: ssec(t, f.oldKeyC)}
	f.put(t, kms)
	f.put(t, ssecObj)
	return kms, ssecObj
}

func TestReencryptCopiesLargeObjectsPartByPart(t *testing.T) {
	f := newFixture(t)
	kms, ssecObj := f.plantLarge(t)

	var mu sync.Mutex
	partCopies := map[string]int{}
	a := &app{wrapTransport: func(next http.RoundTripper) http.RoundTripper {
		return requestHook{next: next, before: func(req *http.Request) {
			if isPartCopy(req) {
				mu.Lock()
				partCopies[strings.TrimPrefix(req.URL.Path, "/"+f.bucket+"/")]++
				mu.Unlock()
				require.NotEmpty(t, req.Header.Get("X-Amz-Copy-Source-If-Match"),
					"part copy without the ETag condition")
			}
		}}
	}}
	recs, r := f.runJSON(t, a, "reencrypt", "-apply",
		"-copy-part-size", "5MiB")
	require.Equal(t, exitOK, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, f.nonCompliantKeys(), recs.keysWith(statusReencrypted))
	require.Equal(t, map[string]int{kms.key(): 3, ssecObj.key(): 3}, partCopies,
		"each object is copied in 5 MiB parts")

	stored, content, info := f.stored(t, kms.key())
	require.True(t, bytes.Equal(kms.content, content), "%s: content changed", kms.key())
	require.Equal(t, s3sse.TypeSSEKMS, stored.Type)
	require.Equal(t, map[string]string{"tenant": "a"}, stored.Context)
	require.Equal(t, kms.contentType, info.ContentType)
	require.Equal(t, "ingester-3", info.UserMetadata["Origin"])

	stored, content, _ = f.stored(t, ssecObj.key())
	require.True(t, bytes.Equal(ssecObj.content, content), "%s: content changed", ssecObj.key())
	require.Equal(t, keyMD5(f.keyC), stored.CustomerKeyMD5, "not under tenant-c's current key")

	requireNoUploadsLeft(t, f)
}

func TestReencryptLargeObjectLosesToAConcurrentWrite(t *testing.T) {
	tests := []struct {
		name string
		// writeBefore picks the request ahead of which the concurrent write
		// lands.
		writeBefore func(*http.Request) bool
	}{
		{"write between two part copies", func(req *http.Request) bool {
			return isPartCopy(req) && req.URL.Query().Get("partNumber") == "2"
		}},
		{"write after the last part, before completion", isCompletion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			kms, _ := f.plantLarge(t)
			newContent := []byte("a compactor rewrote this block while it was being copied")

			var once sync.Once
			a := &app{wrapTransport: func(next http.RoundTripper) http.RoundTripper {
				return requestHook{next: next, before: func(req *http.Request) {
					if !strings.HasSuffix(req.URL.Path, "/"+kms.key()) || !tt.writeBefore(req) {
						return
					}
					once.Do(func() {
						_, err := f.client.PutObject(context.Background(), f.bucket, kms.key(),
							bytes.NewReader(newContent), int64(len(newContent)),
							minio.PutObjectOptions{})
						require.NoError(t, err)
					})
				}}
			}}
			recs, r := f.runJSON(t, a, "reencrypt", "-apply",
				"-copy-part-size", "5MiB", "-concurrency", "1")
			require.Equal(t, exitNonCompliant, r.code, "stderr:\n%s", r.stderr)
			require.Equal(t, []string{kms.key()}, recs.keysWith(statusSkipped))

			// The concurrent write is what the object holds, as written.
			stored, content, _ := f.stored(t, kms.key())
			require.Equal(t, newContent, content)
			require.Equal(t, s3sse.TypeNone, stored.Type)
			requireNoUploadsLeft(t, f)
		})
	}
}

// requireNoUploadsLeft fails if a multipart upload was left unfinished.
func requireNoUploadsLeft(t *testing.T, f *fixture) {
	t.Helper()
	for u := range f.client.ListIncompleteUploads(context.Background(), f.bucket, "", true) {
		require.NoError(t, u.Err)
		t.Errorf("multipart upload of %s left behind", u.Key)
	}
}

func TestByteSizeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		// wantErr says the input must be refused.
		wantErr bool
	}{
		{"5MiB", 5 << 20, false},
		{"5 GiB", 5 << 30, false},
		{"1048576", 1 << 20, false},
		{"12B", 12, false},
		{"5MB", 0, true},
		{"-1", 0, true},
		{"lots", 0, true},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if tt.wantErr {
			require.Error(t, err, "input %q", tt.in)
			continue
		}
		require.NoError(t, err, "input %q", tt.in)
		require.Equal(t, tt.want, int64(b), "input %q", tt.in)
	}
	b := byteSize(5 << 30)
	require.Equal(t, "5GiB", b.String())
}

func TestReencryptStopsATenantWhoseKMSKeyDoesNotExist(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.put(t, &plantedObject{tenant: "tenant-x", name: fmt.Sprintf("block/%d", i),
			sse: encrypt.NewSSE(), content: []byte("x"), nonCompliant: true})
	}
	f.put(t, &plantedObject{tenant: "tenant-b", name: "plain", content: []byte("b"),
		nonCompliant: true})
	rt := writeFile(t, f.dir, "runtime-x.yaml", `
overrides:
  tenant-x:
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: s3sse-no-such-key
`)
	var copies int
	a := &app{afterCopy: func(tenant, _ string, _ error) {
		if tenant == "tenant-x" {
			copies++
		}
	}}
	recs, r := f.runJSON(t, a, "reencrypt", "-apply", "-concurrency", "1",
		"-runtime-config.file", rt)
	require.Equal(t, exitError, r.code, "stderr:\n%s", r.stderr)
	require.Equal(t, 1, copies, "after the first KMS key error, no more copies are sent")
	require.Contains(t, recs.tenants["tenant-x"].Error,
		`its KMS key "s3sse-no-such-key" does not exist`)
	require.Equal(t, []string{"tenant-b/plain"}, recs.keysWith(statusReencrypted),
		"other tenants go on")
}
