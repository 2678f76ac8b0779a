package s3sse_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3sse/s3sse"
)

// hostLimits stands for a host's per-tenant limits, such as Cortex's
// validation.Overrides: having the three methods, it is a Provider as it is.
type hostLimits map[string]tenantLimits

type tenantLimits struct{ sseType, kmsKeyID, kmsContext string }

func (l hostLimits) S3SSEType(tenant string) string                 { return l[tenant].sseType }
func (l hostLimits) S3SSEKMSKeyID(tenant string) string             { return l[tenant].kmsKeyID }
func (l hostLimits) S3SSEKMSEncryptionContext(tenant string) string { return l[tenant].kmsContext }

// A resolver gives each tenant its override when the host's limits set an
// SSE type for it, and the sse block otherwise. The override replaces the
// block as a whole.
func ExampleNewResolver() {
	limits := hostLimits{
		"team-a": {sseType: "SSE-KMS", kmsKeyID: "alias/team-a", kmsContext: `{"tenant":"team-a"}`},
		"team-b": {sseType: "SSE-S3"},
	}
	block := s3sse.Config{Type: s3sse.TypeSSEKMS, KMSKeyID: "alias/platform"}

	resolver, err := s3sse.NewResolver(block, limits, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tenant := range []string{"team-a", "team-b", "team-c"} {
		enc, err := resolver.Encryption(tenant)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: %s\n", tenant, enc)
	}
	// Output:
	// team-a: SSE-KMS key=alias/team-a context={"tenant":"team-a"}
	// team-b: SSE-S3
	// team-c: SSE-KMS key=alias/platform
}

// A RuntimeConfig reads the per-tenant overrides from the runtime config
// file the host already has, beside its other limits, and reads it again
// every period. An edit with a mistake is rejected whole: the last good
// config stays in force, and the error names the tenant and the key.
func ExampleNewRuntimeConfig() {
	dir, err := os.MkdirTemp("", "s3sse-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "runtime.yaml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			fmt.Println(err)
		}
	}
	write(`overrides:
  team-a:
    ingestion_rate: 50000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: alias/team-a
`)

	cfg := s3sse.RuntimeConfigConfig{Files: []string{file}, ReloadPeriod: 10 * time.Second}
	overrides, err := s3sse.NewRuntimeConfig(context.Background(), cfg, nil, log.NewNopLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer overrides.Stop()

	resolver, err := s3sse.NewResolver(s3sse.Config{Type: s3sse.TypeSSES3}, overrides, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	enc, _ := resolver.Encryption("team-a")
	fmt.Println("team-a:", enc)

	// The reload loop would notice the edit within a period; Reload reads
	// the file now.
	write(`overrides:
  team-a:
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: alias/team-a-2026
  team-b:
    s3_sse_type: SSE-KSM
`)
	err = overrides.Reload()
	var bad *s3sse.ConfigError
	if errors.As(err, &bad) {
		fmt.Printf("rejected: tenant %s, %s %q\n", bad.Tenant, bad.Key, bad.Value)
	}
	enc, _ = resolver.Encryption("team-a")
	fmt.Println("team-a:", enc)
	// Output:
	// team-a: SSE-KMS key=alias/team-a
	// rejected: tenant team-b, s3_sse_type "SSE-KSM"
	// team-a: SSE-KMS key=alias/team-a
}

// Each component registers its own sse block under its flag prefix, and an
// error names the flag of the component it came from.
func ExampleConfig_RegisterFlagsWithPrefix_components() {
	fs := flag.NewFlagSet("cortex", flag.ContinueOnError)
	var blocks, ruler, alertmanager s3sse.Config
	blocks.RegisterFlagsWithPrefix("blocks-storage.", fs)
	ruler.RegisterFlagsWithPrefix("ruler-storage.", fs)
	alertmanager.RegisterFlagsWithPrefix("alertmanager-storage.", fs)

	err := fs.Parse([]string{
		"-blocks-storage.s3.sse.type=SSE-KMS",
		"-blocks-storage.s3.sse.kms-key-id=alias/blocks",
		"-ruler-storage.s3.sse.type=SSE-S3",
		"-alertmanager-storage.s3.sse.type=SSE-KSM",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("blocks:", blocks)
	fmt.Println("ruler:", ruler)
	fmt.Println(alertmanager.Validate())
	// Output:
	// blocks: type=SSE-KMS kms_key_id=alias/blocks
	// ruler: type=SSE-S3
	// s3sse: sse.type (flag -alertmanager-storage.s3.sse.type) "SSE-KSM": unknown SSE type; valid: SSE-S3, SSE-KMS, DSSE-KMS, SSE-C, or empty for no SSE header
}

// A Bucket wraps a minio-go client; each tenant's view of it puts the
// tenant's encryption on every write. This example needs an S3 server, so
// it only compiles here.
func ExampleNewBucket() {
	ctx := context.Background()
	accessKey, secretKey := os.Getenv("S3_ACCESS_KEY_ID"), os.Getenv("S3_SECRET_ACCESS_KEY")
	client, err := minio.New("s3.example.com", &minio.Options{
		Creds:  credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	limits := hostLimits{"team-a": {sseType: "SSE-KMS", kmsKeyID: "alias/team-a"}}
	resolver, err := s3sse.NewResolver(s3sse.Config{Type: s3sse.TypeSSES3}, limits, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// TenantPrefix stores team-a's objects under "team-a/", Cortex's layout.
	opts := &s3sse.BucketOptions{TenantPrefix: true}
	bucket, err := s3sse.NewBucket(client, "blocks", resolver, opts)
	if err != nil {
		fmt.Println(err)
		return
	}

	tenant, err := bucket.Tenant("team-a")
	if err != nil {
		fmt.Println(err)
		return
	}
	err = tenant.Upload(ctx, "01HZX3M5KQ/meta.json", strings.NewReader(`{"version":1}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	attrs, err := tenant.Attributes(ctx, "01HZX3M5KQ/meta.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	// What the server reports, such as SSE-KMS key=arn:aws:kms:...:key/...
	fmt.Println(attrs.Encryption)
}

// Upload fails closed: when the tenant's override cannot be used, it
// returns an error naming the tenant, the key and what is wrong, and sends
// nothing, rather than writing with the default or with no encryption.
func ExampleTenantBucket_Upload_failClosed() {
	limits := hostLimits{"team-a": {sseType: "SSE-KMS", kmsContext: `{"shard": 7}`}}
	resolver, err := s3sse.NewResolver(s3sse.Config{}, limits, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// No request reaches this endpoint: the upload stops before sending.
	client, err := minio.New("s3.invalid", &minio.Options{Secure: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	bucket, err := s3sse.NewBucket(client, "blocks", resolver, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	tenant, err := bucket.Tenant("team-a")
	if err != nil {
		fmt.Println(err)
		return
	}

	err = tenant.Upload(context.Background(), "meta.json", strings.NewReader("{}"))
	fmt.Println(errors.Is(err, s3sse.ErrResolveSSE), errors.Is(err, s3sse.ErrInvalidEncryptionContext))
	fmt.Println(err)
	// Output:
	// true true
	// s3sse: cannot resolve the tenant's SSE of tenant "team-a": s3sse: tenant "team-a": s3_sse_kms_encryption_context "{\"shard\": 7}": key "shard": value must be a string, found a number; it must be a JSON object of string values, such as {"tenant":"a"}
}
