package s3sse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse/internal/s3test"
)

// TestSecretsNeverPrinted, beside the sse block's tests, covers the block's
// Config, its Encryption and SSE-C keys through every fmt verb and encoder.
// The tests below cover everything else that can print: the runtime config
// and its status, overrides, resolvers, key files that go bad while the
// process runs, the logs of all of them, and the bucket's errors and logs
// against a real server, for SSE-C keys and the S3 secret access key alike.

// secretOutputs collects what the library printed, logged or encoded, to
// be searched for secrets at the end of a test.
type secretOutputs struct {
	mu sync.Mutex // guards b against loggers of other goroutines
	b  strings.Builder
}

// dump adds v as every fmt verb and the JSON and YAML encoders print it.
func (o *secretOutputs) dump(name string, v any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&o.b, "%s %s: "+verb+"\n", name, verb, v)
	}
	if b, err := json.Marshal(v); err == nil {
		fmt.Fprintf(&o.b, "%s JSON: %s\n", name, b)
	}
	if b, err := yaml.Marshal(v); err == nil {
		fmt.Fprintf(&o.b, "%s YAML: %s\n", name, b)
	}
	if err, ok := v.(error); ok {
		fmt.Fprintf(&o.b, "%s Error: %s\n", name, err.Error())
	}
}

// logger returns a go-kit logger that writes into the outputs as logfmt
// and as JSON, the two formats hosts log in.
func (o *secretOutputs) logger() log.Logger {
	w := lockedWriter{mu: &o.mu, w: &o.b}
	logfmt, jsonl := log.NewLogfmtLogger(w), log.NewJSONLogger(w)
	return log.LoggerFunc(func(kv ...any) error {
		_ = logfmt.Log(kv...)
		return jsonl.Log(kv...)
	})
}

// requireNone checks that no secret appears in any output, in any of the
// renderings requireNoSecret knows.
func (o *secretOutputs) requireNone(t *testing.T, secrets map[string][]byte) {
	t.Helper()
	out := o.String()
	for name, s := range secrets {
		t.Run("no "+name, func(t *testing.T) { requireNoSecret(t, out, s) })
	}
}

func (o *secretOutputs) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// lockedWriter lets loggers of concurrent goroutines share a builder.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// badKeyContents are key files that hold most or all of a key's bytes
// but no valid key: what a key file caught half-rotated, or written in the
// wrong encoding, holds. An error that quoted the content would leak it.
func badKeyContents(key []byte) map[string][]byte {
	b64 := base64.StdEncoding.EncodeToString(key)
	return map[string][]byte{
		"raw key and a newline": append(bytes.Clone(key), '\n'),
		"raw key twice":         append(bytes.Clone(key), key...),
		"hex":                   []byte(hex.EncodeToString(key) + "\n"),
		"base64 and junk":       []byte(b64[:len(b64)-1] + "!\n"),
		"base64 cut short":      []byte(b64[:40]),
		"raw key less a byte":   key[:31],
	}
}

