package s3sse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

const (
	// DefaultPartSize is the part size of multipart uploads when
	// BucketOptions leaves it unset.
	DefaultPartSize = 64 << 20
	// MinPartSize is the smallest part S3 accepts (except for the last).
	MinPartSize = 5 << 20
	// MaxCopyPartSize is the largest object one CopyObject request copies,
	// and the largest part of a multipart copy: 5 GiB, S3's limit.
	MaxCopyPartSize = 5 << 30
	// maxParts is the most parts a multipart upload may have.
	maxParts = 10000
	// maxTenantIDLen is the longest tenant ID, in bytes, as in Cortex.
	maxTenantIDLen = 150
	// abortTimeout bounds an abort of a failed multipart upload, which runs
	// even when the upload's context was cancelled.
	abortTimeout = 30 * time.Second
)

// Errors of the bucket wrapper, matched with errors.Is.
var (
	// ErrInvalidTenantID: the tenant ID cannot be used as a key prefix.
	ErrInvalidTenantID = errors.New("s3sse: invalid tenant ID")
	// ErrInvalidObjectName: the object name would leave the tenant's prefix.
	ErrInvalidObjectName = errors.New("s3sse: invalid object name")
	// ErrResolveSSE: the tenant's encryption could not be resolved, so
	// nothing was sent.
	ErrResolveSSE = errors.New("s3sse: cannot resolve the tenant's SSE")
	// ErrNoCustomerKeyFits: a read tried every SSE-C key the tenant has,
	// current and previous, and the server took none of them.
	ErrNoCustomerKeyFits = errors.New("s3sse: none of the tenant's SSE-C keys opens the object")
	// ErrCustomerKeyNeedsTLS: an SSE-C key would travel over plain HTTP.
	// Nothing was sent.
	ErrCustomerKeyNeedsTLS = errors.New("s3sse: SSE-C keys are only sent over HTTPS")
)

// BucketOptions configures a Bucket. A nil *BucketOptions is the zero value,
// and every zero field takes its default.
type BucketOptions struct {
	// PartSize is the size of each part of a multipart upload, and the
	// largest upload sent as a single PUT. An upload holds at most one part
	// in memory. Default DefaultPartSize; at least MinPartSize.
	PartSize int64

	// CopyPartSize is the largest object a server-side copy (Copy,
	// CopyFrom, Reencrypt) sends as one CopyObject request; larger objects
	// are copied part by part, in parts of this size. Some S3-compatible
	// servers take less than S3 in one copy. Default and maximum
	// MaxCopyPartSize; at least MinPartSize.
	CopyPartSize int64

	// TenantPrefix stores each tenant's objects under "<tenant>/<name>",
	// Cortex's layout, and confines every tenant's view to its prefix.
	// Default false: names are used as they are.
	TenantPrefix bool

	// Logger receives warnings, such as a failed abort of a multipart upload
	// that is retried later. Default: none.
	Logger log.Logger
}

// Bucket is one S3 bucket seen through per-tenant encryption: Tenant gives a
// tenant's view, whose every write carries the tenant's SSE. It is safe for
// concurrent use.
type Bucket struct {
	client   *minio.Client
	core     minio.Core
	name     string
	resolver *Resolver
	partSize int64
	copySize int64
	prefix   bool
	logger   log.Logger
	buffers  sync.Pool

	// pendingAborts are multipart uploads whose abort failed (the server
	// was unreachable, say); each later upload tries them again first.
	mu            sync.Mutex
	pendingAborts map[pendingUpload]struct{}
}

type pendingUpload struct{ key, uploadID string }

