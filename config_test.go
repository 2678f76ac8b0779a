package s3sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// decodeStrict decodes YAML into out as a host that refuses unknown keys
// does, so that a misspelt key in the sse block is an error.
func decodeStrict(t *testing.T, text []byte, out any) error {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	return dec.Decode(out)
}

// readTestdata returns a file under testdata/config.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "config", name))
	require.NoError(t, err)
	return b
}

// loadSSEBlock decodes a testdata file holding a bare sse block, strictly.
func loadSSEBlock(t *testing.T, name string) Config {
	t.Helper()
	var c Config
	require.NoError(t, decodeStrict(t, readTestdata(t, name), &c), "decode %s", name)
	return c
}

// registeredConfig returns a Config whose flags were registered under
// prefix on a throwaway flag set, then changed by set, as a host would have
// it after parsing its command line.
func registeredConfig(prefix string, set func(c *Config)) Config {
	var c Config
	c.RegisterFlagsWithPrefix(prefix, flag.NewFlagSet("test", flag.PanicOnError))
	if set != nil {
		set(&c)
	}
	return c
}

func TestConfigYAMLStringAndMappingContextAgree(t *testing.T) {
	str := loadSSEBlock(t, "sse-string-context.yaml")
	mapping := loadSSEBlock(t, "sse-mapping-context.yaml")

	const keyID = "arn:aws:kms:eu-west-1:123456789012:key/0f6a8d2c-4e7b-4a39-9c1d-5b2e8f7a6c30"
	wantContext := map[string]string{"team": "payments", "env": "prod", "cost-centre": "4711"}
	for name, c := range map[string]Config{"string": str, "mapping": mapping} {
		require.NoError(t, c.Validate(), "%s form: %s", name, c)
		require.Equal(t, TypeSSEKMS, c.Type, "%s form: type", name)
		require.Equal(t, keyID, c.KMSKeyID, "%s form: key id", name)

		got, err := c.KMSEncryptionContext.Parse()
		require.NoError(t, err, "%s form: context %q", name, c.KMSEncryptionContext)
		require.Equal(t, wantContext, got, "%s form: context %q", name, c.KMSEncryptionContext)
	}

	strHeaders := configHeaders(t, str)
	require.Equal(t, strHeaders, configHeaders(t, mapping),
		"the two forms of one context must send the same headers")
	require.Equal(t, headerSet{
		"X-Amz-Server-Side-Encryption":                "aws:kms",
		"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": keyID,
		"X-Amz-Server-Side-Encryption-Context": b64(
			`{"cost-centre":"4711","env":"prod","team":"payments"}`),
	}, strHeaders)
}

// cortexS3 is the part of a Cortex component's s3 block a test needs: the
// host's own keys around the sse block.
type cortexS3 struct {
	Endpoint   string `yaml:"endpoint"`
	BucketName string `yaml:"bucket_name"`
	SSE        Config `yaml:"sse"`
}

type cortexStorage struct {
	Backend string   `yaml:"backend"`
	S3      cortexS3 `yaml:"s3"`
}

type cortexConfig struct {
	BlocksStorage       cortexStorage `yaml:"blocks_storage"`
	RulerStorage        cortexStorage `yaml:"ruler_storage"`
	AlertmanagerStorage cortexStorage `yaml:"alertmanager_storage"`
}

