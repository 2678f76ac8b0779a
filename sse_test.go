package s3sse

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The header names below are written out from S3's documentation rather
// than taken from minio-go's constants, so that the tests check S3's facts
// and not minio-go's spelling of them.
const (
	hdrSSE            = "X-Amz-Server-Side-Encryption"
	hdrKMSKeyID       = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	hdrContext        = "X-Amz-Server-Side-Encryption-Context"
	hdrCustomerAlg    = "X-Amz-Server-Side-Encryption-Customer-Algorithm"
	hdrCustomerKey    = "X-Amz-Server-Side-Encryption-Customer-Key"
	hdrCustomerKeyMD5 = "X-Amz-Server-Side-Encryption-Customer-Key-Md5"
	hdrCopyAlg        = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm"
	hdrCopyKey        = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key"
	hdrCopyKeyMD5     = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5"
)

// headerSet is the SSE headers of one request; each has a single value.
type headerSet map[string]string

// headersOf marshals sse into an empty request header, as minio-go does.
// A nil sse sends nothing.
func headersOf(t *testing.T, sse encrypt.ServerSide) headerSet {
	t.Helper()
	h := http.Header{}
	if sse != nil {
		sse.Marshal(h)
	}
	out := headerSet{}
	for name, values := range h {
		require.Len(t, values, 1, "header %s: %q", name, values)
		out[http.CanonicalHeaderKey(name)] = values[0]
	}
	return out
}

// configHeaders builds the block's encryption and returns the headers its
// writes carry. Config.ServerSide must agree with it.
func configHeaders(t *testing.T, c Config) headerSet {
	t.Helper()
	e, err := c.Encryption()
	require.NoError(t, err, "block: %s", c)
	sse, err := c.ServerSide()
	require.NoError(t, err, "block: %s", c)

	got := headersOf(t, e.ServerSide())
	require.Equal(t, got, headersOf(t, sse), "block %s: Encryption and ServerSide disagree", c)
	return got
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func md5b64(key []byte) string {
	sum := md5.Sum(key)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// newKey returns a fresh random SSE-C key.
func newKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	return key
}

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, content, 0o600))
	return path
}

