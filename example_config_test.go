package s3sse_test

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
)

// printHeaders prints the headers a write carries, sorted by name.
func printHeaders(h http.Header) {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("%s: %s\n", name, h.Get(name))
	}
}

// A Cortex sse block loads unchanged: the encryption context may be the
// JSON text Cortex users already have, or a YAML mapping.
func ExampleConfig() {
	const block = `
type: SSE-KMS
kms_key_id: alias/cortex-blocks
kms_encryption_context: '{"tenant": "team-a", "env": "prod"}'
`
	var cfg s3sse.Config
	if err := yaml.Unmarshal([]byte(block), &cfg); err != nil {
		fmt.Println("decode:", err)
		return
	}
	if err := cfg.Validate(); err != nil {
		fmt.Println(err)
		return
	}

	enc, err := cfg.Encryption()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(enc.Type(), enc.KMSKeyID(), enc.ContextJSON())
	// Output:
	// SSE-KMS alias/cortex-blocks {"env":"prod","tenant":"team-a"}
}

// Each component registers its sse block under its own prefix, which ends
// with a dot; the flag names are the ones Cortex uses.
func ExampleConfig_RegisterFlagsWithPrefix() {
	fs := flag.NewFlagSet("cortex", flag.ContinueOnError)
	var blocks s3sse.Config
	blocks.RegisterFlagsWithPrefix("blocks-storage.", fs)

	fs.VisitAll(func(f *flag.Flag) { fmt.Println("-" + f.Name) })

	err := fs.Parse([]string{
		"-blocks-storage.s3.sse.type=SSE-KMS",
		`-blocks-storage.s3.sse.kms-encryption-context={"tenant":"team-a"}`,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(blocks.Type, blocks.KMSEncryptionContext)
	// Output:
	// -blocks-storage.s3.sse.customer-key-file
	// -blocks-storage.s3.sse.customer-previous-key-files
	// -blocks-storage.s3.sse.kms-encryption-context
	// -blocks-storage.s3.sse.kms-key-id
	// -blocks-storage.s3.sse.type
	// SSE-KMS {"tenant":"team-a"}
}

// An invalid block is refused with an error naming the YAML key, the flag,
// the value and where it breaks.
func ExampleConfig_Validate() {
	fs := flag.NewFlagSet("cortex", flag.ContinueOnError)
	var cfg s3sse.Config
	cfg.RegisterFlagsWithPrefix("blocks-storage.", fs)
	_ = fs.Parse([]string{
		"-blocks-storage.s3.sse.type=SSE-KMS",
		`-blocks-storage.s3.sse.kms-encryption-context={"tenant":"team-a","shard":7}`,
	})

	err := cfg.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, s3sse.ErrInvalidConfig))
	fmt.Println(errors.Is(err, s3sse.ErrInvalidEncryptionContext))
	// Output:
	// s3sse: sse.kms_encryption_context (flag -blocks-storage.s3.sse.kms-encryption-context) "{\"tenant\":\"team-a\",\"shard\":7}": key "shard": value must be a string, found a number; it must be a JSON object of string values, such as {"tenant":"a"}
	// true
	// true
}

// Encryption gives the value minio-go sends with every write. DSSE-KMS is
// dual-layer SSE-KMS; its key id and context work as for SSE-KMS.
func ExampleConfig_Encryption() {
	cfg := s3sse.Config{
		Type:                 s3sse.TypeDSSEKMS,
		KMSKeyID:             "alias/team-a",
		KMSEncryptionContext: `{"tenant":"team-a"}`,
	}
	enc, err := cfg.Encryption()
	if err != nil {
		fmt.Println(err)
		return
	}

	// enc.ServerSide() goes into minio.PutObjectOptions.ServerSideEncryption;
	// here it only writes its headers.
	h := http.Header{}
	enc.ServerSide().Marshal(h)
	printHeaders(h)
	// Output:
	// X-Amz-Server-Side-Encryption: aws:kms:dsse
	// X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id: alias/team-a
	// X-Amz-Server-Side-Encryption-Context: eyJ0ZW5hbnQiOiJ0ZWFtLWEifQ==
}

// SSE-C reads the customer key from a file: 32 raw bytes or their base64.
// The key itself never appears in YAML, flags, errors or printed values.
func ExampleConfig_Encryption_customerKey() {
	dir, err := os.MkdirTemp("", "s3sse-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// In production the key comes from a secret store; this one is a fixed
	// example key: 32 bytes, written as base64.
	keyFile := filepath.Join(dir, "customer.key")
	const key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		fmt.Println(err)
		return
	}

	cfg := s3sse.Config{Type: s3sse.TypeSSEC, CustomerKeyFile: keyFile}
	enc, err := cfg.Encryption()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(enc.Type(), "key MD5", enc.CustomerKeyMD5())
	// Output:
	// SSE-C key MD5 hRasmdxgYDKV3nvbahU1MA==
}