func TestConfigYAMLCortexComponentsStrict(t *testing.T) {
	var cfg cortexConfig
	require.NoError(t, decodeStrict(t, readTestdata(t, "cortex-components.yaml"), &cfg))

	tests := []struct {
		component string    // YAML section of the component
		got       Config    // its decoded sse block
		want      headerSet // headers its writes carry
	}{
		{
			component: "blocks_storage",
			got:       cfg.BlocksStorage.S3.SSE,
			want: headerSet{
				"X-Amz-Server-Side-Encryption":                "aws:kms",
				"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "alias/cortex-blocks",
				"X-Amz-Server-Side-Encryption-Context":        b64(`{"component":"blocks-storage"}`),
			},
		},
		{
			component: "ruler_storage",
			got:       cfg.RulerStorage.S3.SSE,
			want: headerSet{
				"X-Amz-Server-Side-Encryption":         "aws:kms:dsse",
				"X-Amz-Server-Side-Encryption-Context": b64(`{"component":"ruler-storage"}`),
			},
		},
		{
			component: "alertmanager_storage",
			got:       cfg.AlertmanagerStorage.S3.SSE,
			want:      headerSet{"X-Amz-Server-Side-Encryption": "AES256"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.component, func(t *testing.T) {
			require.NoError(t, tc.got.Validate(), "block: %s", tc.got)
			require.Equal(t, tc.want, configHeaders(t, tc.got), "block: %s", tc.got)
		})
	}

	// The host's keys beside the sse block still decode: s3sse takes only
	// its own block.
	require.Equal(t, "cortex-blocks", cfg.BlocksStorage.S3.BucketName)
}

func TestConfigYAMLStrictRefusesMisspeltKey(t *testing.T) {
	var cfg cortexConfig
	err := decodeStrict(t, readTestdata(t, "sse-misspelled-key.yaml"), &cfg)
	require.Error(t, err, "a misspelt sse key must not be dropped silently")
	require.Contains(t, err.Error(), "kms_keyid")
}

func TestConfigYAMLKeys(t *testing.T) {
	// The YAML keys are what existing Cortex files hold: pin them by
	// writing a Config out and reading the names back.
	c := Config{
		Type:                     TypeSSEC,
		KMSKeyID:                 "k",
		KMSEncryptionContext:     `{"a":"b"}`,
		CustomerKeyFile:          "/keys/current",
		CustomerPreviousKeyFiles: []string{"/keys/old"},
	}
	out, err := yaml.Marshal(c)
	require.NoError(t, err)

	var keys map[string]any
	require.NoError(t, yaml.Unmarshal(out, &keys))
	got := make([]string, 0, len(keys))
	for k := range keys {
		got = append(got, k)
	}
	require.ElementsMatch(t, []string{
		"type", "kms_key_id", "kms_encryption_context",
		"customer_key_file", "customer_previous_key_files",
	}, got, "YAML of %s:\n%s", c, out)

	var back Config
	require.NoError(t, decodeStrict(t, out, &back))
	require.Equal(t, c, back, "YAML round trip:\n%s", out)
}

func TestEncryptionContextYAMLForms(t *testing.T) {
	tests := []struct {
		name    string            // what the case shows
		yaml    string            // the sse block
		want    EncryptionContext // the context stored, when decoding succeeds
		wantErr string            // part of the decoding error, empty for none
	}{
		{
			name: "absent",
			yaml: "type: SSE-KMS\n",
			want: "",
		},
		{
			name: "empty string",
			yaml: "kms_encryption_context: ''\n",
			want: "",
		},
		{
			name: "JSON text in a string is kept as written",
			yaml: `kms_encryption_context: '{"b": "2", "a": "1"}'` + "\n",
			want: `{"b": "2", "a": "1"}`,
		},
		{
			name: "mapping is stored as JSON with sorted keys",
			yaml: "kms_encryption_context:\n  b: '2'\n  a: x y\n",
			want: `{"a":"x y","b":"2"}`,
		},
		{
			name: "flow mapping",
			yaml: "kms_encryption_context: {tenant: team-a}\n",
			want: `{"tenant":"team-a"}`,
		},
		{
			name: "empty mapping sends no context",
			yaml: "kms_encryption_context: {}\n",
			want: "",
		},
		{
			name: "scalars in a mapping are taken as their text",
			yaml: "kms_encryption_context: {n: 1, ok: true}\n",
			want: `{"n":"1","ok":"true"}`,
		},
		{
			name: "aliases in a mapping are followed",
			yaml: "kms_key_id: &team team-a\nkms_encryption_context: {tenant: *team}\n",
			want: `{"tenant":"team-a"}`,
		},
		{
			name:    "list value",
			yaml:    "kms_encryption_context:\n  tenants: [a, b]\n",
			wantErr: `line 2: key "tenants"`,
		},
		{
			name:    "mapping value",
			yaml:    "kms_encryption_context:\n  tenant: {name: a}\n",
			wantErr: `line 2: key "tenant"`,
		},
		{
			name:    "null value",
			yaml:    "kms_encryption_context:\n  tenant:\n",
			wantErr: `line 2: key "tenant"`,
		},
		{
			name:    "repeated key",
			yaml:    "kms_encryption_context:\n  tenant: a\n  tenant: b\n",
			wantErr: `line 3: key "tenant" appears twice`,
		},
		{
			name:    "list instead of a mapping",
			yaml:    "kms_encryption_context: [a, b]\n",
			wantErr: "line 1: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := decodeStrict(t, []byte(tc.yaml), &c)
			if tc.wantErr != "" {
				require.Error(t, err, "input:\n%s", tc.yaml)
				require.ErrorIs(t, err, ErrInvalidEncryptionContext, "input:\n%s", tc.yaml)
				require.Contains(t, err.Error(), tc.wantErr, "input:\n%s", tc.yaml)
				return
			}
			require.NoError(t, err, "input:\n%s", tc.yaml)
			require.Equal(t, tc.want, c.KMSEncryptionContext, "input:\n%s", tc.yaml)
			require.NoError(t, c.Validate(), "input:\n%s", tc.yaml)
		})
	}
}

// flagNames are the five flags of one sse block, written out in full so
// that a change to any name fails the test.
type flagNames struct {
	typ, keyID, context, keyFile, previousKeyFiles string
}

func (n flagNames) all() []string {
	return []string{n.typ, n.keyID, n.context, n.keyFile, n.previousKeyFiles}
}