func TestEncryptionHeaders(t *testing.T) {
	key := newKey(t)
	keyFile := writeFile(t, "customer.key", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))

	tests := []struct {
		name     string       // what the case shows
		cfg      Config       // the sse block
		want     headerSet    // every header a write carries
		wantType encrypt.Type // minio-go type of the value; empty for nil
	}{
		{
			name: "no type: no header, the bucket default applies",
			cfg:  Config{},
			want: headerSet{},
		},
		{
			name: "no type ignores a key id and context",
			cfg:  Config{KMSKeyID: "alias/a", KMSEncryptionContext: `{"a":"b"}`},
			want: headerSet{},
		},
		{
			name:     "SSE-S3",
			cfg:      Config{Type: TypeSSES3},
			want:     headerSet{hdrSSE: "AES256"},
			wantType: encrypt.S3,
		},
		{
			name:     "SSE-S3 ignores a key id and context",
			cfg:      Config{Type: TypeSSES3, KMSKeyID: "alias/a", KMSEncryptionContext: `{"a":"b"}`},
			want:     headerSet{hdrSSE: "AES256"},
			wantType: encrypt.S3,
		},
		{
			name:     "SSE-KMS without key id: the managed key",
			cfg:      Config{Type: TypeSSEKMS},
			want:     headerSet{hdrSSE: "aws:kms"},
			wantType: encrypt.KMS,
		},
		{
			name:     "SSE-KMS with key id",
			cfg:      Config{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:eu-west-1:1:key/k"},
			want:     headerSet{hdrSSE: "aws:kms", hdrKMSKeyID: "arn:aws:kms:eu-west-1:1:key/k"},
			wantType: encrypt.KMS,
		},
		{
			name: "SSE-KMS with key id and context: keys sorted",
			cfg: Config{Type: TypeSSEKMS, KMSKeyID: "alias/a",
				KMSEncryptionContext: `{ "tenant": "a", "app": "cortex" }`},
			want: headerSet{
				hdrSSE:      "aws:kms",
				hdrKMSKeyID: "alias/a",
				hdrContext:  b64(`{"app":"cortex","tenant":"a"}`),
			},
			wantType: encrypt.KMS,
		},
		{
			name:     "SSE-KMS with context and no key id",
			cfg:      Config{Type: TypeSSEKMS, KMSEncryptionContext: `{"tenant":"a"}`},
			want:     headerSet{hdrSSE: "aws:kms", hdrContext: b64(`{"tenant":"a"}`)},
			wantType: encrypt.KMS,
		},
		{
			name:     "SSE-KMS with an empty object: no context header",
			cfg:      Config{Type: TypeSSEKMS, KMSEncryptionContext: "{}"},
			want:     headerSet{hdrSSE: "aws:kms"},
			wantType: encrypt.KMS,
		},
		{
			name:     "SSE-KMS with a blank context: no context header",
			cfg:      Config{Type: TypeSSEKMS, KMSEncryptionContext: " \n"},
			want:     headerSet{hdrSSE: "aws:kms"},
			wantType: encrypt.KMS,
		},
		{
			name:     "DSSE-KMS without key id or context",
			cfg:      Config{Type: TypeDSSEKMS},
			want:     headerSet{hdrSSE: "aws:kms:dsse"},
			wantType: encrypt.KMS,
		},
		{
			name: "DSSE-KMS with key id and context",
			cfg: Config{Type: TypeDSSEKMS, KMSKeyID: "alias/a",
				KMSEncryptionContext: `{"tenant":"a","app":"cortex"}`},
			want: headerSet{
				hdrSSE:      "aws:kms:dsse",
				hdrKMSKeyID: "alias/a",
				hdrContext:  b64(`{"app":"cortex","tenant":"a"}`),
			},
			wantType: encrypt.KMS,
		},
		{
			name:     "DSSE-KMS with an empty object: no context header",
			cfg:      Config{Type: TypeDSSEKMS, KMSKeyID: "alias/a", KMSEncryptionContext: "{}"},
			want:     headerSet{hdrSSE: "aws:kms:dsse", hdrKMSKeyID: "alias/a"},
			wantType: encrypt.KMS,
		},
		{
			name: "SSE-C",
			cfg:  Config{Type: TypeSSEC, CustomerKeyFile: keyFile},
			want: headerSet{
				hdrCustomerAlg:    "AES256",
				hdrCustomerKey:    base64.StdEncoding.EncodeToString(key),
				hdrCustomerKeyMD5: md5b64(key),
			},
			wantType: encrypt.SSEC,
		},
		{
			name: "SSE-C ignores a key id and context",
			cfg: Config{Type: TypeSSEC, CustomerKeyFile: keyFile, KMSKeyID: "alias/a",
				KMSEncryptionContext: `{"a":"b"}`},
			want: headerSet{
				hdrCustomerAlg:    "AES256",
				hdrCustomerKey:    base64.StdEncoding.EncodeToString(key),
				hdrCustomerKeyMD5: md5b64(key),
			},
			wantType: encrypt.SSEC,
		},
		{
			name:     "SSE-KMS with a read-only key file sends no SSE-C header",
			cfg:      Config{Type: TypeSSEKMS, CustomerKeyFile: keyFile},
			want:     headerSet{hdrSSE: "aws:kms"},
			wantType: encrypt.KMS,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := configHeaders(t, tc.cfg)
			require.Equal(t, tc.want, got, "block: %s", tc.cfg)
			requireS3Headers(t, got)

			sse, err := tc.cfg.ServerSide()
			require.NoError(t, err)
			if tc.wantType == "" {
				require.Nil(t, sse, "block %s: no SSE must be a nil value", tc.cfg)
				return
			}
			require.NotNil(t, sse, "block: %s", tc.cfg)
			require.Equal(t, tc.wantType, sse.Type(), "block %s: minio-go type", tc.cfg)
		})
	}
}

// requireS3Headers checks headers against what S3 accepts, decoding what
// is base64: a context is a JSON object of string values, never null; an
// SSE-C key is 32 bytes and its MD5 matches it.
func requireS3Headers(t *testing.T, h headerSet) {
	t.Helper()
	if v, ok := h[hdrSSE]; ok {
		require.Contains(t, []string{"AES256", "aws:kms", "aws:kms:dsse"}, v, "headers %v", h)
	}
	if v, ok := h[hdrContext]; ok {
		text, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err, "context header %q", v)
		require.NotEqual(t, "null", string(text), "context header must never be null")
		var m map[string]string
		require.NoError(t, json.Unmarshal(text, &m), "context %q", text)
		require.NotEmpty(t, m, "an empty context must send no header, got %q", text)
		require.Contains(t, []string{"aws:kms", "aws:kms:dsse"}, h[hdrSSE],
			"a context goes with SSE-KMS or DSSE-KMS only: %v", h)
	}
	if _, ok := h[hdrKMSKeyID]; ok {
		require.Contains(t, []string{"aws:kms", "aws:kms:dsse"}, h[hdrSSE],
			"a key id goes with SSE-KMS or DSSE-KMS only: %v", h)
	}
	for _, names := range [][3]string{
		{hdrCustomerAlg, hdrCustomerKey, hdrCustomerKeyMD5},
		{hdrCopyAlg, hdrCopyKey, hdrCopyKeyMD5},
	} {
		alg, ok := h[names[0]]
		if !ok {
			continue
		}
		require.Equal(t, "AES256", alg)
		key, err := base64.StdEncoding.DecodeString(h[names[1]])
		require.NoError(t, err)
		require.Len(t, key, 32, "SSE-C key must be 256 bits")
		require.Equal(t, md5b64(key), h[names[2]], "SSE-C key MD5")
		require.NotContains(t, h, hdrSSE, "SSE-C goes with no other SSE header: %v", h)
	}
}

