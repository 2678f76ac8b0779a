package s3sse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The fuzz targets of this file feed the library what an operator or a
// tenant can write: the sse block, runtime config files and tenant IDs.
// FuzzEncryptionContext, beside the context parser's tests, covers the KMS
// context text itself; FuzzScanPlainYAML, beside the runtime config's
// tests, that both of its readers agree. Inputs that once failed are kept
// under testdata/fuzz/<target>, where `go test` runs them every time.

// fuzzFlagPrefix is the prefix the fuzzed sse block's flags are
// registered under, so that errors can be checked for the flag's name.
const fuzzFlagPrefix = "blocks-storage."

// sseBlockKeys are the YAML keys of the sse block, as errors name them.
var sseBlockKeys = []string{"sse.type", "sse.kms_key_id", "sse.kms_encryption_context",
	"sse.customer_key_file", "sse.customer_previous_key_files"}

// fuzzKeyFile stands for the file system in the sse block target: every
// file holds a key derived from its name, except names containing "bad",
// which cannot be read. No real file is read, whatever the input names.
func fuzzKeyFile(name string) ([]byte, error) {
	if strings.Contains(name, "bad") {
		return nil, fmt.Errorf("open %s: permission denied", name)
	}
	sum := sha256.Sum256([]byte(name))
	return sum[:], nil
}

// FuzzSSEBlockYAML decodes an sse block as a host does (strictly, after
// registering the flags), validates it and builds its headers. Nothing
// panics; a refused block is a *ConfigError naming a key of the block and
// its flag; an accepted block builds, sends headers an HTTP request can
// carry and S3 expects for its type, and survives a YAML dump and reload.
func FuzzSSEBlockYAML(f *testing.F) {
	for _, name := range []string{"sse-string-context.yaml", "sse-mapping-context.yaml",
		"sse-misspelled-key.yaml", "cortex-components.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "config", name))
		require.NoError(f, err)
		f.Add(b)
	}
	for _, seed := range []string{
		"", "{}", "type: SSE-S3\n", "type: SSE-KMS\nkms_key_id: alias/a\n",
		"type: DSSE-KMS\nkms_key_id: k\nkms_encryption_context: {a: b}\n",
		"type: SSE-C\ncustomer_key_file: /etc/k\ncustomer_previous_key_files: [/a, /b]\n",
		"type: SSE-C\n", "type: SSE-C\ncustomer_key_file: bad\n", "type: sse-s3\n",
		"type: SSE-KMS\nkms_encryption_context: '{\"aws:x\":\"y\"}'\n",
		"type: SSE-KMS\nkms_encryption_context: null\n",
		"type: SSE-KMS\nkms_encryption_context: [a]\n",
		"type: SSE-KMS\nkms_encryption_context: {a: [b]}\n",
		"type: SSE-KMS\nkms_encryption_context: &c {a: b}\n",
		"kms_key_id: x\ntype: \"\"\n", "type: [SSE-S3]\n", "type: !!binary U1NFLVMz\n",
		"kms_key_id: \"a\\nb\"\ntype: SSE-KMS\n", "type: SSE-KMS\nkms_key_id: \" k \"\n",
		"customer_previous_key_files: a,b\n", "unknown: 1\n", "type: SSE-S3\ntype: SSE-KMS\n",
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeFuzzBlock(data)
		if err != nil {
			return // yaml.v3 refused it; that it did not panic is the check
		}
		_ = c.String()
		_ = c.settings().warnings()

		if err := c.Validate(); err != nil {
			requireNamesKey(t, err, data)
			_, buildErr := c.settings().build(fuzzKeyFile)
			require.Equal(t, err, buildErr, "Validate and Encryption disagree; input %q", data)
			return
		}

		e, err := c.settings().build(fuzzKeyFile)
		if err != nil {
			// Only a key file can fail once Validate passed.
			requireNamesKey(t, err, data)
			require.ErrorIs(t, err, ErrInvalidCustomerKey, "input %q", data)
			return
		}
		requireHeadersFor(t, c, e, data)
		requireDumpRoundTrips(t, c, data)
	})
}

func decodeFuzzBlock(data []byte) (Config, error) {
	var c Config
	c.RegisterFlagsWithPrefix(fuzzFlagPrefix, flag.NewFlagSet("fuzz", flag.ContinueOnError))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	if err != nil && err.Error() == "EOF" {
		err = nil // an empty document leaves the defaults, as hosts take it
	}
	return c, err
}