// componentFlags are the flags of the Cortex components' sse blocks, and
// of a block registered with no prefix.
var componentFlags = []struct {
	prefix string    // prefix passed to RegisterFlagsWithPrefix
	want   flagNames // flags registered for it
}{
	{
		prefix: "blocks-storage.",
		want: flagNames{
			typ:              "blocks-storage.s3.sse.type",
			keyID:            "blocks-storage.s3.sse.kms-key-id",
			context:          "blocks-storage.s3.sse.kms-encryption-context",
			keyFile:          "blocks-storage.s3.sse.customer-key-file",
			previousKeyFiles: "blocks-storage.s3.sse.customer-previous-key-files",
		},
	},
	{
		prefix: "ruler-storage.",
		want: flagNames{
			typ:              "ruler-storage.s3.sse.type",
			keyID:            "ruler-storage.s3.sse.kms-key-id",
			context:          "ruler-storage.s3.sse.kms-encryption-context",
			keyFile:          "ruler-storage.s3.sse.customer-key-file",
			previousKeyFiles: "ruler-storage.s3.sse.customer-previous-key-files",
		},
	},
	{
		prefix: "alertmanager-storage.",
		want: flagNames{
			typ:              "alertmanager-storage.s3.sse.type",
			keyID:            "alertmanager-storage.s3.sse.kms-key-id",
			context:          "alertmanager-storage.s3.sse.kms-encryption-context",
			keyFile:          "alertmanager-storage.s3.sse.customer-key-file",
			previousKeyFiles: "alertmanager-storage.s3.sse.customer-previous-key-files",
		},
	},
	{
		prefix: "",
		want: flagNames{
			typ:              "s3.sse.type",
			keyID:            "s3.sse.kms-key-id",
			context:          "s3.sse.kms-encryption-context",
			keyFile:          "s3.sse.customer-key-file",
			previousKeyFiles: "s3.sse.customer-previous-key-files",
		},
	},
}

func TestRegisterFlagsWithPrefix(t *testing.T) {
	for _, tc := range componentFlags {
		t.Run("prefix "+strconv.Quote(tc.prefix), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			c := Config{ // filled, to show that registering sets the defaults
				Type: TypeSSEC, KMSKeyID: "k", KMSEncryptionContext: "{}",
				CustomerKeyFile: "f", CustomerPreviousKeyFiles: []string{"p"},
			}
			c.RegisterFlagsWithPrefix(tc.prefix, fs)

			var got []string
			fs.VisitAll(func(f *flag.Flag) { got = append(got, f.Name) })
			require.ElementsMatch(t, tc.want.all(), got, "prefix %q", tc.prefix)

			for _, name := range got {
				f := fs.Lookup(name)
				require.Empty(t, f.DefValue, "flag -%s: default", name)
				requireSentences(t, name, f.Usage)
			}

			typeUsage := fs.Lookup(tc.want.typ).Usage
			for _, typ := range SSETypes[1:] {
				require.Contains(t, typeUsage, string(typ), "flag -%s must list the allowed values",
					tc.want.typ)
			}
			require.Contains(t, typeUsage, "Empty", "flag -%s must say what empty means", tc.want.typ)
			require.Equal(t, Config{flagPrefix: tc.prefix}, c, "registering sets the zero Config")
		})
	}
}

// requireSentences checks that a flag's help text is made of full
// sentences: capitalised, ending with a full stop.
func requireSentences(t *testing.T, flagName, usage string) {
	t.Helper()
	require.NotEmpty(t, usage, "flag -%s: help text", flagName)
	first, _ := utf8.DecodeRuneInString(usage)
	require.True(t, unicode.IsUpper(first), "flag -%s: help %q must start a sentence", flagName, usage)
	require.True(t, strings.HasSuffix(usage, "."), "flag -%s: help %q must end a sentence",
		flagName, usage)
}

func TestRegisterFlagsWithPrefixParsesEveryFlag(t *testing.T) {
	for _, tc := range componentFlags {
		t.Run("prefix "+strconv.Quote(tc.prefix), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var c Config
			c.RegisterFlagsWithPrefix(tc.prefix, fs)

			args := []string{
				"-" + tc.want.typ, "SSE-KMS",
				"-" + tc.want.keyID, "alias/team-a",
				"-" + tc.want.context, `{"tenant":"team-a"}`,
				"-" + tc.want.keyFile, "/keys/current",
				"-" + tc.want.previousKeyFiles, "/keys/2024, /keys/2023",
			}
			require.NoError(t, fs.Parse(args), "args %q", args)

			require.Equal(t, Config{
				Type:                     TypeSSEKMS,
				KMSKeyID:                 "alias/team-a",
				KMSEncryptionContext:     `{"tenant":"team-a"}`,
				CustomerKeyFile:          "/keys/current",
				CustomerPreviousKeyFiles: []string{"/keys/2024", "/keys/2023"},
				flagPrefix:               tc.prefix,
			}, c, "args %q", args)
			require.Equal(t, "/keys/2024,/keys/2023",
				fs.Lookup(tc.want.previousKeyFiles).Value.String())
		})
	}
}