func TestSecretsNeverPrintedByRuntimeConfigOrResolver(t *testing.T) {
	var (
		blockKey, blockPrevious   = newKey(t), newKey(t)
		tenantKey, tenantPrevious = newKey(t), newKey(t)
		rotatedKey                = newKey(t)
		out                       secretOutputs
	)
	blockKeyFile := writeFile(t, "block.key", []byte(base64.StdEncoding.EncodeToString(blockKey)+"\n"))
	blockPreviousFile := writeFile(t, "block-previous.key", blockPrevious)
	tenantKeyFile := writeFile(t, "tenant.key", tenantKey)
	tenantPreviousFile := writeFile(t, "tenant-previous.key",
		[]byte(base64.RawURLEncoding.EncodeToString(tenantPrevious)))

	var block Config
	var rcc RuntimeConfigConfig
	fs := flag.NewFlagSet("secrets", flag.ContinueOnError)
	block.RegisterFlagsWithPrefix("blocks-storage.", fs)
	rcc.RegisterFlagsWithPrefix("runtime-config.", fs)
	block.Type = TypeSSEC
	block.CustomerKeyFile = blockKeyFile
	block.CustomerPreviousKeyFiles = []string{blockPreviousFile}

	runtimeYAML := fmt.Sprintf(`overrides:
  tenant-c:
    s3_sse_type: SSE-C
    s3_sse_customer_key_file: %s
    s3_sse_customer_previous_key_files: [%s]
  tenant-k:
    # SSE-KMS that still names its old SSE-C key for reads: a warning
    s3_sse_type: SSE-KMS
    s3_sse_customer_key_file: %s
`, tenantKeyFile, tenantPreviousFile, tenantPreviousFile)
	rcc.Files = []string{runtimeFile(t, runtimeYAML)}
	rcc.ReloadPeriod = 0

	rc, err := NewRuntimeConfig(context.Background(), rcc, nil, out.logger())
	require.NoError(t, err)
	t.Cleanup(rc.Stop)
	r, err := NewResolverWithOptions(block, rc, &ResolverOptions{Logger: out.logger()})
	require.NoError(t, err)

	// Everything a host might print while all is well.
	c, err := r.Encryption("tenant-c")
	require.NoError(t, err)
	k, err := r.Encryption("tenant-k")
	require.NoError(t, err)
	override, ok := rc.Override("tenant-c")
	require.True(t, ok)
	for name, v := range map[string]any{
		"Config": block, "*Config": &block, "RuntimeConfigConfig": rcc, "*RuntimeConfigConfig": &rcc,
		"TenantOverride": override, "Encryption of tenant-c": c, "Encryption of tenant-k": k,
		"ServerSide of tenant-c": c.ServerSide(), "Default": r.Default(), "*Resolver": r,
		"*RuntimeConfig": rc, "status": rc.Status(),
	} {
		out.dump(name, v)
	}

	// Each tenant key file goes bad in turn: every reload is rejected and
	// logged, and the status keeps the error.
	for name, content := range badKeyContents(tenantKey) {
		rewrite(t, tenantKeyFile, string(content))
		err := rc.Reload()
		require.Error(t, err, "tenant key file %s", name)
		require.ErrorIs(t, err, ErrInvalidCustomerKey, "tenant key file %s", name)
		out.dump("reload error, tenant key file "+name, err)
		out.dump("status, tenant key file "+name, rc.Status())
	}
	// The block's key file goes bad: the reload refreshes it and logs.
	rewrite(t, tenantKeyFile, string(rotatedKey))
	for name, content := range badKeyContents(blockKey) {
		rewrite(t, blockKeyFile, string(content))
		require.NoError(t, rc.Reload(), "the block's key files do not fail a reload")
		_, err := block.Encryption()
		require.ErrorIs(t, err, ErrInvalidCustomerKey, "block key file %s", name)
		out.dump("block error, key file "+name, err)
		out.dump("Default, block key file "+name, r.Default())
	}

	// A host-supplied provider whose tenant's key file is bad, and then
	// rotated to a good key.
	host := newHostLimits(map[string]TenantOverride{
		"tenant-h": {Type: TypeSSEC, CustomerKeyFile: blockKeyFile},
	})
	hr, err := NewResolverWithOptions(Config{}, host, &ResolverOptions{Logger: out.logger(),
		KeyFileRefresh: time.Nanosecond})
	require.NoError(t, err)
	_, err = hr.Encryption("tenant-h")
	require.Error(t, err)
	out.dump("host resolver error", err)
	rewrite(t, blockKeyFile, string(blockKey))
	h, err := hr.Encryption("tenant-h")
	require.NoError(t, err)
	out.dump("host resolver Encryption", h)

	logged := out.String()
	require.Contains(t, logged, "last good config stays in force", "the rejected reloads were logged")
	require.Contains(t, logged, tenantKeyFile, "the logs and errors name the bad key file")
	require.Contains(t, logged, md5b64(tenantKey), "the outputs identify keys by MD5")
	out.requireNone(t, map[string][]byte{
		"block key": blockKey, "block previous key": blockPrevious, "tenant key": tenantKey,
		"tenant previous key": tenantPrevious, "rotated key": rotatedKey,
	})
}

