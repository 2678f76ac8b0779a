// Package s3sse applies per-tenant server-side encryption (SSE) to the
// objects a multi-tenant system writes to one S3 bucket.
//
// It is the piece a system such as Cortex, Mimir or Loki imports in place of
// hand-built SSE headers: the `sse` config block and its flags, per-tenant
// overrides from a runtime config that is reloaded while the process runs,
// and a bucket wrapper that puts the right encryption on every write and the
// right customer key on every read. It wraps the minio-go v7 client.
//
// # Getting started
//
// Register the block's flags under the component's prefix, or decode it from
// YAML, then build a Resolver and a Bucket:
//
//	var cfg s3sse.Config
//	cfg.RegisterFlagsWithPrefix("blocks-storage.", flag.CommandLine)
//	flag.Parse()
//
//	resolver, err := s3sse.NewResolver(cfg, overrides, logger)
//	bucket, err := s3sse.NewBucket(client, "blocks", resolver, nil)
//	tenant, err := bucket.Tenant("team-a")
//	err = tenant.Upload(ctx, "01H.../index", r)
//
// overrides is any Provider: the library's RuntimeConfig, which reads and
// reloads runtime config files, or a host's own limits type, which satisfies
// Provider as it is.
//
// # SSE types
//
// SSE-S3 (AES256) encrypts with keys the server manages. SSE-KMS (aws:kms)
// and DSSE-KMS (aws:kms:dsse) encrypt under a KMS key, optionally with an
// encryption context; without a key id the server uses its managed key.
// SSE-C encrypts with a 256-bit key the operator holds in a file; the key
// travels with every request on the object and is only sent over HTTPS. An
// empty type sends no SSE header, so the bucket's default encryption
// applies.
//
// # Per-tenant overrides
//
// A tenant whose runtime config sets s3_sse_type gets its own encryption,
// which replaces the sse block as a whole (Cortex's semantics); every other
// tenant gets the block. Overrides are validated when they load: a reload
// with any invalid tenant is rejected and the last good config stays in
// force. An upload for a tenant whose encryption cannot be resolved fails
// and writes nothing; it never falls back to the block or to no encryption.
//
// # Secrets
//
// SSE-C keys live in files and are referred to by file name. No value of
// this package prints key material, whatever the format verb, and no error
// holds it.
package s3sse