// NewBucket returns the bucket bucketName of client, encrypted per tenant
// as resolver says. It sends no request.
func NewBucket(client *minio.Client, bucketName string, resolver *Resolver, opts *BucketOptions) (*Bucket, error) {
	if client == nil || resolver == nil {
		return nil, errors.New("s3sse: NewBucket needs a client and a resolver")
	}
	if bucketName == "" {
		return nil, errors.New("s3sse: NewBucket needs a bucket name")
	}
	if opts == nil {
		opts = &BucketOptions{}
	}

	b := &Bucket{
		client:        client,
		core:          minio.Core{Client: client},
		name:          bucketName,
		resolver:      resolver,
		partSize:      opts.PartSize,
		copySize:      opts.CopyPartSize,
		prefix:        opts.TenantPrefix,
		logger:        opts.Logger,
		pendingAborts: map[pendingUpload]struct{}{},
	}
	if b.partSize == 0 {
		b.partSize = DefaultPartSize
	}
	if b.partSize < MinPartSize {
		return nil, fmt.Errorf("s3sse: part size %d is below S3's minimum of %d bytes", opts.PartSize, MinPartSize)
	}
	if b.copySize == 0 {
		b.copySize = MaxCopyPartSize
	}
	if b.copySize < MinPartSize || b.copySize > MaxCopyPartSize {
		return nil, fmt.Errorf("s3sse: copy part size %d is outside S3's limits of %d to %d bytes",
			opts.CopyPartSize, MinPartSize, MaxCopyPartSize)
	}
	if b.logger == nil {
		b.logger = log.NewNopLogger()
	}
	b.buffers.New = func() any {
		buf := make([]byte, b.partSize)
		return &buf
	}
	return b, nil
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Client is the underlying minio-go client. Writes through it bypass the
// tenants' encryption.
func (b *Bucket) Client() *minio.Client { return b.client }

// Resolver is the resolver the bucket encrypts with.
func (b *Bucket) Resolver() *Resolver { return b.resolver }

// Tenant returns the tenant's view of the bucket. The ID is checked so that
// no tenant can reach another's keys: it must be 1 to 150 bytes, not "." or
// "..", without "/" or control characters.
func (b *Bucket) Tenant(tenantID string) (*TenantBucket, error) {
	if err := ValidateTenantID(tenantID); err != nil {
		return nil, err
	}
	t := &TenantBucket{b: b, tenant: tenantID}
	if b.prefix {
		t.prefix = tenantID + "/"
	}
	return t, nil
}

// ValidateTenantID checks that the ID can name a tenant and its key prefix.
func ValidateTenantID(tenantID string) error {
	reason := ""
	switch {
	case tenantID == "":
		reason = "it is empty"
	case tenantID == "." || tenantID == "..":
		reason = "it is a path element of its own"
	case len(tenantID) > maxTenantIDLen:
		reason = fmt.Sprintf("it is %d bytes long, over the limit of %d", len(tenantID), maxTenantIDLen)
	case strings.Contains(tenantID, "/"):
		reason = `it contains "/"`
	case strings.IndexFunc(tenantID, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		reason = "it contains a control character"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s; a tenant ID is 1 to %d bytes, not \".\" or \"..\", "+
		"without \"/\" or control characters", ErrInvalidTenantID, tenantID, reason, maxTenantIDLen)
}

// TenantBucket is one tenant's view of a Bucket. Every upload and copy
// carries the tenant's encryption as the resolver gives it at that moment,
// and every read sends the tenant's SSE-C keys where the object needs one.
// It is safe for concurrent use.
type TenantBucket struct {
	b      *Bucket
	tenant string
	prefix string
}

// TenantID is the tenant this view belongs to.
func (t *TenantBucket) TenantID() string { return t.tenant }

// Bucket is the bucket this view is of.
func (t *TenantBucket) Bucket() *Bucket { return t.b }

// Key is the object key that name has in the bucket.
func (t *TenantBucket) Key(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: tenant %q: the name is empty", ErrInvalidObjectName, t.tenant)
	}
	if t.prefix != "" {
		for _, seg := range strings.Split(name, "/") {
			if seg == "." || seg == ".." {
				return "", fmt.Errorf("%w %q: tenant %q: \".\" and \"..\" segments could leave "+
					"the tenant's prefix", ErrInvalidObjectName, name, t.tenant)
			}
		}
	}
	return t.prefix + name, nil
}

// encryption resolves the tenant's encryption and checks that SSE-C keys
// would not travel over plain HTTP.
func (t *TenantBucket) encryption() (*Encryption, error) {
	e, err := t.b.resolver.Encryption(t.tenant)
	if err != nil {
		return nil, fmt.Errorf("%w of tenant %q: %w", ErrResolveSSE, t.tenant, err)
	}
	if len(e.readKeys) > 0 && !t.b.secure() {
		return nil, fmt.Errorf("%w: tenant %q has SSE-C keys but the endpoint %s is plain HTTP",
			ErrCustomerKeyNeedsTLS, t.tenant, t.b.client.EndpointURL().Host)
	}
	return e, nil
}

func (b *Bucket) secure() bool { return b.client.EndpointURL().Scheme == "https" }

// Upload writes r as the object name under the tenant's encryption. A
// reader whose size can be found (files, byte and string readers, anything
// with Len or Stat) and that fits in one part is sent with one PUT; larger
// or unknown sizes go as a multipart upload that holds one part in memory.
// If the encryption cannot be resolved, nothing is sent. A failed multipart
// upload is aborted, so no parts are left behind.
func (t *TenantBucket) Upload(ctx context.Context, name string, r io.Reader) error {
	key, err := t.Key(name)
	if err != nil {
		return err
	}
	enc, err := t.encryption()
	if err != nil {
		return err
	}
	t.b.retryPendingAborts(ctx)

	if err := t.b.upload(ctx, key, r, enc); err != nil {
		return fmt.Errorf("upload %s for tenant %q: %w", key, t.tenant, err)
	}
	return nil
}

func (b *Bucket) upload(ctx context.Context, key string, r io.Reader, enc *Encryption) error {
	if size, ok := readerSize(r); ok && size <= b.partSize {
		_, err := b.client.PutObject(ctx, b.name, key, r, size, minio.PutObjectOptions{
			ServerSideEncryption: enc.sse,
			DisableMultipart:     true,
		})
		return err
	}

	bufp := b.buffers.Get().(*[]byte)
	defer b.buffers.Put(bufp)
	buf := *bufp

	// Read the first part before starting a multipart upload: a stream
	// that ends within it is sent as one PUT.
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		_, err = b.client.PutObject(ctx, b.name, key, bytes.NewReader(buf[:n]), int64(n),
			minio.PutObjectOptions{ServerSideEncryption: enc.sse, DisableMultipart: true})
		return err
	case err != nil:
		return fmt.Errorf("read: %w", err)
	}
	return b.uploadMultipart(ctx, key, r, buf, enc)
}

