package s3sse

import (
	"fmt"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// Provider gives the per-tenant SSE overrides of a runtime config. Its
// methods return "" for a tenant without the value. Cortex's, Mimir's and
// Loki's limits types satisfy it as they are, so a host passes its overrides
// object directly. Implementations must be safe for concurrent use.
type Provider interface {
	S3SSEType(tenantID string) string
	S3SSEKMSKeyID(tenantID string) string
	S3SSEKMSEncryptionContext(tenantID string) string
}

// CustomerKeyProvider is the optional part of a Provider that gives
// per-tenant SSE-C key files. A Provider without it cannot configure SSE-C
// for a tenant.
type CustomerKeyProvider interface {
	S3SSECustomerKeyFile(tenantID string) string
	S3SSECustomerPreviousKeyFiles(tenantID string) []string
}

// TenantOverride is one tenant's SSE override as a runtime config file
// holds it, under overrides.<tenant>. It applies only when Type is set, and
// then replaces the sse block as a whole: the block's key id or context are
// not merged into it.
type TenantOverride struct {
	Type                     SSEType           `yaml:"s3_sse_type"`
	KMSKeyID                 string            `yaml:"s3_sse_kms_key_id,omitempty"`
	KMSEncryptionContext     EncryptionContext `yaml:"s3_sse_kms_encryption_context,omitempty"`
	CustomerKeyFile          string            `yaml:"s3_sse_customer_key_file,omitempty"`
	CustomerPreviousKeyFiles []string          `yaml:"s3_sse_customer_previous_key_files,omitempty"`
}

func (o TenantOverride) settings(tenantID, file string) settings {
	return settings{
		names:            overrideFieldNames,
		file:             file,
		tenant:           tenantID,
		typ:              o.Type,
		keyID:            o.KMSKeyID,
		context:          o.KMSEncryptionContext,
		keyFile:          o.CustomerKeyFile,
		previousKeyFiles: o.CustomerPreviousKeyFiles,
	}
}

// Resolver turns a tenant ID into the tenant's encryption: its override
// when the runtime config sets s3_sse_type for it, the sse block otherwise.
// It is safe for concurrent use.
type Resolver struct {
	defaults  *Encryption
	overrides Provider
	logger    log.Logger
}

// NewResolver validates the sse block and returns a resolver over it and
// overrides. A nil overrides gives every tenant the block; a nil logger
// discards warnings.
func NewResolver(defaults Config, overrides Provider, logger log.Logger) (*Resolver, error) {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	s := defaults.settings()
	def, err := s.build(nil)
	if err != nil {
		return nil, err
	}
	for _, w := range s.warnings() {
		_ = logger.Log("level", "warn", "msg", w)
	}
	return &Resolver{defaults: def, overrides: overrides, logger: logger}, nil
}

// Encryption returns the tenant's encryption. An invalid override is an
// error naming the tenant, key and value: never a fall back to the sse
// block or to no encryption.
func (r *Resolver) Encryption(tenantID string) (*Encryption, error) {
	// TODO: replaced by prebuilt per-tenant values.
	if r.overrides == nil {
		return r.defaults, nil
	}
	typ := r.overrides.S3SSEType(tenantID)
	if typ == "" {
		return r.defaults, nil
	}
	o := TenantOverride{
		Type:                 SSEType(typ),
		KMSKeyID:             r.overrides.S3SSEKMSKeyID(tenantID),
		KMSEncryptionContext: EncryptionContext(r.overrides.S3SSEKMSEncryptionContext(tenantID)),
	}
	if ck, ok := r.overrides.(CustomerKeyProvider); ok {
		o.CustomerKeyFile = ck.S3SSECustomerKeyFile(tenantID)
		o.CustomerPreviousKeyFiles = ck.S3SSECustomerPreviousKeyFiles(tenantID)
	}
	e, err := o.settings(tenantID, "").build(nil)
	if err != nil {
		return nil, fmt.Errorf("resolve SSE: %w", err)
	}
	return e, nil
}

// Resolve returns the minio-go value for the tenant's writes, nil for no
// SSE header.
func (r *Resolver) Resolve(tenantID string) (encrypt.ServerSide, error) {
	e, err := r.Encryption(tenantID)
	if err != nil {
		return nil, err
	}
	return e.ServerSide(), nil
}

// Default is the encryption of the sse block.
func (r *Resolver) Default() *Encryption { return r.defaults }