func TestRegisterFlagsWithPrefixSeveralComponentsOnOneFlagSet(t *testing.T) {
	// A Cortex binary registers every component's block on one flag set:
	// the names must not collide, and each flag sets its own block.
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	blocks, ruler, alertmanager := &Config{}, &Config{}, &Config{}
	blocks.RegisterFlagsWithPrefix("blocks-storage.", fs)
	ruler.RegisterFlagsWithPrefix("ruler-storage.", fs)
	alertmanager.RegisterFlagsWithPrefix("alertmanager-storage.", fs)

	require.NoError(t, fs.Parse([]string{
		"-blocks-storage.s3.sse.type=SSE-KMS",
		"-ruler-storage.s3.sse.type=SSE-S3",
	}))
	require.Equal(t, TypeSSEKMS, blocks.Type)
	require.Equal(t, TypeSSES3, ruler.Type)
	require.Equal(t, TypeNone, alertmanager.Type)

	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	require.Equal(t, 15, n, "three blocks of five flags")
}

func TestConfigFlagsThenYAML(t *testing.T) {
	// The order Config's doc describes for a host that parses its command
	// line and then decodes its YAML file: the file wins for the keys it
	// names, the flags keep the rest.
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Config
	c.RegisterFlagsWithPrefix("blocks-storage.", fs)
	require.NoError(t, fs.Parse([]string{
		"-blocks-storage.s3.sse.type=SSE-KMS",
		"-blocks-storage.s3.sse.kms-key-id=alias/from-flag",
		`-blocks-storage.s3.sse.kms-encryption-context={"from":"flag"}`,
	}))

	require.NoError(t, decodeStrict(t, []byte("kms_key_id: alias/from-yaml\n"), &c))
	require.Equal(t, TypeSSEKMS, c.Type, "type only set by flag")
	require.Equal(t, "alias/from-yaml", c.KMSKeyID, "key id set by both: YAML wins")
	require.Equal(t, EncryptionContext(`{"from":"flag"}`), c.KMSEncryptionContext,
		"context only set by flag")

	// An empty string in YAML is a value like any other: it clears the flag.
	require.NoError(t, decodeStrict(t, []byte("kms_encryption_context: ''\n"), &c))
	require.Empty(t, c.KMSEncryptionContext)

	// Errors still name the flags of the prefix the block was registered
	// under, after YAML was decoded into it.
	require.NoError(t, decodeStrict(t, []byte("type: SSE-KSM\n"), &c))
	err := c.Validate()
	require.ErrorIs(t, err, ErrUnknownSSEType)
	require.Contains(t, err.Error(), "-blocks-storage.s3.sse.type")
}

func TestConfigYAMLThenFlags(t *testing.T) {
	// Cortex's order: flags register the defaults, the YAML file is
	// decoded, then the command line is parsed again so that a flag given
	// explicitly beats the file.
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c Config
	c.RegisterFlagsWithPrefix("ruler-storage.", fs)

	require.NoError(t, decodeStrict(t, []byte(
		"type: SSE-KMS\nkms_key_id: alias/from-yaml\nkms_encryption_context: {from: yaml}\n"), &c))
	require.NoError(t, fs.Parse([]string{"-ruler-storage.s3.sse.kms-key-id=alias/from-flag"}))

	require.Equal(t, TypeSSEKMS, c.Type, "type only set in YAML")
	require.Equal(t, "alias/from-flag", c.KMSKeyID, "key id set by both: the later flag wins")
	require.Equal(t, EncryptionContext(`{"from":"yaml"}`), c.KMSEncryptionContext)
}