// requireNamesKey checks that err is a *ConfigError naming a key of the
// sse block and its flag.
func requireNamesKey(t *testing.T, err error, input []byte) {
	t.Helper()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce, "input %q: error %v", input, err)
	require.ErrorIs(t, err, ErrInvalidConfig, "input %q", input)
	require.Contains(t, sseBlockKeys, ce.Key, "input %q: error %v", input, err)
	msg := err.Error()
	require.Contains(t, msg, ce.Key, "input %q", input)
	require.Contains(t, msg, "-"+fuzzFlagPrefix+"s3.", "input %q: the error names no flag: %s",
		input, msg)
}

// requireHeadersFor checks the headers e sends against what S3 expects for
// the block's type.
func requireHeadersFor(t *testing.T, c Config, e *Encryption, input []byte) {
	t.Helper()
	h := http.Header{}
	if sse := e.ServerSide(); sse != nil {
		sse.Marshal(h)
	}
	for name, values := range h {
		for _, v := range values {
			require.True(t, validHeaderValue(v),
				"input %q: header %s %q cannot be sent in an HTTP request", input, name, v)
		}
	}
	require.Equal(t, c.Type, e.Type(), "input %q", input)

	sseHeader := h.Get("X-Amz-Server-Side-Encryption")
	switch c.Type {
	case TypeNone:
		require.Empty(t, h, "input %q: no SSE sends no header", input)
	case TypeSSES3:
		require.Equal(t, http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}, h, "input %q", input)
	case TypeSSEKMS, TypeDSSEKMS:
		want := map[SSEType]string{TypeSSEKMS: "aws:kms", TypeDSSEKMS: "aws:kms:dsse"}[c.Type]
		require.Equal(t, want, sseHeader, "input %q", input)
		require.Equal(t, c.KMSKeyID, h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"),
			"input %q", input)

		ctx, err := c.KMSEncryptionContext.Parse()
		require.NoError(t, err, "input %q", input)
		sent := h.Get("X-Amz-Server-Side-Encryption-Context")
		if ctx == nil {
			require.Empty(t, sent, "input %q: an empty context sends no header", input)
			break
		}
		raw, err := base64.StdEncoding.DecodeString(sent)
		require.NoError(t, err, "input %q: context header %q", input, sent)
		require.Equal(t, string(canonicalContext(ctx)), string(raw), "input %q", input)
	case TypeSSEC:
		key, _ := fuzzKeyFile(c.CustomerKeyFile)
		require.Equal(t, "AES256", h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm"),
			"input %q", input)
		require.Equal(t, base64.StdEncoding.EncodeToString(key),
			h.Get("X-Amz-Server-Side-Encryption-Customer-Key"), "input %q", input)
		require.Empty(t, sseHeader, "input %q", input)
	}
}

// validHeaderValue reports whether v can be a field value of an HTTP/1.1
// request: no control characters but horizontal tab (RFC 9110, 5.5), the
// rule Go's HTTP client enforces before sending.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// requireDumpRoundTrips dumps the block as a host's config endpoint does
// and decodes the dump: it must give the same settings.
func requireDumpRoundTrips(t *testing.T, c Config, input []byte) {
	t.Helper()
	dump, err := yaml.Marshal(c)
	require.NoError(t, err, "input %q", input)
	back, err := decodeFuzzBlock(dump)
	require.NoError(t, err, "input %q: dump:\n%s", input, dump)
	require.NoError(t, back.Validate(), "input %q: dump:\n%s", input, dump)

	require.Equal(t, c.Type, back.Type, "input %q: dump:\n%s", input, dump)
	require.Equal(t, c.KMSKeyID, back.KMSKeyID, "input %q: dump:\n%s", input, dump)
	require.Equal(t, c.CustomerKeyFile, back.CustomerKeyFile, "input %q: dump:\n%s", input, dump)
	require.Equal(t, len(c.CustomerPreviousKeyFiles), len(back.CustomerPreviousKeyFiles),
		"input %q: dump:\n%s", input, dump)
	require.True(t, slices.Equal(c.CustomerPreviousKeyFiles, back.CustomerPreviousKeyFiles),
		"input %q: dump:\n%s", input, dump)
	want, _ := c.KMSEncryptionContext.Parse()
	got, _ := back.KMSEncryptionContext.Parse()
	require.Equal(t, want, got, "input %q: dump:\n%s", input, dump)
}

