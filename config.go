package s3sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// SSEType names a kind of server-side encryption, as written in the `type`
// key of the sse block and in the s3_sse_type runtime config key.
type SSEType string

// The SSE types a Config accepts.
const (
	// TypeNone sends no SSE header: the bucket's default encryption applies.
	TypeNone SSEType = ""
	// TypeSSES3 is encryption with keys the S3 server manages (AES256).
	TypeSSES3 SSEType = "SSE-S3"
	// TypeSSEKMS is encryption under a KMS key (aws:kms). Without a key id
	// the server uses its managed key (aws/s3 on AWS).
	TypeSSEKMS SSEType = "SSE-KMS"
	// TypeDSSEKMS is dual-layer encryption under a KMS key (aws:kms:dsse).
	// Key id and context work as for SSE-KMS.
	TypeDSSEKMS SSEType = "DSSE-KMS"
	// TypeSSEC is encryption with a key the operator holds and sends with
	// every request (customer-provided keys). The server never stores it.
	TypeSSEC SSEType = "SSE-C"
)

// SSETypes lists every valid SSE type, TypeNone first.
var SSETypes = []SSEType{TypeNone, TypeSSES3, TypeSSEKMS, TypeDSSEKMS, TypeSSEC}

func (t SSEType) valid() bool {
	for _, v := range SSETypes {
		if t == v {
			return true
		}
	}
	return false
}

// usesKMS reports whether the type sends a KMS key id and context.
func (t SSEType) usesKMS() bool { return t == TypeSSEKMS || t == TypeDSSEKMS }

// validTypes is the list of valid values as error messages and help text
// spell it.
const validTypes = `SSE-S3, SSE-KMS, DSSE-KMS, SSE-C, or empty for no SSE header`

// Config is the `sse` block of an S3 client configuration. It loads an
// existing Cortex `sse:` block unchanged and registers the same flags.
//
// The zero value is valid and means no SSE: the bucket's default encryption
// applies.
//
// Flags and YAML: RegisterFlagsWithPrefix sets every field to its default,
// so it comes first. After that, what is applied last wins, key by key:
// YAML decoded after the command line was parsed replaces the keys it
// names and keeps the flag values of the rest; a command line parsed again
// after the YAML, as Cortex does, lets the flags given explicitly beat the
// file. A key written in YAML as an empty string sets the value to empty.
// Decode with yaml.Decoder.KnownFields so that a misspelt key is an error.
//
// A Config is a plain value: copy it freely, but do not change it while
// another goroutine reads it.
type Config struct {
	// Type is the SSE type; see the Type constants. Default: empty.
	Type SSEType `yaml:"type"`

	// KMSKeyID is the KMS key for SSE-KMS and DSSE-KMS. Empty means the
	// server's managed key. Default: empty.
	KMSKeyID string `yaml:"kms_key_id"`

	// KMSEncryptionContext is the KMS encryption context for SSE-KMS and
	// DSSE-KMS: a JSON object of string values. In YAML it may also be
	// written as a mapping. Empty or {} sends no context. Default: empty.
	KMSEncryptionContext EncryptionContext `yaml:"kms_encryption_context"`

	// CustomerKeyFile is the file holding the SSE-C key: 32 raw bytes, or
	// their base64. The key itself is never written in YAML or on a command
	// line. Required for SSE-C. Default: empty.
	CustomerKeyFile string `yaml:"customer_key_file"`

	// CustomerPreviousKeyFiles are SSE-C keys that objects written before a
	// key rotation may still be under. They are tried on reads, in order,
	// after the current key, and never used for writes. Default: none.
	CustomerPreviousKeyFiles []string `yaml:"customer_previous_key_files,omitempty"`

	// flagPrefix is the prefix the flags were registered under, kept so
	// that errors can name the flag an operator would change.
	flagPrefix string
}