func TestEncryptionContextHeaderIsCanonical(t *testing.T) {
	// One context written in different ways sends one header, for SSE-KMS
	// (minio-go's value) and DSSE-KMS (ours) alike, including characters
	// JSON encoders escape.
	forms := []EncryptionContext{
		`{"k":"<a&b>","é":"ü","z":"\u2028"}`,
		"{\"z\":\"\u2028\", \"\\u00e9\":\"\\u00fc\",\"k\":\"\\u003ca&b>\"}",
		"\n\t{ \"é\" : \"ü\" , \"k\" : \"<a&b>\" , \"z\" : \"\\u2028\" }\n",
	}
	var want string
	for _, typ := range []SSEType{TypeSSEKMS, TypeDSSEKMS} {
		for _, ctx := range forms {
			got := configHeaders(t, Config{Type: typ, KMSEncryptionContext: ctx})[hdrContext]
			if want == "" {
				want = got
			}
			require.Equal(t, want, got, "type %s, context %q", typ, ctx)
		}
	}

	text, err := base64.StdEncoding.DecodeString(want)
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(text, &m))
	require.Equal(t, map[string]string{"k": "<a&b>", "é": "ü", "z": "\u2028"}, m,
		"context header %q", text)
}

func TestEncryptionSameHeadersFromOverride(t *testing.T) {
	// The sse block and a tenant's override with the same values send the
	// same headers: only the names in errors and the source differ.
	key := newKey(t)
	keyFile := writeFile(t, "k", key)

	for _, c := range []Config{
		{},
		{Type: TypeSSES3},
		{Type: TypeSSEKMS, KMSKeyID: "alias/a", KMSEncryptionContext: `{"b":"1","a":"2"}`},
		{Type: TypeSSEKMS, KMSEncryptionContext: "{}"},
		{Type: TypeDSSEKMS, KMSKeyID: "alias/a", KMSEncryptionContext: `{"b":"1"}`},
		{Type: TypeSSEC, CustomerKeyFile: keyFile},
	} {
		block, err := c.Encryption()
		require.NoError(t, err, "block: %s", c)

		s := c.settings()
		s.names, s.tenant, s.file = overrideFieldNames, "team-a", "/etc/runtime.yaml"
		override, err := s.build(nil)
		require.NoError(t, err, "override: %s", s)

		require.Equal(t, headersOf(t, block.ServerSide()), headersOf(t, override.ServerSide()),
			"block %s", c)
		require.Equal(t, "sse block", block.Source())
		require.Equal(t, `override of tenant "team-a" in /etc/runtime.yaml`, override.Source())
	}
}

func TestEncryptionAccessors(t *testing.T) {
	c := Config{Type: TypeSSEKMS, KMSKeyID: "alias/a", KMSEncryptionContext: `{"b":"2","a":"1"}`}
	e, err := c.Encryption()
	require.NoError(t, err)

	require.Equal(t, TypeSSEKMS, e.Type())
	require.Equal(t, "alias/a", e.KMSKeyID())
	require.Equal(t, `{"a":"1","b":"2"}`, e.ContextJSON())
	require.Empty(t, e.CustomerKeyMD5(), "no SSE-C key for SSE-KMS")
	require.Equal(t, `SSE-KMS key=alias/a context={"a":"1","b":"2"}`, e.String())

	ctx := e.Context()
	require.Equal(t, map[string]string{"a": "1", "b": "2"}, ctx)
	ctx["a"] = "changed"
	require.Equal(t, "1", e.Context()["a"], "Context must return a copy")

	none, err := (&Config{KMSKeyID: "alias/a"}).Encryption()
	require.NoError(t, err)
	require.Equal(t, TypeNone, none.Type())
	require.Empty(t, none.KMSKeyID(), "a key id the type does not use is not reported")
	require.Nil(t, none.Context())
	require.Empty(t, none.ContextJSON())
	require.Equal(t, "none", none.String())
}