// validationCases are sse blocks Validate refuses, registered under the
// blocks-storage. prefix.
var validationCases = []struct {
	name       string // what is wrong
	typ        SSEType
	keyID      string
	context    EncryptionContext
	keyFile    string
	sentinel   error  // the precise sentinel the error matches
	wantKey    string // YAML key the error names
	wantFlag   string // flag the error names, without the dash
	wantValue  string // value the error quotes
	wantReason string // part of the reason: where the value breaks and what is valid
}{
	{
		name:       "unknown type",
		typ:        "SSE-KSM",
		sentinel:   ErrUnknownSSEType,
		wantKey:    "sse.type",
		wantFlag:   "blocks-storage.s3.sse.type",
		wantValue:  "SSE-KSM",
		wantReason: "valid: SSE-S3, SSE-KMS, DSSE-KMS, SSE-C, or empty",
	},
	{
		name:       "type in lower case",
		typ:        "sse-kms",
		sentinel:   ErrUnknownSSEType,
		wantKey:    "sse.type",
		wantFlag:   "blocks-storage.s3.sse.type",
		wantValue:  "sse-kms",
		wantReason: "unknown SSE type",
	},
	{
		name:       "type written as its header value",
		typ:        "AES256",
		sentinel:   ErrUnknownSSEType,
		wantKey:    "sse.type",
		wantFlag:   "blocks-storage.s3.sse.type",
		wantValue:  "AES256",
		wantReason: "unknown SSE type",
	},
	{
		name:       "context is not JSON",
		typ:        TypeSSEKMS,
		context:    `{tenant: "a"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{tenant: "a"}`,
		wantReason: "not valid JSON at offset 1",
	},
	{
		name:       "context breaks in the middle",
		typ:        TypeSSEKMS,
		context:    `{"a":"1" "b":"2"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"a":"1" "b":"2"}`,
		wantReason: "at offset 9",
	},
	{
		name:       "context ends early",
		typ:        TypeSSEKMS,
		context:    `{"a":"1"`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"a":"1"`,
		wantReason: "text ends early",
	},
	{
		name:       "context is an array",
		typ:        TypeSSEKMS,
		context:    `["a"]`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `["a"]`,
		wantReason: "must be a JSON object, found an array",
	},
	{
		name:       "context is a string",
		typ:        TypeSSEKMS,
		context:    `"tenant=a"`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `"tenant=a"`,
		wantReason: "must be a JSON object, found a string",
	},
	{
		name:       "context is null",
		typ:        TypeSSEKMS,
		context:    "null",
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  "null",
		wantReason: "must be a JSON object, found null",
	},
	{
		name:       "number value",
		typ:        TypeSSEKMS,
		context:    `{"tenant":"a","shard":7}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"tenant":"a","shard":7}`,
		wantReason: `key "shard": value must be a string, found a number`,
	},
	{
		name:       "boolean value",
		typ:        TypeDSSEKMS,
		context:    `{"audited":true}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"audited":true}`,
		wantReason: `key "audited": value must be a string, found a boolean`,
	},
	{
		name:       "null value",
		typ:        TypeSSEKMS,
		context:    `{"tenant":null}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"tenant":null}`,
		wantReason: `key "tenant": value must be a string, found null`,
	},
	{
		name:       "object value",
		typ:        TypeSSEKMS,
		context:    `{"tenant":{"id":"a"}}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"tenant":{"id":"a"}}`,
		wantReason: `key "tenant": value must be a string, found an object`,
	},
	{
		name:       "array value",
		typ:        TypeSSEKMS,
		context:    `{"tenants":["a"]}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"tenants":["a"]}`,
		wantReason: `key "tenants": value must be a string, found an array`,
	},
	{
		name:       "key reserved by S3",
		typ:        TypeSSEKMS,
		context:    `{"aws:s3:arn":"arn:aws:s3:::bucket"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"aws:s3:arn":"arn:aws:s3:::bucket"}`,
		wantReason: `key "aws:s3:arn": keys beginning with "aws:" are reserved by S3`,
	},
	{
		name:       "key reserved by S3, in upper case",
		typ:        TypeSSEKMS,
		context:    `{"AWS:tenant":"a"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"AWS:tenant":"a"}`,
		wantReason: `key "AWS:tenant": keys beginning with "aws:" are reserved`,
	},
	{
		name:       "key reserved by S3, written with an escape",
		typ:        TypeSSEKMS,
		context:    `{"\u0061ws:tenant":"a"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"\u0061ws:tenant":"a"}`,
		wantReason: `key "aws:tenant": keys beginning with "aws:" are reserved`,
	},
	{
		name:       "text after the object",
		typ:        TypeSSEKMS,
		context:    `{"a":"1"} x`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"a":"1"} x`,
		wantReason: "unexpected text after the JSON object at offset 10",
	},
	{
		name:       "two objects",
		typ:        TypeSSEKMS,
		context:    `{"a":"1"}{"b":"2"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"a":"1"}{"b":"2"}`,
		wantReason: "unexpected text after the JSON object at offset 9",
	},
	{
		name:       "offsets count leading white space",
		typ:        TypeSSEKMS,
		context:    "\n\n{tenant: \"a\"}",
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  "\n\n{tenant: \"a\"}",
		wantReason: "not valid JSON at offset 3",
	},
	{
		name:       "a space JSON does not allow",
		typ:        TypeSSEKMS,
		context:    "\u00a0{}",
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  "\u00a0{}",
		wantReason: "not valid JSON at offset 0",
	},
	{
		name:       "repeated key",
		typ:        TypeSSEKMS,
		context:    `{"tenant":"a","tenant":"b"}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"tenant":"a","tenant":"b"}`,
		wantReason: `key "tenant" appears twice`,
	},
	{
		// A typo waits for no type change: the context is checked whatever
		// the type, though only SSE-KMS and DSSE-KMS send it.
		name:       "invalid context with a type that does not send it",
		typ:        TypeSSES3,
		context:    `{"a":1}`,
		sentinel:   ErrInvalidEncryptionContext,
		wantKey:    "sse.kms_encryption_context",
		wantFlag:   "blocks-storage.s3.sse.kms-encryption-context",
		wantValue:  `{"a":1}`,
		wantReason: "found a number",
	},
	{
		name:       "SSE-C without a key file",
		typ:        TypeSSEC,
		sentinel:   ErrInvalidCustomerKey,
		wantKey:    "sse.customer_key_file",
		wantFlag:   "blocks-storage.s3.sse.customer-key-file",
		wantValue:  "",
		wantReason: "SSE-C needs the file holding the customer key",
	},
}