// RegisterFlagsWithPrefix registers the block's flags on f under prefix,
// which by convention ends with a dot: with "blocks-storage." the flags are
// -blocks-storage.s3.sse.type, -blocks-storage.s3.sse.kms-key-id,
// -blocks-storage.s3.sse.kms-encryption-context,
// -blocks-storage.s3.sse.customer-key-file and
// -blocks-storage.s3.sse.customer-previous-key-files. The flags' defaults are
// the zero Config, and registering sets c to them. The prefix is kept, so
// that later errors name the flags the operator would change. Registering
// two blocks under one prefix on one flag set panics, as flag does for any
// name defined twice.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	c.CustomerPreviousKeyFiles = nil // f.Var, unlike StringVar, sets no default
	names := defaultFieldNames(prefix)

	f.StringVar((*string)(&c.Type), names.typ.flag, "",
		"Server-side encryption type for objects written to S3. One of SSE-S3, SSE-KMS, "+
			"DSSE-KMS or SSE-C. Empty sends no encryption header, so the bucket's default "+
			"encryption applies.")
	f.StringVar(&c.KMSKeyID, names.keyID.flag, "",
		"KMS key id used to encrypt objects when the type is SSE-KMS or DSSE-KMS. Empty "+
			"uses the server's managed key.")
	f.StringVar((*string)(&c.KMSEncryptionContext), names.context.flag, "",
		"KMS encryption context used when the type is SSE-KMS or DSSE-KMS: a JSON object "+
			`of string values such as {"team":"a"}. Keys may not begin with "aws:". Empty `+
			"sends no context.")
	f.StringVar(&c.CustomerKeyFile, names.keyFile.flag, "",
		"File holding the customer-provided key when the type is SSE-C: 32 raw bytes or "+
			"their base64. Required for SSE-C; the key itself is never given on the command line.")
	f.Var((*csvFlag)(&c.CustomerPreviousKeyFiles), names.previousKeyFiles.flag,
		"Comma-separated files holding earlier SSE-C keys. They are tried on reads of "+
			"objects written before a key rotation and never used for writes.")
}

// Validate checks the block without reading any key file; Encryption reads
// them. It refuses an unknown type, a KMS key id holding a control character
// such as a line break (no HTTP request could carry it), an encryption
// context that is not a JSON object of string values S3 accepts (both
// whatever the type, so that a typo does not wait for a type change), and
// SSE-C without a key file. Each error is a
// *ConfigError that names the YAML key and the flag, the value and what would
// be valid, and matches ErrInvalidConfig and one precise sentinel with
// errors.Is. Values that the type does not use (a KMS key id with SSE-S3, for
// instance) are accepted, as Cortex accepts them; a Resolver logs a warning
// for them. SSE-KMS without a key id is valid: S3 then uses its managed key.
func (c *Config) Validate() error {
	_, err := c.settings().parse()
	return err
}

func (c *Config) settings() settings {
	return settings{
		names:            defaultFieldNames(c.flagPrefix),
		typ:              c.Type,
		keyID:            c.KMSKeyID,
		context:          c.KMSEncryptionContext,
		keyFile:          c.CustomerKeyFile,
		previousKeyFiles: c.CustomerPreviousKeyFiles,
	}
}

// String describes the block on one line. It holds no secret: SSE-C keys
// are named by file, never by content.
func (c Config) String() string {
	return c.settings().String()
}

// EncryptionContext is a KMS encryption context as the configuration holds
// it: the text of a JSON object of string values. It decodes from YAML either
// as that text (as Cortex writes it) or as a mapping, which is stored as
// its JSON text; both give the same headers.
type EncryptionContext string