func TestCustomerKeyCopySource(t *testing.T) {
	key := newKey(t)
	e, err := (&Config{Type: TypeSSEC, CustomerKeyFile: writeFile(t, "k", key)}).Encryption()
	require.NoError(t, err)
	require.Len(t, e.readKeys, 1)

	src := e.readKeys[0].copySource()
	require.Equal(t, encrypt.SSEC, src.Type())
	got := headersOf(t, src)
	require.Equal(t, headerSet{
		hdrCopyAlg:    "AES256",
		hdrCopyKey:    base64.StdEncoding.EncodeToString(key),
		hdrCopyKeyMD5: md5b64(key),
	}, got, "a copy source sends only the copy-source headers")
	requireS3Headers(t, got)
	require.Equal(t, md5b64(key), e.CustomerKeyMD5())
}

func TestCustomerKeyFileFormats(t *testing.T) {
	key := newKey(t)
	std, url := base64.StdEncoding.EncodeToString(key), base64.URLEncoding.EncodeToString(key)
	tests := []struct {
		name    string // how the key is written
		content []byte // the file's content
	}{
		{name: "32 raw bytes", content: key},
		{name: "base64", content: []byte(std)},
		{name: "base64 and a newline", content: []byte(std + "\n")},
		{name: "base64 and CRLF", content: []byte(std + "\r\n")},
		{name: "base64 in white space", content: []byte("  " + std + " \n\n")},
		{name: "base64 without padding", content: []byte(strings.TrimRight(std, "="))},
		{name: "URL-safe base64", content: []byte(url + "\n")},
		{name: "URL-safe base64 without padding", content: []byte(strings.TrimRight(url, "="))},
		{
			name:    "32 printable characters are 32 raw bytes",
			content: []byte("0123456789abcdef0123456789ABCDEF"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Type: TypeSSEC, CustomerKeyFile: writeFile(t, "customer.key", tc.content)}
			e, err := c.Encryption()
			require.NoError(t, err, "file content %q", tc.content)

			want := key
			if len(tc.content) == 32 {
				want = tc.content
			}
			got := headersOf(t, e.ServerSide())
			require.Equal(t, base64.StdEncoding.EncodeToString(want), got[hdrCustomerKey])
			require.Equal(t, md5b64(want), e.CustomerKeyMD5())
		})
	}
}

func TestCustomerKeyFileRefused(t *testing.T) {
	key := newKey(t)
	dir := t.TempDir()
	tests := []struct {
		name       string // what is wrong with the file
		path       string // key file; written with content unless it is in dir already
		content    []byte // what the file holds
		wantReason string // part of the reason
	}{
		{
			name:       "missing",
			path:       filepath.Join(dir, "missing.key"),
			wantReason: "cannot read the key file",
		},
		{
			name:       "a directory",
			path:       dir,
			wantReason: "cannot read the key file",
		},
		{
			name:    "empty",
			content: []byte{},
			wantReason: "the file holds 0 bytes; it must hold a 256-bit key as 32 raw bytes " +
				"or their base64",
		},
		{
			name:       "16 raw bytes",
			content:    key[:16],
			wantReason: "the file holds 16 bytes",
		},
		{
			name:       "31 raw bytes",
			content:    key[:31],
			wantReason: "the file holds 31 bytes",
		},
		{
			name:       "raw key and a newline",
			content:    append(append([]byte{}, key...), '\n'),
			wantReason: "the file holds 33 bytes",
		},
		{
			name:       "base64 of 16 bytes",
			content:    []byte(base64.StdEncoding.EncodeToString(key[:16]) + "\n"),
			wantReason: "the file holds 25 bytes",
		},
		{
			name:       "base64 of 48 bytes",
			content:    []byte(base64.StdEncoding.EncodeToString(append(key, key[:16]...))),
			wantReason: "the file holds 64 bytes",
		},
		{
			name:       "hex of 32 bytes",
			content:    []byte(hex.EncodeToString(key) + "\n"),
			wantReason: "the file holds 65 bytes",
		},
		{
			name:       "base64 with a bad character",
			content:    []byte("!" + base64.StdEncoding.EncodeToString(key)[1:]),
			wantReason: "the file holds 44 bytes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = writeFile(t, "customer.key", tc.content)
			}

			for _, field := range []struct {
				key, flag string
				cfg       Config
			}{
				{
					key:  "sse.customer_key_file",
					flag: "blocks-storage.s3.sse.customer-key-file",
					cfg: registeredConfig("blocks-storage.", func(c *Config) {
						c.Type, c.CustomerKeyFile = TypeSSEC, path
					}),
				},
				{
					key:  "sse.customer_previous_key_files",
					flag: "blocks-storage.s3.sse.customer-previous-key-files",
					cfg: registeredConfig("blocks-storage.", func(c *Config) {
						c.Type = TypeSSEC
						c.CustomerKeyFile = writeFile(t, "good.key", key)
						c.CustomerPreviousKeyFiles = []string{path}
					}),
				},
			} {
				require.NoError(t, field.cfg.Validate(), "Validate reads no key file")
				_, err := field.cfg.Encryption()
				requireConfigError(t, err, field.cfg.String(), ErrInvalidCustomerKey,
					field.key, field.flag, path, tc.wantReason)
				require.Contains(t, err.Error(), path, "the error names the file")
				requireNoSecret(t, err.Error(), tc.content)
			}
		})
	}
}