// sentinels are the precise errors; each ConfigError matches exactly one.
var sentinels = []error{
	ErrUnknownSSEType, ErrInvalidEncryptionContext, ErrInvalidCustomerKey, ErrUnknownOverrideKey,
}

func TestConfigValidateRefuses(t *testing.T) {
	for _, tc := range validationCases {
		t.Run(tc.name, func(t *testing.T) {
			c := registeredConfig("blocks-storage.", func(c *Config) {
				c.Type, c.KMSKeyID, c.KMSEncryptionContext, c.CustomerKeyFile =
					tc.typ, tc.keyID, tc.context, tc.keyFile
			})
			err := c.Validate()
			requireConfigError(t, err, c.String(), tc.sentinel, tc.wantKey, tc.wantFlag,
				tc.wantValue, tc.wantReason)

			// Encryption refuses it the same way, before reading any file.
			_, encErr := c.Encryption()
			require.Equal(t, err.Error(), encErr.Error(), "block: %s", c)
		})
	}
}

// requireConfigError checks that err is a *ConfigError matching
// ErrInvalidConfig and sentinel (and no other sentinel), whose fields and
// message name key, flag and value and give the reason.
func requireConfigError(t *testing.T, err error, input string, sentinel error,
	key, flagName, value, reason string) {
	t.Helper()
	require.Error(t, err, "input: %s", input)
	require.ErrorIs(t, err, ErrInvalidConfig, "input: %s", input)
	require.ErrorIs(t, err, sentinel, "input: %s", input)
	for _, other := range sentinels {
		if other != sentinel {
			require.NotErrorIs(t, err, other, "input: %s", input)
		}
	}

	var ce *ConfigError
	require.ErrorAs(t, err, &ce, "input: %s", input)
	require.Equal(t, key, ce.Key, "input: %s: key", input)
	require.Equal(t, flagName, ce.Flag, "input: %s: flag", input)
	require.Equal(t, value, ce.Value, "input: %s: value", input)

	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "s3sse: "), "message %q: package prefix", msg)
	require.Contains(t, msg, key, "message names the YAML key")
	if flagName != "" {
		require.Contains(t, msg, "-"+flagName, "message names the flag")
	}
	require.Contains(t, msg, strconv.Quote(value), "message quotes the value")
	require.Contains(t, msg, reason, "message gives the reason")
}

func TestConfigValidateAccepts(t *testing.T) {
	tests := []struct {
		name string // what the case shows
		cfg  Config
	}{
		{name: "zero value: no SSE", cfg: Config{}},
		{name: "SSE-S3", cfg: Config{Type: TypeSSES3}},
		{name: "SSE-KMS without key id: the managed key", cfg: Config{Type: TypeSSEKMS}},
		{name: "SSE-KMS with key id", cfg: Config{Type: TypeSSEKMS, KMSKeyID: "alias/a"}},
		{name: "empty object context", cfg: Config{Type: TypeSSEKMS, KMSEncryptionContext: "{}"}},
		{name: "blank context", cfg: Config{Type: TypeSSEKMS, KMSEncryptionContext: " \n\t"}},
		{
			name: "context with JSON white space and escapes",
			cfg: Config{Type: TypeSSEKMS,
				KMSEncryptionContext: "\n{ \"t\\u00e9nant\" : \"a\\\"b\" ,\r\n\"x\":\"\" }\n"},
		},
		{name: "a key containing aws: further in", cfg: Config{
			Type: TypeSSEKMS, KMSEncryptionContext: `{"team:aws:x":"a","aws":"b"}`}},
		{name: "DSSE-KMS", cfg: Config{Type: TypeDSSEKMS, KMSKeyID: "k",
			KMSEncryptionContext: `{"a":"b"}`}},
		{name: "key id with a type that does not use it", cfg: Config{Type: TypeSSES3,
			KMSKeyID: "alias/a"}},
		{
			// Validate reads no key file: this one does not exist.
			name: "SSE-C with a key file",
			cfg:  Config{Type: TypeSSEC, CustomerKeyFile: "/does/not/exist"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate(), "block: %s", tc.cfg)
		})
	}
}