// UnmarshalYAML accepts a string, kept as written, or a mapping, stored as
// its JSON text with sorted keys. A mapping's values must be scalars; each
// is taken as its text, so `shard: 7` gives the string "7". An empty
// mapping is no context. A mapping that is not a context is an error
// naming its line and key that matches ErrInvalidEncryptionContext; a
// string is checked only by Validate, which names the flag too.
func (c *EncryptionContext) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		if node.Tag == "!!null" {
			*c = ""
			return nil
		}
		*c = EncryptionContext(node.Value)
		return nil

	case yaml.MappingNode:
		m := make(map[string]string, len(node.Content)/2)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := followAlias(node.Content[i]), followAlias(node.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%w: line %d: keys must be strings", ErrInvalidEncryptionContext, k.Line)
			}
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return fmt.Errorf("%w: line %d: key %q: value must be a string, not a list, "+
					"a mapping or null", ErrInvalidEncryptionContext, k.Line, k.Value)
			}
			if _, dup := m[k.Value]; dup {
				return fmt.Errorf("%w: line %d: key %q appears twice",
					ErrInvalidEncryptionContext, k.Line, k.Value)
			}
			m[k.Value] = v.Value
		}
		*c = EncryptionContext(canonicalContext(m)) // one text for one context
		return nil
	}

	return fmt.Errorf("%w: line %d: must be a JSON object in a string, or a mapping of "+
		"string values", ErrInvalidEncryptionContext, node.Line)
}

// followAlias returns the node an alias names, so that an anchored value
// can be reused inside a context mapping.
func followAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Parse returns the context as a map, or nil when it is empty or {}. It
// refuses anything S3 would: text that is not one JSON object, values that
// are not strings, null, keys beginning with "aws:" and repeated keys. The
// error says where the text breaks, as a byte offset from its start.
func (c EncryptionContext) Parse() (map[string]string, error) {
	if c.blank() {
		return nil, nil
	}

	if m, ok := parseSimpleContext(string(c)); ok {
		return m, nil
	}
	return parseContextTokens(string(c))
}

// parseContextTokens is Parse's full parser, which handles every form and
// says where the text breaks.
func parseContextTokens(text string) (map[string]string, error) {
	// The text is decoded untrimmed so that offsets count from its start.
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	at := func() string { return "at offset " + strconv.FormatInt(dec.InputOffset(), 10) }

	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON %s: %v", at(), jsonReason(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("must be a JSON object, found %s", describeToken(tok))
	}

	m := map[string]string{}
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON %s: %v", at(), jsonReason(err))
		}
		key := keyTok.(string) // the decoder only yields string keys inside an object
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			return nil, fmt.Errorf("key %q: keys beginning with \"aws:\" are reserved by S3", key)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}

		valTok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON %s: %v", at(), jsonReason(err))
		}
		val, ok := valTok.(string)
		if !ok {
			return nil, fmt.Errorf("key %q: value must be a string, found %s", key, describeToken(valTok))
		}
		m[key] = val
	}

	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("not valid JSON %s: %v", at(), jsonReason(err))
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		rest := text[end:]
		stray := end + len(rest) - len(strings.TrimLeft(rest, jsonSpace))
		return nil, fmt.Errorf("unexpected text after the JSON object at offset %d", stray)
	}

	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// parseSimpleContext reads the form almost every context takes, an object
// of plain strings, in one pass and without the decoder's allocations:
// reloading 100,000 tenants' overrides parses 100,000 contexts. Anything it
// does not take (escapes, non-string values, invalid UTF-8, reserved or
// repeated keys, any error) it leaves to parseContextTokens, which decides
// and explains; so it only ever accepts, with the same result.
func parseSimpleContext(text string) (map[string]string, bool) {
	i := skipJSONSpace(text, 0)
	if i == len(text) || text[i] != '{' {
		return nil, false
	}
	i = skipJSONSpace(text, i+1)
	if i < len(text) && text[i] == '}' {
		return nil, skipJSONSpace(text, i+1) == len(text)
	}

	m := make(map[string]string, 4)
	for {
		key, next, ok := plainJSONString(text, i)
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup || strings.HasPrefix(strings.ToLower(key), "aws:") {
			return nil, false
		}
		i = skipJSONSpace(text, next)
		if i == len(text) || text[i] != ':' {
			return nil, false
		}
		val, next, ok := plainJSONString(text, skipJSONSpace(text, i+1))
		if !ok {
			return nil, false
		}
		m[key] = val

		i = skipJSONSpace(text, next)
		switch {
		case i < len(text) && text[i] == ',':
			i = skipJSONSpace(text, i+1)
		case i < len(text) && text[i] == '}':
			return m, skipJSONSpace(text, i+1) == len(text)
		default:
			return nil, false
		}
	}
}