// fuzzKeyDir holds the key files FuzzRuntimeConfigFile's seeds name: a raw
// key (a.key), a base64 key (b.key) and a file that holds no key (bad.key).
// They are test keys that protect nothing.
const fuzzKeyDir = "testdata/fuzzkeys/"

// FuzzRuntimeConfigFile loads a runtime config file as RuntimeConfig does.
// Nothing panics; a refused file gives errors naming the file; an accepted
// one resolves every tenant to its override (or the sse block without
// one), and a file written back from the overrides in force loads to the
// same overrides and headers.
func FuzzRuntimeConfigFile(f *testing.F) {
	for _, name := range []string{"cortex-runtime.yaml", "plain-overrides.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "runtime", name))
		require.NoError(f, err)
		f.Add(b)
	}
	for _, seed := range []string{
		"", "overrides:\n", "overrides: {}\n", "overrides:\n  a:\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-S3\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-KMS\n    s3_sse_kms_key_id: k\n" +
			"    s3_sse_kms_encryption_context: '{\"t\":\"a\"}'\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-KMS\n" +
			"    s3_sse_kms_encryption_context: {t: a, u: \"1\"}\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-C\n" +
			"    s3_sse_customer_key_file: " + fuzzKeyDir + "a.key\n" +
			"    s3_sse_customer_previous_key_files: [" + fuzzKeyDir + "b.key]\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-C\n" +
			"    s3_sse_customer_key_file: " + fuzzKeyDir + "bad.key\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-C\n    s3_sse_customer_key_file: go.mod\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-KMS\n    s3_sse_customer_previous_key_files: " +
			fuzzKeyDir + "a.key," + fuzzKeyDir + "b.key\n",
		"overrides:\n  a: &x\n    s3_sse_type: SSE-S3\n  b:\n    <<: *x\n    s3_sse_kms_key_id: k\n",
		"overrides:\n  a:\n    s3_sse_typo: SSE-S3\n", "overrides:\n  a:\n    S3-SSE-Type: SSE-S3\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-S3\n  a:\n    s3_sse_type: SSE-KMS\n",
		"overrides:\n  a:\n    s3_sse_type: [SSE-S3]\n", "overrides: [a]\n", "- a\n",
		"overrides:\n  \"a/b\":\n    s3_sse_type: SSE-S3\n",
		"overrides:\n  ~:\n    s3_sse_type: SSE-S3\n",
		"overrides:\n  a:\n    s3_sse_type: SSE-S3\n    s3_sse_type: SSE-KMS\n",
		"multi_kv_config: {a: 1}\noverrides:\n  'x''y':\n    s3_sse_type: \"SSE-S3\" # c\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "runtime.yaml"
		parser := &RuntimeConfig{files: []string{file}}
		tenants, order, err := parser.parse([][]byte{data})
		if err != nil {
			requireNamesFile(t, err, file, data)
			return
		}
		if !loadsSafely(tenants) {
			return
		}

		path := filepath.Join(t.TempDir(), file)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		rc, loadErr := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{path}},
			nil, nil)

		// The load is refused exactly when some tenant's override is invalid.
		var buildErr error
		for _, id := range order {
			o := tenants[id].override
			if o.Type == "" {
				continue
			}
			if _, err := o.settings(id, path).build(nil); err != nil {
				buildErr = err
				break
			}
		}
		if buildErr != nil {
			require.Error(t, loadErr, "input %q: accepted, but tenant overrides fail: %v", data, buildErr)
			requireNamesFile(t, loadErr, path, data)
			return
		}
		require.NoError(t, loadErr, "input %q", data)
		t.Cleanup(rc.Stop)

		headers := requireResolvesToOverrides(t, rc, tenants, order, data)
		requireRewriteLoadsTheSame(t, rc, order, headers, data)
	})
}

// loadsSafely reports whether every key file the overrides name is inside
// the package directory, where the tests run: a name outside it could be
// /dev/zero or a FIFO, which no key file of a real config is.
func loadsSafely(tenants map[string]*tenantEntry) bool {
	for _, t := range tenants {
		for _, f := range t.override.keyFiles() {
			if !filepath.IsLocal(f) {
				return false
			}
		}
	}
	return true
}