// uploadMultipart sends buf, already full, as the first part and the rest
// of r as the following ones. The SSE headers go on the initiate request;
// SSE-C headers on every part and on completion too.
func (b *Bucket) uploadMultipart(ctx context.Context, key string, r io.Reader, buf []byte, enc *Encryption) (err error) {
	uploadID, err := b.core.NewMultipartUpload(ctx, b.name, key, minio.PutObjectOptions{
		ServerSideEncryption: enc.sse,
	})
	if err != nil {
		return fmt.Errorf("initiate multipart upload: %w", err)
	}
	defer func() {
		if err != nil {
			b.abort(ctx, key, uploadID)
		}
	}()

	var partSSE encrypt.ServerSide
	if enc.typ == TypeSSEC {
		partSSE = enc.sse
	}

	var parts []minio.CompletePart
	n := len(buf)
	for number := 1; ; number++ {
		part, err := b.core.PutObjectPart(ctx, b.name, key, uploadID, number,
			bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{SSE: partSSE})
		if err != nil {
			return fmt.Errorf("upload part %d: %w", number, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: number, ETag: part.ETag})

		var rerr error
		n, rerr = io.ReadFull(r, buf)
		if rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("read part %d: %w", number+1, rerr)
		}
	}

	_, err = b.core.CompleteMultipartUpload(ctx, b.name, key, uploadID, parts,
		minio.PutObjectOptions{ServerSideEncryption: partSSE})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// abort aborts a failed multipart upload, even when ctx was cancelled. An
// abort that fails is kept and tried again before later uploads.
func (b *Bucket) abort(ctx context.Context, key, uploadID string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()

	err := b.core.AbortMultipartUpload(actx, b.name, key, uploadID)
	if err == nil || IsNoSuchUpload(err) {
		return
	}
	b.mu.Lock()
	b.pendingAborts[pendingUpload{key, uploadID}] = struct{}{}
	b.mu.Unlock()
	_ = b.logger.Log("level", "warn", "msg", "abort of failed multipart upload failed; "+
		"retrying before the next upload", "bucket", b.name, "key", key, "upload_id", uploadID, "err", err)
}