// plainJSONString reads a JSON string at text[i] that needs no decoding:
// valid UTF-8 without escapes or control characters. It returns the string
// and the index after its closing quote.
func plainJSONString(text string, i int) (string, int, bool) {
	if i >= len(text) || text[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(text); j++ {
		switch c := text[j]; {
		case c == '"':
			s := text[i+1 : j]
			return s, j + 1, utf8.ValidString(s)
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipJSONSpace(text string, i int) int {
	for i < len(text) && strings.IndexByte(jsonSpace, text[i]) >= 0 {
		i++
	}
	return i
}

// jsonSpace is the white space JSON allows around a value. Other spaces,
// such as U+00A0, are stray characters like any other.
const jsonSpace = " \t\r\n"

// blank reports whether the context is empty or JSON white space only,
// which means no context.
func (c EncryptionContext) blank() bool { return strings.Trim(string(c), jsonSpace) == "" }

func jsonReason(err error) string {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return "text ends early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return strconv.Quote(v.String())
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%v", tok)
}

// canonicalContext is the JSON text sent for a parsed context: keys sorted,
// so the same context gives the same header wherever it came from.
func canonicalContext(m map[string]string) []byte {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(m[k])
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// csvFlag is a flag.Value holding a comma-separated list.
type csvFlag []string

func (v *csvFlag) String() string {
	if v == nil {
		return ""
	}
	return strings.Join(*v, ",")
}

func (v *csvFlag) Set(s string) error {
	*v = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	return nil
}

// Errors that a *ConfigError matches with errors.Is.
var (
	// ErrInvalidConfig matches every *ConfigError.
	ErrInvalidConfig = errors.New("s3sse: invalid SSE configuration")
	// ErrUnknownSSEType: the type is none of the SSEType constants.
	ErrUnknownSSEType = errors.New("s3sse: unknown SSE type")
	// ErrInvalidEncryptionContext: the KMS encryption context is not a JSON
	// object of string values S3 accepts.
	ErrInvalidEncryptionContext = errors.New("s3sse: invalid KMS encryption context")
	// ErrInvalidCustomerKey: the SSE-C key file is missing, unreadable, or
	// does not hold a 256-bit key.
	ErrInvalidCustomerKey = errors.New("s3sse: invalid SSE-C customer key")
	// ErrUnknownOverrideKey: a runtime config file has a key beginning with
	// s3_sse that is not one of the override keys.
	ErrUnknownOverrideKey = errors.New("s3sse: unknown s3_sse override key")
)

// ConfigError describes one invalid value of the sse block or of a tenant's
// override. Its message names the tenant, the key, the flag, the value and
// what would be valid; it never holds key material.
type ConfigError struct {
	File   string // runtime config file, empty for the sse block
	Tenant string // tenant whose override is invalid, empty for the sse block
	Key    string // YAML key, such as sse.type or s3_sse_type
	Flag   string // command-line flag setting the key, if it has one
	Value  string // the value as written; never secret, as keys live in files
	Reason string // what is wrong and what would be valid
	Err    error  // the precise sentinel, such as ErrUnknownSSEType
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("s3sse: ")
	if e.File != "" {
		fmt.Fprintf(&b, "file %s: ", e.File)
	}
	if e.Tenant != "" {
		fmt.Fprintf(&b, "tenant %q: ", e.Tenant)
	}
	b.WriteString(e.Key)
	if e.Flag != "" {
		fmt.Fprintf(&b, " (flag -%s)", e.Flag)
	}
	fmt.Fprintf(&b, " %q: %s", e.Value, e.Reason)
	return b.String()
}

// Unwrap returns the precise sentinel.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
