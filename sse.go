package s3sse

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Header values S3 uses for the SSE types.
const (
	headerAES256   = "AES256"
	headerKMS      = "aws:kms"
	headerDSSEKMS  = "aws:kms:dsse"
	customerKeyLen = 32
)

// Encryption is the server-side encryption resolved for a tenant or for the
// sse block: the headers every write carries, and the customer keys a read
// may need. It is built once when the configuration changes and is
// immutable, so it is safe for concurrent use. It never prints key material.
type Encryption struct {
	typ         SSEType
	keyID       string
	context     map[string]string
	contextJSON []byte

	// sse is sent on writes; nil sends no header.
	sse encrypt.ServerSide
	// readKeys are the SSE-C keys to try on reads: the current key first
	// when the type is SSE-C, then the previous ones.
	readKeys []*customerKey

	source string
}

// Type is the SSE type writes use.
func (e *Encryption) Type() SSEType { return e.typ }

// KMSKeyID is the KMS key id for SSE-KMS and DSSE-KMS, empty for the
// server's managed key or another type.
func (e *Encryption) KMSKeyID() string { return e.keyID }

// Context returns a copy of the KMS encryption context, nil when none is sent.
func (e *Encryption) Context() map[string]string {
	if len(e.context) == 0 {
		return nil
	}
	m := make(map[string]string, len(e.context))
	for k, v := range e.context {
		m[k] = v
	}
	return m
}

// ContextJSON is the context as sent to S3 (keys sorted), empty when none.
func (e *Encryption) ContextJSON() string { return string(e.contextJSON) }

// CustomerKeyMD5 is the base64 MD5 of the SSE-C key that writes use, as S3
// reports it for objects under that key; empty for other types. It
// identifies the key without revealing it.
func (e *Encryption) CustomerKeyMD5() string {
	if e.typ != TypeSSEC {
		return ""
	}
	return e.readKeys[0].md5
}

// ServerSide is the minio-go value to pass as PutObjectOptions'
// ServerSideEncryption, nil for no SSE.
func (e *Encryption) ServerSide() encrypt.ServerSide { return e.sse }

// Source says where the encryption was configured: the sse block or a
// tenant's override.
func (e *Encryption) Source() string { return e.source }

// String describes the encryption on one line, without key material.
func (e *Encryption) String() string {
	var b strings.Builder
	if e.typ == TypeNone {
		b.WriteString("none")
	} else {
		b.WriteString(string(e.typ))
	}
	if e.typ.usesKMS() {
		if e.keyID != "" {
			fmt.Fprintf(&b, " key=%s", e.keyID)
		}
		if len(e.contextJSON) > 0 {
			fmt.Fprintf(&b, " context=%s", e.contextJSON)
		}
	}
	for i, k := range e.readKeys {
		if i == 0 && e.typ == TypeSSEC {
			fmt.Fprintf(&b, " key=%s", k)
			continue
		}
		fmt.Fprintf(&b, " read-key=%s", k)
	}
	return b.String()
}

// fieldName is how an operator sets one value: its YAML key and its flag.
type fieldName struct{ key, flag string }

type fieldNames struct {
	typ, keyID, context, keyFile, previousKeyFiles fieldName
}

func defaultFieldNames(prefix string) fieldNames {
	return fieldNames{
		typ:              fieldName{"sse.type", prefix + "s3.sse.type"},
		keyID:            fieldName{"sse.kms_key_id", prefix + "s3.sse.kms-key-id"},
		context:          fieldName{"sse.kms_encryption_context", prefix + "s3.sse.kms-encryption-context"},
		keyFile:          fieldName{"sse.customer_key_file", prefix + "s3.sse.customer-key-file"},
		previousKeyFiles: fieldName{"sse.customer_previous_key_files", prefix + "s3.sse.customer-previous-key-files"},
	}
}