// retryPendingAborts tries again the aborts that failed earlier.
func (b *Bucket) retryPendingAborts(ctx context.Context) {
	b.mu.Lock()
	if len(b.pendingAborts) == 0 {
		b.mu.Unlock()
		return
	}
	pending := make([]pendingUpload, 0, len(b.pendingAborts))
	for p := range b.pendingAborts {
		pending = append(pending, p)
	}
	b.mu.Unlock()

	for _, p := range pending {
		err := b.core.AbortMultipartUpload(ctx, b.name, p.key, p.uploadID)
		if err != nil && !IsNoSuchUpload(err) {
			continue
		}
		b.mu.Lock()
		delete(b.pendingAborts, p)
		b.mu.Unlock()
	}
}

// AbortPending tries once more every abort of a failed multipart upload
// that could not be done when the upload failed, and returns how many are
// still pending. Uploads call it themselves; a host may call it on shutdown.
func (b *Bucket) AbortPending(ctx context.Context) int {
	b.retryPendingAborts(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pendingAborts)
}

// readerSize finds the number of bytes left in r, where r can tell.
func readerSize(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case *bytes.Reader:
		return int64(v.Len()), true
	case *strings.Reader:
		return int64(v.Len()), true
	case *bytes.Buffer:
		return int64(v.Len()), true
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		return fi.Size() - off, true
	case interface{ Len() int }:
		return int64(v.Len()), true
	case interface{ Stat() (os.FileInfo, error) }:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0, false
		}
		return fi.Size(), true
	}
	return 0, false
}

// Copy copies the tenant's object src to dst inside the bucket, on the
// server. The copy takes the tenant's current encryption.
func (t *TenantBucket) Copy(ctx context.Context, src, dst string) error {
	return t.CopyFrom(ctx, t, src, dst)
}

// CopyFrom copies the object srcName of the tenant src to dstName of this
// tenant, on the server. The copy takes this tenant's encryption; an SSE-C
// source is read with src's keys.
func (t *TenantBucket) CopyFrom(ctx context.Context, src *TenantBucket, srcName, dstName string) error {
	if err := t.copyFrom(ctx, src, srcName, dstName, ""); err != nil {
		return fmt.Errorf("copy %s of tenant %q to %s of tenant %q: %w",
			srcName, src.tenant, dstName, t.tenant, err)
	}
	return nil
}

// Reencrypt rewrites the object in place under the tenant's current
// encryption, with a server-side copy that only happens if the object's
// ETag still is etag, so that a concurrent writer wins. Content and user
// metadata stay as they are.
func (t *TenantBucket) Reencrypt(ctx context.Context, name, etag string) error {
	if etag == "" {
		return fmt.Errorf("re-encrypt %s of tenant %q: an ETag is required", name, t.tenant)
	}
	if err := t.copyFrom(ctx, t, name, name, etag); err != nil {
		return fmt.Errorf("re-encrypt %s of tenant %q: %w", name, t.tenant, err)
	}
	return nil
}

func (t *TenantBucket) copyFrom(ctx context.Context, src *TenantBucket, srcName, dstName, matchETag string) error {
	if src.b != t.b {
		return errors.New("the source is in another bucket")
	}
	srcKey, err := src.Key(srcName)
	if err != nil {
		return err
	}
	dstKey, err := t.Key(dstName)
	if err != nil {
		return err
	}
	dstEnc, err := t.encryption()
	if err != nil {
		return err
	}
	srcEnc, err := src.encryption()
	if err != nil {
		return err
	}

	// The source's size and the key it is under decide how to copy it.
	info, srcKeyUsed, err := src.stat(ctx, srcKey, srcEnc)
	if err != nil {
		return fmt.Errorf("stat source: %w", err)
	}
	if matchETag != "" && strings.Trim(info.ETag, `"`) != strings.Trim(matchETag, `"`) {
		return fmt.Errorf("%w: the object changed since it was read (ETag %s, now %s)",
			ErrPreconditionFailed, matchETag, info.ETag)
	}

	if info.Size > t.b.copySize {
		err = t.b.copyMultipart(ctx, srcKey, dstKey, info, srcKeyUsed, dstEnc)
		return preconditionFailed(err)
	}

	dst := minio.CopyDestOptions{
		Bucket:     t.b.name,
		Object:     dstKey,
		Encryption: dstEnc.sse,
	}
	srcOpts := minio.CopySrcOptions{Bucket: t.b.name, Object: srcKey, MatchETag: matchETag}
	if srcKeyUsed != nil {
		srcOpts.Encryption = srcKeyUsed.copySource()
	}
	// The copy's metadata is always replaced with the source's own user
	// metadata, never copied whole: S3 refuses a copy onto itself that
	// changes only the encryption otherwise, and MinIO would carry the
	// source's SSE metadata over to the copy, giving a copy without a KMS
	// context the source's context while sealing its key without one, so
	// that it could never be read.
	dst.ReplaceMetadata = true
	dst.UserMetadata = userMetadata(info)
	_, err = t.b.client.CopyObject(ctx, dst, srcOpts)
	return preconditionFailed(err)
}