// requireNamesFile checks that every error of a refused load names the file.
func requireNamesFile(t *testing.T, err error, file string, input []byte) {
	t.Helper()
	for _, e := range unjoin(err) {
		if strings.HasPrefix(e.Error(), "and ") { // joinErrors' "and N more problems"
			continue
		}
		require.Contains(t, e.Error(), file, "input %q: the error names no file", input)
		var ce *ConfigError
		if errors.As(e, &ce) {
			require.NotEmpty(t, ce.Key, "input %q: error %v", input, e)
			require.Contains(t, e.Error(), ce.Key, "input %q", input)
		}
	}
}

// requireResolvesToOverrides checks that a Resolver over rc gives each
// tenant the headers its merged override builds to, or the sse block's
// when it sets no type, and returns each tenant's headers.
func requireResolvesToOverrides(t *testing.T, rc *RuntimeConfig, tenants map[string]*tenantEntry,
	order []string, input []byte) map[string]http.Header {
	t.Helper()
	r, err := NewResolver(Config{Type: TypeSSES3}, rc, nil)
	require.NoError(t, err)

	headers := make(map[string]http.Header, len(order))
	for _, id := range order {
		want := tenants[id].override
		got, ok := rc.Override(id)
		require.True(t, ok, "input %q: tenant %q lost", input, id)
		require.True(t, want.equal(&got), "input %q: tenant %q: override %+v, want %+v",
			input, id, got, want)

		e, err := r.Encryption(id)
		require.NoError(t, err, "input %q: tenant %q", input, id)
		wantEnc := r.Default()
		if want.Type != "" {
			wantEnc, err = want.settings(id, "").build(nil)
			require.NoError(t, err, "input %q: tenant %q", input, id)
		}
		h := marshalled(e)
		require.Equal(t, marshalled(wantEnc), h, "input %q: tenant %q resolves to %s", input, id, e)
		headers[id] = h
	}
	return headers
}

func marshalled(e *Encryption) http.Header {
	h := http.Header{}
	if sse := e.ServerSide(); sse != nil {
		sse.Marshal(h)
	}
	return h
}

// requireRewriteLoadsTheSame writes the overrides in force back as a file
// of its own, in double-quoted YAML, and loads it: every tenant must get
// the same override and headers.
func requireRewriteLoadsTheSame(t *testing.T, rc *RuntimeConfig, order []string,
	headers map[string]http.Header, input []byte) {
	t.Helper()
	quoted := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: s}
	}
	overrides := &yaml.Node{Kind: yaml.MappingNode}
	for _, id := range order {
		o, _ := rc.Override(id)
		limits := &yaml.Node{Kind: yaml.MappingNode}
		add := func(key, value string) {
			if value != "" {
				limits.Content = append(limits.Content, quoted(key), quoted(value))
			}
		}
		add("s3_sse_type", string(o.Type))
		add("s3_sse_kms_key_id", o.KMSKeyID)
		add("s3_sse_kms_encryption_context", string(o.KMSEncryptionContext))
		add("s3_sse_customer_key_file", o.CustomerKeyFile)
		if len(o.CustomerPreviousKeyFiles) > 0 {
			files := &yaml.Node{Kind: yaml.SequenceNode}
			for _, f := range o.CustomerPreviousKeyFiles {
				files.Content = append(files.Content, quoted(f))
			}
			limits.Content = append(limits.Content, quoted("s3_sse_customer_previous_key_files"), files)
		}
		overrides.Content = append(overrides.Content, quoted(id), limits)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{quoted("overrides"), overrides}}
	out, err := yaml.Marshal(doc)
	require.NoError(t, err, "input %q", input)

	path := filepath.Join(t.TempDir(), "rewritten.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	back, err := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{path}},
		nil, nil)
	require.NoError(t, err, "input %q: rewritten:\n%s", input, out)
	t.Cleanup(back.Stop)
	require.Equal(t, rc.Status().Tenants, back.Status().Tenants, "input %q: rewritten:\n%s",
		input, out)

	r, err := NewResolver(Config{Type: TypeSSES3}, back, nil)
	require.NoError(t, err)
	for _, id := range order {
		want, _ := rc.Override(id)
		got, _ := back.Override(id)
		// A tenant whose limits set no s3_sse key is not written back.
		require.True(t, want.equal(&got), "input %q: tenant %q: %+v, want %+v; rewritten:\n%s",
			input, id, got, want, out)
		e, err := r.Encryption(id)
		require.NoError(t, err, "input %q: tenant %q", input, id)
		require.Equal(t, headers[id], marshalled(e), "input %q: tenant %q; rewritten:\n%s",
			input, id, out)
	}
}