// overrideFieldNames are the runtime config keys of a tenant's override.
// They have no flags.
var overrideFieldNames = fieldNames{
	typ:              fieldName{key: "s3_sse_type"},
	keyID:            fieldName{key: "s3_sse_kms_key_id"},
	context:          fieldName{key: "s3_sse_kms_encryption_context"},
	keyFile:          fieldName{key: "s3_sse_customer_key_file"},
	previousKeyFiles: fieldName{key: "s3_sse_customer_previous_key_files"},
}

// settings is one SSE configuration as written, from the sse block or from
// a tenant's override, with what is needed to name it in errors.
type settings struct {
	names  fieldNames
	file   string
	tenant string

	typ              SSEType
	keyID            string
	context          EncryptionContext
	keyFile          string
	previousKeyFiles []string
}

func (s settings) errorf(field fieldName, value string, sentinel error, format string, args ...any) *ConfigError {
	return &ConfigError{
		File:   s.file,
		Tenant: s.tenant,
		Key:    field.key,
		Flag:   field.flag,
		Value:  value,
		Reason: fmt.Sprintf(format, args...),
		Err:    sentinel,
	}
}

// parse checks everything but the key files and returns the parsed context.
func (s settings) parse() (map[string]string, error) {
	if !s.typ.valid() {
		return nil, s.errorf(s.names.typ, string(s.typ), ErrUnknownSSEType,
			"unknown SSE type; valid: %s", validTypes)
	}

	if i := strings.IndexFunc(s.keyID, isControl); i >= 0 {
		// Go's HTTP client would refuse to send it, at the first upload.
		return nil, s.errorf(s.names.keyID, s.keyID, ErrInvalidConfig,
			"control character at offset %d; a KMS key id is a key id, ARN or alias such as "+
				"alias/team-a, on one line", i)
	}

	ctx, err := s.context.Parse()
	if err != nil {
		return nil, s.errorf(s.names.context, string(s.context), ErrInvalidEncryptionContext,
			"%v; it must be a JSON object of string values, such as {\"tenant\":\"a\"}", err)
	}

	if s.typ == TypeSSEC && s.keyFile == "" {
		return nil, s.errorf(s.names.keyFile, "", ErrInvalidCustomerKey,
			"SSE-C needs the file holding the customer key: 32 raw bytes or their base64")
	}
	return ctx, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// warnings lists values the type does not use. They are accepted, as Cortex
// accepts them, but an operator who set them most likely meant something.
func (s settings) warnings() []string {
	var w []string
	name := func(f fieldName) string {
		if f.flag != "" {
			return fmt.Sprintf("%s (flag -%s)", f.key, f.flag)
		}
		return f.key
	}
	if s.keyID != "" && !s.typ.usesKMS() {
		w = append(w, fmt.Sprintf("%s is set but type %q does not use it; it is ignored",
			name(s.names.keyID), s.typ))
	}
	if !s.context.blank() && !s.typ.usesKMS() {
		w = append(w, fmt.Sprintf("%s is set but type %q does not use it; it is ignored",
			name(s.names.context), s.typ))
	}
	if s.keyFile != "" && s.typ != TypeSSEC {
		w = append(w, fmt.Sprintf("%s is set but type %q does not use it for writes; "+
			"it is only tried on reads", name(s.names.keyFile), s.typ))
	}
	return w
}

// build validates the settings, reads the key files through readFile (nil
// means os.ReadFile) and returns the encryption they describe.
func (s settings) build(readFile func(string) ([]byte, error)) (*Encryption, error) {
	ctx, err := s.parse()
	if err != nil {
		return nil, err
	}
	if readFile == nil {
		readFile = os.ReadFile
	}

	e := &Encryption{typ: s.typ, source: s.source()}
	if s.typ.usesKMS() {
		e.keyID = s.keyID
		e.context = ctx
		e.contextJSON = canonicalContext(ctx)
	}

	if s.keyFile != "" {
		k, err := s.readKey(s.names.keyFile, s.keyFile, readFile)
		if err != nil {
			return nil, err
		}
		e.readKeys = append(e.readKeys, k)
	}
	for _, f := range s.previousKeyFiles {
		k, err := s.readKey(s.names.previousKeyFiles, f, readFile)
		if err != nil {
			return nil, err
		}
		e.readKeys = append(e.readKeys, k)
	}

	e.sse, err = newServerSide(e)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s settings) source() string {
	if s.tenant == "" {
		return "sse block"
	}
	if s.file == "" {
		return fmt.Sprintf("override of tenant %q", s.tenant)
	}
	return fmt.Sprintf("override of tenant %q in %s", s.tenant, s.file)
}

// String describes the settings as written. Key files are named, never read.
func (s settings) String() string {
	parts := []string{"type=" + string(s.typ)}
	if s.keyID != "" {
		parts = append(parts, "kms_key_id="+s.keyID)
	}
	if s.context != "" {
		parts = append(parts, "kms_encryption_context="+string(s.context))
	}
	if s.keyFile != "" {
		parts = append(parts, "customer_key_file="+s.keyFile)
	}
	if len(s.previousKeyFiles) > 0 {
		parts = append(parts, "customer_previous_key_files="+strings.Join(s.previousKeyFiles, ","))
	}
	return strings.Join(parts, " ")
}

func (s settings) readKey(field fieldName, file string, readFile func(string) ([]byte, error)) (*customerKey, error) {
	raw, err := readFile(file)
	if err != nil {
		return nil, s.errorf(field, file, ErrInvalidCustomerKey, "cannot read the key file: %v", err)
	}
	key, ok := decodeCustomerKey(raw)
	if !ok {
		return nil, s.errorf(field, file, ErrInvalidCustomerKey,
			"the file holds %d bytes; it must hold a 256-bit key as 32 raw bytes or their base64",
			len(raw))
	}
	return newCustomerKey(key, file), nil
}

// decodeCustomerKey accepts 32 raw bytes, or their base64 with or without
// padding and surrounding white space.
func decodeCustomerKey(raw []byte) ([customerKeyLen]byte, bool) {
	var key [customerKeyLen]byte
	if len(raw) == customerKeyLen {
		copy(key[:], raw)
		return key, true
	}

	text := bytes.TrimSpace(raw)
	encodings := []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	}
	for _, enc := range encodings {
		if enc.DecodedLen(len(text)) < customerKeyLen {
			continue
		}
		buf := make([]byte, enc.DecodedLen(len(text)))
		n, err := enc.Decode(buf, text)
		if err == nil && n == customerKeyLen {
			copy(key[:], buf[:n])
			clear(buf)
			return key, true
		}
		clear(buf)
	}
	return key, false
}