// copyMultipart copies an object too large for one CopyObject request part
// by part. Every part is copied only while the source has the ETag it had
// when it was read, so the copy never mixes two versions of it; a copy in
// place also completes only if the object still has that ETag, so a write
// that lands while the parts are copied wins. A failed copy is aborted.
func (b *Bucket) copyMultipart(ctx context.Context, srcKey, dstKey string, info minio.ObjectInfo,
	srcCustomerKey *customerKey, dstEnc *Encryption) (err error) {
	etag := strings.Trim(info.ETag, `"`)
	uploadID, err := b.core.NewMultipartUpload(ctx, b.name, dstKey, minio.PutObjectOptions{
		ServerSideEncryption: dstEnc.sse,
		UserMetadata:         userMetadata(info),
	})
	if err != nil {
		return fmt.Errorf("initiate multipart copy: %w", err)
	}
	defer func() {
		if err != nil {
			b.abort(ctx, dstKey, uploadID)
		}
	}()

	// The condition, the source's SSE-C key and the destination's go on
	// every part.
	h := http.Header{}
	if srcCustomerKey != nil {
		srcCustomerKey.copySource().Marshal(h)
	}
	var completeSSE encrypt.ServerSide
	if dstEnc.typ == TypeSSEC {
		completeSSE = dstEnc.sse
		completeSSE.Marshal(h)
	}
	headers := map[string]string{"x-amz-copy-source-if-match": etag}
	for k := range h {
		headers[k] = h.Get(k)
	}

	partSize := max(b.copySize, (info.Size+maxParts-1)/maxParts)
	var parts []minio.CompletePart
	for number, off := 1, int64(0); off < info.Size; number, off = number+1, off+partSize {
		p, err := b.core.CopyObjectPart(ctx, b.name, srcKey, b.name, dstKey, uploadID, number,
			off, min(partSize, info.Size-off), headers)
		if err != nil {
			return fmt.Errorf("copy part %d: %w", number, err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: number, ETag: p.ETag})
	}

	opts := minio.PutObjectOptions{ServerSideEncryption: completeSSE}
	if srcKey == dstKey {
		opts.SetMatchETag(etag)
	}
	if _, err := b.core.CompleteMultipartUpload(ctx, b.name, dstKey, uploadID, parts, opts); err != nil {
		return fmt.Errorf("complete multipart copy: %w", err)
	}
	return nil
}

// preconditionFailed makes S3's answer to a conditional request whose
// condition no longer holds match ErrPreconditionFailed.
func preconditionFailed(err error) error {
	if code, status := errorCode(err); code == "PreconditionFailed" ||
		status == http.StatusPreconditionFailed {
		return fmt.Errorf("%w: the object changed while it was copied: %w", ErrPreconditionFailed, err)
	}
	return err
}

// userMetadata is the user metadata and content headers of an object, so a
// copy that replaces metadata keeps them.
func userMetadata(info minio.ObjectInfo) map[string]string {
	m := map[string]string{}
	for k, v := range info.UserMetadata {
		m[k] = v
	}
	if info.ContentType != "" {
		m["Content-Type"] = info.ContentType
	}
	for _, h := range []string{"Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control"} {
		if v := info.Metadata.Get(h); v != "" {
			m[h] = v
		}
	}
	return m
}