// FuzzTenantID checks tenant IDs and object names as a Bucket takes them.
// Nothing panics; an accepted ID has no "/" and is no path element of its
// own, so no tenant's keys can reach into another's prefix; a refused one
// is an error naming the ID and saying what is valid.
func FuzzTenantID(f *testing.F) {
	for _, seed := range [][3]string{
		{"tenant-a", "tenant-b", "obj"}, {"", "a", "x"}, {".", "..", "a/../b"}, {"a/b", "a", "b/c"},
		{"a", "a/b", "../b"}, {"tab\t", "nul\x00", "./x"}, {"x", "y", "/"}, {"x", "y", "//"},
		{strings.Repeat("x", 150), strings.Repeat("x", 151), "a/./b"}, {"é", "\xff", "\x7f"},
		{"a\\b", "a", "..\\b"}, {"%2F", "a%2f..", "%2e%2e/x"}, {"a", "b", "a/.."},
		{"..a", "a..", "..."}, {"a b", " ", "x/ ../y"}, {"\u2028", "\u0085", "\u202e"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}

	client, err := minio.New("127.0.0.1:9", &minio.Options{}) // sends nothing
	require.NoError(f, err)
	resolver, err := NewResolver(Config{}, nil, nil)
	require.NoError(f, err)
	prefixed, err := NewBucket(client, "bucket", resolver, &BucketOptions{TenantPrefix: true})
	require.NoError(f, err)
	flat, err := NewBucket(client, "bucket", resolver, nil)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, id, other, name string) {
		tb, err := prefixed.Tenant(id)
		requireTenantIDChecked(t, id, err)
		if err != nil {
			return
		}
		_, flatErr := flat.Tenant(id)
		require.NoError(t, flatErr, "tenant %q: accepted by one bucket only", id)

		key, err := tb.Key(name)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidObjectName, "tenant %q, name %q", id, name)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", id), "tenant %q, name %q", id, name)
			return
		}
		require.Equal(t, id+"/"+name, key, "tenant %q, name %q", id, name)
		// The key stays under the tenant's prefix even for a server that
		// treats keys as paths and cleans them.
		clean := path.Clean("/" + key)
		require.True(t, clean == "/"+id || strings.HasPrefix(clean, "/"+id+"/"),
			"tenant %q, name %q: key %q cleans to %q, outside the tenant's prefix", id, name, key, clean)
		if ValidateTenantID(other) == nil && other != id {
			require.False(t, strings.HasPrefix(key, other+"/") || strings.HasPrefix(clean, "/"+other+"/"),
				"tenant %q, name %q: key %q is in tenant %q's prefix", id, name, key, other)
		}

		ft, _ := flat.Tenant(id)
		flatKey, err := ft.Key(name)
		require.NoError(t, err, "tenant %q, name %q: a flat bucket takes any name", id, name)
		require.Equal(t, name, flatKey, "tenant %q, name %q", id, name)
	})
}

// requireTenantIDChecked checks ValidateTenantID's verdict on id against
// the rules it states.
func requireTenantIDChecked(t *testing.T, id string, err error) {
	t.Helper()
	require.Equal(t, ValidateTenantID(id) == nil, err == nil,
		"tenant %q: Tenant and ValidateTenantID disagree", id)
	if err != nil {
		require.ErrorIs(t, err, ErrInvalidTenantID, "tenant %q", id)
		require.Contains(t, err.Error(), fmt.Sprintf("%q", id), "tenant %q: the error names no ID", id)
		require.Contains(t, err.Error(), "1 to 150 bytes",
			"tenant %q: the error says not what is valid", id)
		return
	}
	require.NotEmpty(t, id)
	require.LessOrEqual(t, len(id), 150, "tenant %q", id)
	require.NotContains(t, id, "/", "tenant %q", id)
	require.NotContains(t, []string{".", ".."}, id)
	for _, c := range []byte(id) {
		require.False(t, c < 0x20 || c == 0x7f, "tenant %q: control character %#x accepted", id, c)
	}
}