func newServerSide(e *Encryption) (encrypt.ServerSide, error) {
	switch e.typ {
	case TypeSSES3:
		return encrypt.NewSSE(), nil
	case TypeSSEKMS:
		if len(e.context) == 0 {
			return encrypt.NewSSEKMS(e.keyID, nil) // untyped nil: no context header
		}
		// The canonical text itself, so SSE-KMS and DSSE-KMS send the same
		// bytes and the map is not encoded a second time.
		return encrypt.NewSSEKMS(e.keyID, json.RawMessage(e.contextJSON))
	case TypeDSSEKMS:
		return newDSSEKMS(e.keyID, e.contextJSON), nil
	case TypeSSEC:
		return e.readKeys[0], nil
	}
	return nil, nil
}

// dsseKMS is dual-layer SSE-KMS, which minio-go has no value for. It
// reports encrypt.KMS as its type, so that minio-go treats it as it treats
// SSE-KMS: headers on the initiate request and the single PUT only.
type dsseKMS struct {
	keyID   string
	context string // base64 of the JSON text, empty for none
}

var _ encrypt.ServerSide = dsseKMS{}

func newDSSEKMS(keyID string, contextJSON []byte) dsseKMS {
	d := dsseKMS{keyID: keyID}
	if len(contextJSON) > 0 {
		d.context = base64.StdEncoding.EncodeToString(contextJSON)
	}
	return d
}