func TestEncryptionContextParse(t *testing.T) {
	tests := []struct {
		text EncryptionContext // context as configured
		want map[string]string // parsed; nil for no context
	}{
		{text: "", want: nil},
		{text: "  \n", want: nil},
		{text: "{}", want: nil},
		{text: " { } ", want: nil},
		{text: `{"a":"1"}`, want: map[string]string{"a": "1"}},
		{text: `{"b":"2","a":""}`, want: map[string]string{"a": "", "b": "2"}},
		{text: `{"":"empty key"}`, want: map[string]string{"": "empty key"}},
		{text: `{"\u00e9":"\ud83d\ude00"}`, want: map[string]string{"é": "😀"}},
		{text: `{"aws":"not a prefix"}`, want: map[string]string{"aws": "not a prefix"}},
	}
	for _, tc := range tests {
		got, err := tc.text.Parse()
		require.NoError(t, err, "input %q", tc.text)
		require.Equal(t, tc.want, got, "input %q", tc.text)
	}
}

func TestConfigWarnings(t *testing.T) {
	tests := []struct {
		name string   // what the case shows
		cfg  Config   // block, registered under blocks-storage.
		want []string // parts of each warning, in order; none for no warning
	}{
		{name: "nothing set", cfg: Config{}},
		{name: "SSE-KMS uses key id and context", cfg: Config{Type: TypeSSEKMS, KMSKeyID: "k",
			KMSEncryptionContext: `{"a":"b"}`}},
		{name: "DSSE-KMS uses key id and context", cfg: Config{Type: TypeDSSEKMS, KMSKeyID: "k",
			KMSEncryptionContext: `{"a":"b"}`}},
		{name: "SSE-C uses its key file", cfg: Config{Type: TypeSSEC, CustomerKeyFile: "f"}},
		{name: "blank context is no context", cfg: Config{Type: TypeSSES3,
			KMSEncryptionContext: "  "}},
		{
			name: "key id with SSE-S3",
			cfg:  Config{Type: TypeSSES3, KMSKeyID: "alias/a"},
			want: []string{`sse.kms_key_id (flag -blocks-storage.s3.sse.kms-key-id) is set but ` +
				`type "SSE-S3" does not use it; it is ignored`},
		},
		{
			name: "key id and context with no type",
			cfg:  Config{KMSKeyID: "alias/a", KMSEncryptionContext: `{"a":"b"}`},
			want: []string{
				`sse.kms_key_id (flag -blocks-storage.s3.sse.kms-key-id) is set but type ""`,
				`sse.kms_encryption_context (flag -blocks-storage.s3.sse.kms-encryption-context) ` +
					`is set but type ""`,
			},
		},
		{
			name: "context with SSE-C",
			cfg:  Config{Type: TypeSSEC, CustomerKeyFile: "f", KMSEncryptionContext: `{"a":"b"}`},
			want: []string{`sse.kms_encryption_context (flag ` +
				`-blocks-storage.s3.sse.kms-encryption-context) is set but type "SSE-C"`},
		},
		{
			name: "key file with SSE-KMS",
			cfg:  Config{Type: TypeSSEKMS, CustomerKeyFile: "f"},
			want: []string{`sse.customer_key_file (flag -blocks-storage.s3.sse.customer-key-file) ` +
				`is set but type "SSE-KMS" does not use it for writes; it is only tried on reads`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.flagPrefix = "blocks-storage."
			got := c.settings().warnings()
			require.Len(t, got, len(tc.want), "block %s: warnings %q", c, got)
			for i, w := range tc.want {
				require.Contains(t, got[i], w, "block %s: warning %d", c, i)
			}
			require.NoError(t, c.Validate(), "a warning is no error: block %s", c)
		})
	}
}

func TestConfigErrorMessage(t *testing.T) {
	tests := []struct {
		err  *ConfigError // error as built
		want string       // its full message
	}{
		{
			err: &ConfigError{Key: "sse.type", Flag: "blocks-storage.s3.sse.type", Value: "x",
				Reason: "unknown SSE type", Err: ErrUnknownSSEType},
			want: `s3sse: sse.type (flag -blocks-storage.s3.sse.type) "x": unknown SSE type`,
		},
		{
			err: &ConfigError{File: "/etc/runtime.yaml", Tenant: "team-a", Key: "s3_sse_type",
				Value: "x", Reason: "unknown SSE type", Err: ErrUnknownSSEType},
			want: `s3sse: file /etc/runtime.yaml: tenant "team-a": s3_sse_type "x": unknown SSE type`,
		},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.err.Error())
		require.ErrorIs(t, tc.err, ErrInvalidConfig)
		require.ErrorIs(t, tc.err, tc.err.Err)
	}

	// Wrapped further up, it still matches and can be taken apart.
	wrapped := errors.Join(errors.New("load config"), &ConfigError{Key: "k", Err: ErrUnknownSSEType})
	var ce *ConfigError
	require.ErrorAs(t, wrapped, &ce)
	require.ErrorIs(t, wrapped, ErrInvalidConfig)
	require.ErrorIs(t, wrapped, ErrUnknownSSEType)
}