// ErrPreconditionFailed: a conditional copy found the object changed.
var ErrPreconditionFailed = errors.New("s3sse: precondition failed")

// Get returns a reader of the whole object. The caller closes it.
func (t *TenantBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return t.GetRange(ctx, name, 0, -1)
}

// GetRange returns a reader of length bytes of the object from off; a
// negative length reads to the end. The caller closes it.
func (t *TenantBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	key, err := t.Key(name)
	if err != nil {
		return nil, err
	}
	if off < 0 || length == 0 || length < -1 {
		return nil, fmt.Errorf("get %s of tenant %q: invalid range: offset %d, length %d; "+
			"the offset must be at least 0 and the length positive, or -1 for the rest",
			key, t.tenant, off, length)
	}
	enc, err := t.encryption()
	if err != nil {
		return nil, err
	}

	var obj *minio.Object
	err = t.withReadKeys(enc, func(k *customerKey) error {
		opts := minio.GetObjectOptions{}
		if k != nil {
			opts.ServerSideEncryption = k
		}
		if length > 0 {
			if err := opts.SetRange(off, off+length-1); err != nil {
				return err
			}
		} else if off > 0 {
			if err := opts.SetRange(off, 0); err != nil {
				return err
			}
		}
		o, err := t.b.client.GetObject(ctx, t.b.name, key, opts)
		if err != nil {
			return err
		}
		// GetObject is lazy: Stat sends the request, so the key is tried
		// here and the reader's first Read uses the answer.
		if _, err := o.Stat(); err != nil {
			o.Close()
			return err
		}
		obj = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get %s of tenant %q: %w", key, t.tenant, err)
	}
	return obj, nil
}

// withReadKeys calls do with the keys a read of the tenant's object may
// need, in the likeliest order: the current SSE-C key first when the
// tenant writes with SSE-C, no key first otherwise, then the previous keys.
// It moves on only when the server said the key did not fit.
func (t *TenantBucket) withReadKeys(enc *Encryption, do func(*customerKey) error) error {
	if len(enc.readKeys) == 0 {
		return do(nil) // the usual case: no key to try, nothing to build
	}

	candidates := make([]*customerKey, 0, len(enc.readKeys)+1)
	if enc.typ == TypeSSEC {
		candidates = append(candidates, enc.readKeys...)
		candidates = append(candidates, nil)
	} else {
		candidates = append(candidates, nil)
		candidates = append(candidates, enc.readKeys...)
	}

	var first error
	for _, k := range candidates {
		err := do(k)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
		if !isKeyMismatch(err) {
			return err
		}
	}
	tried := make([]string, len(enc.readKeys))
	for i, k := range enc.readKeys {
		tried[i] = k.String()
	}
	return fmt.Errorf("%w: tried %s and no key: %w", ErrNoCustomerKeyFits, strings.Join(tried, ", "), first)
}

// stat returns the object's info and the SSE-C key it is under, if any.
func (t *TenantBucket) stat(ctx context.Context, key string, enc *Encryption) (minio.ObjectInfo, *customerKey, error) {
	var (
		info minio.ObjectInfo
		used *customerKey
	)
	err := t.withReadKeys(enc, func(k *customerKey) error {
		opts := minio.StatObjectOptions{}
		if k != nil {
			opts.ServerSideEncryption = k
		}
		var err error
		info, err = t.b.client.StatObject(ctx, t.b.name, key, opts)
		used = k
		return err
	})
	return info, used, err
}

// Exists reports whether the object exists.
func (t *TenantBucket) Exists(ctx context.Context, name string) (bool, error) {
	_, err := t.Attributes(ctx, name)
	if IsObjectNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// ObjectAttributes describes a stored object.
type ObjectAttributes struct {
	Size         int64
	LastModified time.Time
	ETag         string
	// Encryption is the object's encryption as the server reports it.
	Encryption StoredEncryption
}

// Attributes returns the object's size, modification time, ETag and
// encryption as the server reports them.
func (t *TenantBucket) Attributes(ctx context.Context, name string) (ObjectAttributes, error) {
	key, err := t.Key(name)
	if err != nil {
		return ObjectAttributes{}, err
	}
	enc, err := t.encryption()
	if err != nil {
		return ObjectAttributes{}, err
	}
	info, _, err := t.stat(ctx, key, enc)
	if err != nil {
		return ObjectAttributes{}, fmt.Errorf("stat %s of tenant %q: %w", key, t.tenant, err)
	}
	return ObjectAttributes{
		Size:         info.Size,
		LastModified: info.LastModified,
		ETag:         info.ETag,
		Encryption:   StoredEncryptionOf(info.Metadata),
	}, nil
}

// IterOptions changes what Iter lists. A nil *IterOptions lists one level.
type IterOptions struct {
	// Recursive lists every object below dir rather than one level, where
	// deeper names are given as "dir/sub/" entries.
	Recursive bool
}

// Iter calls f with the name of each object and, when not recursive,
// each sub-directory (ending in "/") under dir, in lexical order. Names are
// relative to the tenant, as Upload takes them. An error from f stops the
// walk and is returned.
func (t *TenantBucket) Iter(ctx context.Context, dir string, f func(name string) error, opts *IterOptions) error {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	if dir != "" {
		if _, err := t.Key(dir); err != nil {
			return err
		}
	}
	prefix := t.prefix + dir
	if opts == nil {
		opts = &IterOptions{}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range t.b.client.ListObjects(ctx, t.b.name, minio.ListObjectsOptions{
		Prefix:    prefix,
		Recursive: opts.Recursive,
	}) {
		if obj.Err != nil {
			return fmt.Errorf("list %s of tenant %q: %w", prefix, t.tenant, obj.Err)
		}
		if err := f(strings.TrimPrefix(obj.Key, t.prefix)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete removes the object. Removing an object that does not exist is not
// an error, as in S3.
func (t *TenantBucket) Delete(ctx context.Context, name string) error {
	key, err := t.Key(name)
	if err != nil {
		return err
	}
	if err := t.b.client.RemoveObject(ctx, t.b.name, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s of tenant %q: %w", key, t.tenant, err)
	}
	return nil
}

// StoredEncryption is an object's encryption as the server reports it.
type StoredEncryption struct {
	// Type is TypeNone when the server reports no encryption header.
	Type SSEType
	// KMSKeyID is the key as the server names it (MinIO and AWS give an
	// ARN), for SSE-KMS and DSSE-KMS.
	KMSKeyID string
	// Context is the KMS encryption context the server reports, if any.
	Context map[string]string
	// CustomerKeyMD5 is the base64 MD5 of the SSE-C key, for SSE-C.
	CustomerKeyMD5 string
}

// StoredEncryptionOf reads the SSE response headers of a HEAD or GET, such
// as minio.ObjectInfo.Metadata.
func StoredEncryptionOf(h http.Header) StoredEncryption {
	var s StoredEncryption
	switch h.Get(encrypt.SseGenericHeader) {
	case headerAES256:
		s.Type = TypeSSES3
	case headerKMS:
		s.Type = TypeSSEKMS
	case headerDSSEKMS:
		s.Type = TypeDSSEKMS
	}
	if h.Get(encrypt.SseCustomerAlgorithm) != "" {
		s.Type = TypeSSEC
		s.CustomerKeyMD5 = h.Get(encrypt.SseCustomerKeyMD5)
	}
	if s.Type.usesKMS() {
		s.KMSKeyID = h.Get(encrypt.SseKmsKeyID)
		if b64 := h.Get(encrypt.SseEncryptionContext); b64 != "" {
			if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
				var m map[string]string
				if json.Unmarshal(raw, &m) == nil && len(m) > 0 {
					s.Context = m
				}
			}
		}
	}
	return s
}

// String describes the stored encryption on one line.
func (s StoredEncryption) String() string {
	if s.Type == TypeNone {
		return "none"
	}
	out := string(s.Type)
	if s.KMSKeyID != "" {
		out += " key=" + s.KMSKeyID
	}
	if len(s.Context) > 0 {
		out += " context=" + string(canonicalContext(s.Context))
	}
	if s.CustomerKeyMD5 != "" {
		out += " key-md5=" + s.CustomerKeyMD5
	}
	return out
}

// Satisfies reports whether an object stored with s meets want, and why
// not. A KMS key id matches the server's ARN for it (MinIO and AWS report
// "arn:aws:kms:...:<id>" or ".../key/<id>"); an empty wanted key id, the
// server's managed key, matches any key, as the server does not say which
// key is its managed one. An alias cannot be checked without asking the KMS
// and never matches. A policy that sends no SSE header is satisfied by
// whatever the bucket's default encryption gave the object, except SSE-C,
// whose objects cannot be read without a key the policy does not have.
func (s StoredEncryption) Satisfies(want *Encryption) (bool, string) {
	if want.typ == TypeNone {
		if s.Type == TypeSSEC {
			return false, fmt.Sprintf("stored as %s, which needs a key to be read; "+
				"the policy sends no SSE header", s)
		}
		return true, ""
	}
	if s.Type != want.typ {
		return false, fmt.Sprintf("stored as %s, required %s", s, want)
	}
	switch want.typ {
	case TypeSSEKMS, TypeDSSEKMS:
		if want.keyID != "" && !kmsKeyMatches(s.KMSKeyID, want.keyID) {
			return false, fmt.Sprintf("under KMS key %s, required %s", s.KMSKeyID, want.keyID)
		}
		if !sameContext(s.Context, want.context) {
			return false, fmt.Sprintf("KMS context %s, required %s",
				canonicalContext(s.Context), want.contextJSON)
		}
	case TypeSSEC:
		if s.CustomerKeyMD5 != want.readKeys[0].md5 {
			return false, fmt.Sprintf("under SSE-C key md5:%s, required md5:%s",
				s.CustomerKeyMD5, want.readKeys[0].md5)
		}
	}
	return true, ""
}

func kmsKeyMatches(stored, want string) bool {
	return stored == want || strings.HasSuffix(stored, ":"+want) || strings.HasSuffix(stored, "/"+want)
}

func sameContext(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// IsObjectNotFound reports whether err says the object does not exist.
func IsObjectNotFound(err error) bool {
	code, status := errorCode(err)
	return code == "NoSuchKey" || (status == http.StatusNotFound && code == "NotFound")
}

// IsNoSuchUpload reports whether err says the multipart upload is gone.
func IsNoSuchUpload(err error) bool {
	code, _ := errorCode(err)
	return code == "NoSuchUpload"
}

// IsKMSKeyNotFound reports whether err says the KMS key does not exist:
// the tenant's key id is wrong, or the key was deleted. Retrying will not
// help until the configuration or the KMS changes.
func IsKMSKeyNotFound(err error) bool {
	code, _ := errorCode(err)
	switch code {
	case "kms:KeyNotFound", "KMS.NotFoundException", "KMSNotFoundException":
		return true
	}
	return false
}

// IsKMSNotConfigured reports whether err says the server has no KMS, so it
// cannot store SSE-S3 or SSE-KMS objects at all (MinIO answers 501
// NotImplemented). It is a deployment problem; retrying will not help.
func IsKMSNotConfigured(err error) bool {
	code, status := errorCode(err)
	return status == http.StatusNotImplemented && code == "NotImplemented"
}

// IsAccessDenied reports whether err says access was denied, which is how
// S3 answers for a KMS key that is disabled or revoked, or that the
// credentials may not use. Retrying will not help.
func IsAccessDenied(err error) bool {
	code, _ := errorCode(err)
	switch code {
	case "AccessDenied", "KMS.DisabledException", "KMS.KMSInvalidStateException",
		"KMS.AccessDeniedException", "kms:NotAuthorized", "kms:KeyDisabled":
		return true
	}
	return false
}

// IsCustomerKeyMismatch reports whether err says an SSE-C object was read
// without its key, with the wrong key, or a plain object with a key.
func IsCustomerKeyMismatch(err error) bool {
	return errors.Is(err, ErrNoCustomerKeyFits) || isKeyMismatch(err)
}

func isKeyMismatch(err error) bool {
	code, status := errorCode(err)
	switch {
	case status == http.StatusForbidden && code == "AccessDenied":
		return true // MinIO: wrong SSE-C key
	case status == http.StatusBadRequest && (code == "InvalidRequest" || code == "InvalidArgument" ||
		code == "BadRequest" || code == "InvalidEncryptionParameters"):
		return true // key missing, or a key sent for an object that has none
	}
	return false
}

func errorCode(err error) (code string, status int) {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code, resp.StatusCode
	}
	return "", 0
}