func (d dsseKMS) Type() encrypt.Type { return encrypt.KMS }

func (d dsseKMS) Marshal(h http.Header) {
	h.Set(encrypt.SseGenericHeader, headerDSSEKMS)
	if d.keyID != "" {
		h.Set(encrypt.SseKmsKeyID, d.keyID)
	}
	if d.context != "" {
		h.Set(encrypt.SseEncryptionContext, d.context)
	}
}

// customerKey is an SSE-C key. Unlike minio-go's value, it never formats
// its bytes: every fmt verb, String, GoString and the text encoders print
// the key's file and MD5.
//
// The printing methods have value receivers so that a customerKey value
// is as safe to print as a pointer. The key material sits behind a pointer
// and a function because fmt reads unexported fields through reflection
// without calling their methods (a key in another value's unexported
// field, or a verb fmt finds bad for a pointer): there it prints addresses.
type customerKey struct {
	key    *[customerKeyLen]byte
	keyB64 func() string
	md5    string
	file   string
}

var _ encrypt.ServerSide = (*customerKey)(nil)

func newCustomerKey(key [customerKeyLen]byte, file string) *customerKey {
	sum := md5.Sum(key[:])
	b64 := base64.StdEncoding.EncodeToString(key[:])
	return &customerKey{
		key:    &key,
		keyB64: func() string { return b64 },
		md5:    base64.StdEncoding.EncodeToString(sum[:]),
		file:   file,
	}
}

func (k *customerKey) Type() encrypt.Type { return encrypt.SSEC }

func (k *customerKey) Marshal(h http.Header) {
	h.Set(encrypt.SseCustomerAlgorithm, headerAES256)
	h.Set(encrypt.SseCustomerKey, k.keyB64())
	h.Set(encrypt.SseCustomerKeyMD5, k.md5)
}

// copySource is the key as the source of a server-side copy, which S3
// takes on the copy-source headers.
func (k *customerKey) copySource() encrypt.ServerSide { return copySourceKey{k} }

func (k customerKey) String() string {
	if k.file == "" {
		return "SSE-C(md5:" + k.md5 + ")"
	}
	return "SSE-C(" + k.file + ", md5:" + k.md5 + ")"
}

// GoString keeps %#v from printing the key.
func (k customerKey) GoString() string { return k.String() }

// Format keeps every verb, %x and %d included, from printing the key.
func (k customerKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// MarshalText keeps encoders (JSON, YAML via text) from writing the key.
func (k customerKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

type copySourceKey struct{ k *customerKey }

func (c copySourceKey) Type() encrypt.Type { return encrypt.SSEC }

func (c copySourceKey) Marshal(h http.Header) {
	h.Set(encrypt.SseCopyCustomerAlgorithm, headerAES256)
	h.Set(encrypt.SseCopyCustomerKey, c.k.keyB64())
	h.Set(encrypt.SseCopyCustomerKeyMD5, c.k.md5)
}

func (c copySourceKey) String() string               { return "copy-source " + c.k.String() }
func (c copySourceKey) GoString() string             { return c.String() }
func (c copySourceKey) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, c.String()) }
func (c copySourceKey) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Encryption validates the block, reads its key files and returns the
// encryption it describes. A ConfigError says what is wrong.
func (c *Config) Encryption() (*Encryption, error) {
	return c.settings().build(nil)
}

// ServerSide is Encryption's minio-go value: nil when the block sends no SSE
// header.
func (c *Config) ServerSide() (encrypt.ServerSide, error) {
	e, err := c.Encryption()
	if err != nil {
		return nil, err
	}
	return e.ServerSide(), nil
}