func TestSecretsNeverPrintedByBucket(t *testing.T) {
	srv := s3test.Shared(t)
	if !srv.Secure() {
		t.Skip("SSE-C needs a TLS server; this one speaks plain HTTP")
	}
	accessKey, secretKey := srv.Credentials()
	wrongSecret := "wrong-" + secretKey
	keyA, keyB := newKey(t), newKey(t)
	keyFileA := writeFile(t, "a.key", keyA)
	keyFileB := writeFile(t, "b.key", []byte(base64.StdEncoding.EncodeToString(keyB)))

	var out secretOutputs
	host := newHostLimits(map[string]TenantOverride{
		"tenant-c": {Type: TypeSSEC, CustomerKeyFile: keyFileA},
	})
	r, err := NewResolverWithOptions(Config{}, host, &ResolverOptions{Logger: out.logger()})
	require.NoError(t, err)
	newBucket := func(client *minio.Client, name string) *Bucket {
		b, err := NewBucket(client, name, r, &BucketOptions{TenantPrefix: true, Logger: out.logger()})
		require.NoError(t, err)
		return b
	}
	name := srv.NewBucket(t)
	bucket := newBucket(srv.Client(t), name)
	tenant, err := bucket.Tenant("tenant-c")
	require.NoError(t, err)
	ctx := context.Background()

	require.NoError(t, tenant.Upload(ctx, "obj", strings.NewReader("under key A")))
	attrs, err := tenant.Attributes(ctx, "obj")
	require.NoError(t, err)
	require.Equal(t, md5b64(keyA), attrs.Encryption.CustomerKeyMD5)
	out.dump("attributes", attrs)

	// The tenant's key changes with no previous key: reads of the object
	// fail, naming the tenant but no key.
	host.set("tenant-c", TenantOverride{Type: TypeSSEC, CustomerKeyFile: keyFileB})
	_, err = tenant.Get(ctx, "obj")
	require.Error(t, err, "read under the wrong key")
	require.True(t, IsCustomerKeyMismatch(err), "IsCustomerKeyMismatch(%v)", err)
	out.dump("get under the wrong key", err)
	_, err = tenant.Attributes(ctx, "obj")
	require.Error(t, err)
	out.dump("attributes under the wrong key", err)
	err = tenant.Copy(ctx, "obj", "copy")
	require.Error(t, err)
	out.dump("copy under the wrong key", err)

	// A client whose secret access key is wrong.
	opts := srv.ClientOptions()
	opts.Creds = credentials.NewStaticV4(accessKey, wrongSecret, "")
	opts.MaxRetries = 1
	wrongClient, err := minio.New(srv.Endpoint(), opts)
	require.NoError(t, err)
	wrong, err := newBucket(wrongClient, name).Tenant("tenant-c")
	require.NoError(t, err)
	err = wrong.Upload(ctx, "denied", strings.NewReader("x"))
	require.Error(t, err, "upload with a wrong secret access key")
	out.dump("upload with a wrong secret", err)
	_, err = wrong.Get(ctx, "obj")
	require.Error(t, err)
	out.dump("get with a wrong secret", err)

	// A plain-HTTP endpoint: the key is refused before anything is sent.
	plainOpts := srv.ClientOptions()
	plainOpts.Secure = false
	plainClient, err := minio.New("127.0.0.1:9", plainOpts)
	require.NoError(t, err)
	plain, err := newBucket(plainClient, name).Tenant("tenant-c")
	require.NoError(t, err)
	err = plain.Upload(ctx, "never", strings.NewReader("x"))
	require.ErrorIs(t, err, ErrCustomerKeyNeedsTLS)
	out.dump("upload over plain HTTP", err)

	require.Contains(t, out.String(), "tenant-c", "the errors name the tenant")
	out.requireNone(t, map[string][]byte{
		"key A": keyA, "key B": keyB, "secret access key": []byte(secretKey),
		"wrong secret access key": []byte(wrongSecret),
	})
}

// TestSecretsNeverInKeyFileErrors reads each bad key file through every
// path that reads key files, the sse block, an override built by a
// RuntimeConfig at its first load and a host's override, and searches the
// errors for the key.
func TestSecretsNeverInKeyFileErrors(t *testing.T) {
	key := newKey(t)
	for name, content := range badKeyContents(key) {
		t.Run(name, func(t *testing.T) {
			file := writeFile(t, "bad.key", content)
			var out secretOutputs

			block := Config{Type: TypeSSEC, CustomerKeyFile: writeFile(t, "good.key", newKey(t)),
				CustomerPreviousKeyFiles: []string{file}}
			_, err := block.Encryption()
			require.ErrorIs(t, err, ErrInvalidCustomerKey)
			out.dump("sse block", err)

			runtime := runtimeFile(t, "overrides:\n  t:\n    s3_sse_type: SSE-C\n"+
				"    s3_sse_customer_key_file: "+file+"\n")
			_, err = NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{runtime}},
				nil, out.logger())
			require.ErrorIs(t, err, ErrInvalidCustomerKey)
			out.dump("first load", err)

			host := newHostLimits(map[string]TenantOverride{"t": {Type: TypeSSEC, CustomerKeyFile: file}})
			hr, err := NewResolverWithOptions(Config{}, host, &ResolverOptions{Logger: out.logger()})
			require.NoError(t, err)
			_, err = hr.Encryption("t")
			require.ErrorIs(t, err, ErrInvalidCustomerKey)
			out.dump("host override", err)

			require.Contains(t, out.String(), file, "the errors name the file")
			require.Contains(t, out.String(), fmt.Sprintf("holds %d bytes", len(content)),
				"the errors say what is wrong with it")
			out.requireNone(t, map[string][]byte{"key": key})
		})
	}
}