// requireNoSecret checks that out holds none of the usual renderings of a
// key: its bytes, base64 and hex, fmt's list and Go syntax.
func requireNoSecret(t *testing.T, out string, key []byte) {
	t.Helper()
	if len(key) < 8 {
		return // too short to recognise without false alarms
	}
	renderings := map[string]string{
		"raw":            string(key),
		"base64":         base64.StdEncoding.EncodeToString(key),
		"unpadded":       base64.RawStdEncoding.EncodeToString(key),
		"URL base64":     base64.RawURLEncoding.EncodeToString(key),
		"hex":            hex.EncodeToString(key),
		"HEX":            strings.ToUpper(hex.EncodeToString(key)),
		"%v":             fmt.Sprintf("%v", key),
		"%#v":            fmt.Sprintf("%#v", key),
		"%q":             fmt.Sprintf("%q", key),
		"base64 of text": b64(base64.StdEncoding.EncodeToString(key)),
	}
	for name, r := range renderings {
		// A leading part is enough to leak much of a key: look for one.
		part := r[:min(len(r), 16)]
		if name == "%v" || name == "%#v" || name == "%q" {
			part = r[min(len(r), 4):min(len(r), 40)]
		}
		require.NotContains(t, out, part, "output holds the key (%s):\n%s", name, out)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	key, previous := newKey(t), newKey(t)
	keyFile := writeFile(t, "current.key", []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	previousFile := writeFile(t, "previous.key", previous)

	c := registeredConfig("blocks-storage.", func(c *Config) {
		c.Type = TypeSSEC
		c.CustomerKeyFile = keyFile
		c.CustomerPreviousKeyFiles = []string{previousFile}
	})
	e, err := c.Encryption()
	require.NoError(t, err)
	require.Len(t, e.readKeys, 2)
	ck := e.readKeys[0]

	values := map[string]any{
		"*Encryption":    e,
		"Encryption":     *e,
		"ServerSide":     e.ServerSide(),
		"*customerKey":   ck,
		"customerKey":    *ck,
		"previous key":   e.readKeys[1],
		"read keys":      e.readKeys,
		"copy source":    ck.copySource(),
		"Config":         c,
		"*Config":        &c,
		"struct of both": struct{ E *Encryption }{e},
		// fmt reads unexported fields without calling their methods.
		"hidden Encryption": struct{ e Encryption }{*e},
		"hidden key":        struct{ k *customerKey }{ck},
		"hidden keys":       struct{ k []*customerKey }{e.readKeys},
		"map of the keys":   map[string]*customerKey{"k": ck},
	}
	var out strings.Builder
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			fmt.Fprintf(&out, "%s %s: "+verb+"\n", name, verb, v)
		}
		for _, marshal := range []func(any) ([]byte, error){json.Marshal, yaml.Marshal} {
			b, err := marshal(v)
			if err == nil {
				fmt.Fprintf(&out, "%s marshalled: %s\n", name, b)
			}
		}
	}

	var logged bytes.Buffer
	for _, logger := range []log.Logger{log.NewLogfmtLogger(&logged), log.NewJSONLogger(&logged)} {
		require.NoError(t, logger.Log("msg", "resolved", "encryption", e, "sse", e.ServerSide(),
			"config", c, "key", ck))
	}
	out.WriteString(logged.String())

	for _, k := range [][]byte{key, previous} {
		requireNoSecret(t, out.String(), k)
	}

	// What is printed still identifies the key: its file and its MD5.
	require.Contains(t, e.String(), keyFile)
	require.Contains(t, e.String(), md5b64(key))
	require.Contains(t, e.String(), "read-key="+"SSE-C("+previousFile)
	require.Contains(t, fmt.Sprintf("%v", *ck), md5b64(key))
}