// FuzzEncryptionContext checks the context parser: it never panics, and a
// context it accepts means one map however it is written.
func FuzzEncryptionContext(f *testing.F) {
	for _, tc := range validationCases {
		f.Add(string(tc.context))
	}
	for _, seed := range []string{
		"", " ", "{}", `{"a":"b"}`, `{"b":"2","a":"1"}`, `{"":""}`, `{"a":"<&>"}`,
		`{"\u00e9":"\ud83d\ude00"}`, `{"a":"\u2028"}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`,
		`{"a":"b",}`, `{,}`, `{"a"}`, `{"a":}`, `{"a":"b"]`, `[`, `}`, `{{}}`, `{"a":1e999}`,
		`{"aws:":"x"}`, `{"Aws:x":"y"}`, "\u00a0{}", "{}\u00a0", "\ufeff{}", `{"a":"b"}   `,
		`{"a":"b"}}`, `{"a":"b"}]`, `"a"`, `1`, `true`, `null`, `{"a":[{"b":[]}]}`,
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, text string) {
		// The quick reader only ever accepts, and then as the full parser.
		if quick, ok := parseSimpleContext(text); ok {
			full, err := parseContextTokens(text)
			require.NoError(t, err, "input %q: the quick reader took what the parser refuses", text)
			require.Equal(t, full, quick, "input %q", text)
		}

		m, err := EncryptionContext(text).Parse()
		if err != nil {
			c := Config{Type: TypeSSEKMS, KMSEncryptionContext: EncryptionContext(text)}
			require.ErrorIs(t, c.Validate(), ErrInvalidEncryptionContext, "input %q", text)
			return
		}

		// What is accepted is JSON a standard decoder reads as the same map,
		// with no key S3 reserves.
		if strings.Trim(text, " \t\r\n") != "" {
			var std map[string]string
			require.NoError(t, json.Unmarshal([]byte(text), &std), "input %q", text)
			if len(std) == 0 {
				std = nil // {} is no context
			}
			require.Equal(t, m, std, "input %q", text)
		} else {
			require.Nil(t, m, "input %q", text)
		}
		for k := range m {
			require.False(t, strings.HasPrefix(strings.ToLower(k), "aws:"), "input %q", text)
		}

		// The text sent to S3 parses back to the same map, and is its own
		// canonical form.
		canon := canonicalContext(m)
		back, err := EncryptionContext(canon).Parse()
		require.NoError(t, err, "input %q: canonical %q", text, canon)
		require.Equal(t, m, back, "input %q: canonical %q", text, canon)
		require.Equal(t, canon, canonicalContext(back), "input %q", text)

		// The YAML string form and the YAML mapping form give the same map.
		if utf8.ValidString(text) {
			requireYAMLContext(t, quotedScalar(text), m, text)
		}
		if m != nil {
			mapping := &yaml.Node{Kind: yaml.MappingNode}
			for k, v := range m {
				mapping.Content = append(mapping.Content, quotedScalar(k), quotedScalar(v))
			}
			requireYAMLContext(t, mapping, m, text)
		}

		// SSE-KMS and DSSE-KMS send the same context header, the canonical
		// text, and never "null".
		ctx := EncryptionContext(text)
		kms := configHeaders(t, Config{Type: TypeSSEKMS, KMSEncryptionContext: ctx})
		dsse := configHeaders(t, Config{Type: TypeDSSEKMS, KMSEncryptionContext: ctx})
		const contextHeader = "X-Amz-Server-Side-Encryption-Context"
		require.Equal(t, kms[contextHeader], dsse[contextHeader], "input %q", text)
		if m == nil {
			require.NotContains(t, kms, contextHeader, "input %q", text)
		} else {
			require.Equal(t, b64(string(canon)), kms[contextHeader], "input %q", text)
		}
	})
}

// quotedScalar is s as a double-quoted YAML string. yaml.v3 writes other
// styles of some strings wrongly (it drops the leading newline of a
// literal block), which is no fault of the parser under test.
func quotedScalar(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: s}
}

// requireYAMLContext writes an sse block whose kms_encryption_context is
// context, decodes it into a Config and checks that its context parses
// to want.
func requireYAMLContext(t *testing.T, context *yaml.Node, want map[string]string, input string) {
	t.Helper()
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "kms_encryption_context"}, context,
	}}
	out, err := yaml.Marshal(doc)
	require.NoError(t, err, "input %q", input)

	var c Config
	require.NoError(t, decodeStrict(t, out, &c), "input %q: YAML:\n%s", input, out)
	got, err := c.KMSEncryptionContext.Parse()
	require.NoError(t, err, "input %q: YAML:\n%s", input, out)
	require.Equal(t, want, got, "input %q: YAML:\n%s", input, out)
}
