package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/minio/minio-go/v7"

	"github.com/s3sse/s3sse"
)

const auditSynopsis = `Walks the objects of every tenant in the bucket, or of the -tenant list,
reads each object's stored encryption (a HEAD request that carries the tenant's
SSE-C keys) and compares it with what the tenant's policy requires now: its
override when the runtime config sets s3_sse_type for it, the sse block
otherwise. The tenant of an object is the first segment of its key. Prints each
non-compliant object and a summary per tenant of objects and bytes by stored
encryption. Nothing is changed.

A policy with no SSE type asks for no header, so any stored encryption but
SSE-C complies with it. An SSE-C object whose key is in none of the tenant's key
files is reported as non-compliant: it cannot be read.

Exit code 0: every object complies; 1: non-compliant objects were found; 2: bad
flags or configuration; 3: some objects or tenants could not be checked;
130: interrupted.`

const reencryptSynopsis = `Audits like 's3sse audit', then rewrites each non-compliant object in
place with a server-side copy under its tenant's current encryption; SSE-C
objects under a previous key (s3_sse_customer_previous_key_files) move to the
current key. Without -apply it only prints what it would do.

Nothing is deleted and no data passes through this machine. Each copy is
conditional on the object's ETag being the one audited, so an object written
while the command runs keeps the new write and is reported as skipped. Objects
larger than -copy-part-size are copied part by part under the same condition.
The command can be interrupted at any time (the first interrupt lets copies in
flight finish) and run again: it audits again and does only what is left. Each
rewritten object is read back to confirm its new encryption.

Exit code 0: every object complies now; 1: non-compliant objects remain (a dry
run, or objects changed concurrently); 2: bad flags or configuration; 3: some
objects could not be checked or re-encrypted; 130: interrupted.`

// walkOptions are the flags of audit and reencrypt.
type walkOptions struct {
	tenants     []string
	concurrency int
	output      string
	progress    string
	reencrypt   bool
	apply       bool
	copyPart    byteSize
}

// audit runs the audit or reencrypt command.
func (a *app) audit(ctx context.Context, args []string, reencrypt bool) (int, error) {
	name, synopsis, concurrency := "audit", auditSynopsis, 16
	if reencrypt {
		name, synopsis, concurrency = "reencrypt", reencryptSynopsis, 4
	}
	f := a.newFlagSet(name, synopsis)
	var opts options
	opts.registerFlags(f)
	w := walkOptions{reencrypt: reencrypt}
	f.Var((*listFlag)(&w.tenants), "tenant",
		"Tenant to "+name+"; repeat the flag or separate IDs with commas for several. "+
			"Default: every tenant with objects in the bucket.")
	f.IntVar(&w.concurrency, "concurrency", concurrency,
		"Requests in flight at once (HEAD requests, and copies when re-encrypting).")
	f.StringVar(&w.output, "output", "text",
		"Output format: text, or json for one JSON object per line (objects, then "+
			"tenants, then the summary).")
	f.StringVar(&w.progress, "progress", "auto",
		"Progress on stderr: bar, lines, off, or auto for a bar on a terminal and "+
			"lines otherwise.")
	if reencrypt {
		f.BoolVar(&w.apply, "apply", false,
			"Rewrite the objects. Without it the command only reports what it would rewrite.")
		w.copyPart = s3sse.MaxCopyPartSize
		f.Var(&w.copyPart, "copy-part-size",
			"Largest object copied with one request; larger ones are copied part by part in "+
				"parts of this size, such as 512MiB. At least 5MiB, at most 5GiB (S3's limit).")
	}
	if err := parse(f, &opts, args); err != nil {
		return exitUsage, err
	}
	if err := w.validate(); err != nil {
		return exitUsage, err
	}

	p := loadPolicy(&opts)
	if n := len(p.problems); n > 0 {
		for _, err := range p.problems {
			fmt.Fprintf(a.stderr, "problem: %s\n", problemText(err))
		}
		return exitUsage, usageError{fmt.Errorf("the configuration has %d problem%s; nothing "+
			"was sent to S3 (run 's3sse check' with the same flags for details)", n, plural(n))}
	}

	s3cfg := opts.componentConfig
	client, err := s3cfg.newClient(a.wrapTransport)
	if err != nil {
		return exitUsage, err
	}
	bucket, err := s3sse.NewBucket(client, s3cfg.BucketName, p.resolver,
		&s3sse.BucketOptions{TenantPrefix: true, CopyPartSize: int64(w.copyPart)})
	if err != nil {
		return exitUsage, usageError{fmt.Errorf("-copy-part-size: %w", err)}
	}

	r := &walk{
		app:      a,
		opts:     w,
		bucket:   bucket,
		resolver: p.resolver,
		out:      newPrinter(a, w),
	}
	return r.run(ctx), nil
}

func (w *walkOptions) validate() error {
	if w.concurrency < 1 {
		return usageError{fmt.Errorf("-concurrency %d: must be at least 1", w.concurrency)}
	}
	if !slices.Contains([]string{"text", "json"}, w.output) {
		return usageError{fmt.Errorf("-output %q: valid: text, json", w.output)}
	}
	if !slices.Contains([]string{"auto", "bar", "lines", "off"}, w.progress) {
		return usageError{fmt.Errorf("-progress %q: valid: auto, bar, lines, off", w.progress)}
	}
	for _, t := range w.tenants {
		if err := s3sse.ValidateTenantID(t); err != nil {
			return usageError{fmt.Errorf("-tenant: %w", err)}
		}
	}
	return nil
}

// byteSize is a flag holding a number of bytes, written as a plain number
// or with a binary unit: 5MiB, 512MiB, 5GiB.
type byteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} // B last

func (b *byteSize) String() string {
	for i := len(byteUnits) - 2; i >= 0; i-- { // the largest unit that divides it
		if u := byteUnits[i]; *b != 0 && int64(*b)%u.size == 0 {
			return fmt.Sprintf("%d%s", int64(*b)/u.size, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(*b))
}

func (b *byteSize) Set(v string) error {
	num, unit := strings.TrimSpace(v), int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, unit = strings.TrimSpace(n), u.size
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/unit {
		return fmt.Errorf("%q is not a size; write bytes, or a number with KiB, MiB or GiB", v)
	}
	*b = byteSize(n * unit)
	return nil
}

// listFlag is a flag that may be repeated, each value a comma-separated
// list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(*l, s) {
			*l = append(*l, s)
		}
	}
	return nil
}

// walk is one run of audit or reencrypt over the bucket.
type walk struct {
	app      *app
	opts     walkOptions
	bucket   *s3sse.Bucket
	resolver *s3sse.Resolver
	out      *printer

	tenants     []*tenantWalk
	reporters   sync.WaitGroup // report each tenant when its objects are done
	outside     atomic.Int64   // objects at the top level, outside any tenant
	listed      atomic.Int64
	checked     atomic.Int64
	nonCompl    atomic.Int64
	rewritten   atomic.Int64
	tenantsDone atomic.Int64
	interrupted atomic.Bool
	listErr     error
}

// tenantWalk is what the walk learns about one tenant.
type tenantWalk struct {
	id   string
	tb   *s3sse.TenantBucket
	want *s3sse.Encryption

	pending sync.WaitGroup // objects queued and not yet done

	mu    sync.Mutex
	stats tenantStats
	err   error // why the tenant could not be walked (fully)
}

type tenantStats struct {
	objects, bytes          int64
	compliant, nonCompliant int64
	reencrypted, skipped    int64
	failed, errors          int64
	remaining               int64 // non-compliant after the run
	reencryptedBytes        int64
	byEncryption            map[string]*storedCount
}

type storedCount struct {
	stored         s3sse.StoredEncryption
	objects, bytes int64
}

// job is one object to audit, as listed.
type job struct {
	t    *tenantWalk
	key  string
	name string // the key within the tenant's prefix
	size int64
}

func (r *walk) stopping() bool { return r.app.stopping.Err() != nil }

// run walks the tenants and returns the exit code.
func (r *walk) run(ctx context.Context) int {
	r.out.start(r)
	jobs := make(chan job, 4*r.opts.concurrency)
	var workers sync.WaitGroup
	for range r.opts.concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				r.process(ctx, j)
			}
		}()
	}

	r.produce(jobs)
	close(jobs)
	workers.Wait()
	r.reporters.Wait()
	r.out.stop()

	if ctx.Err() != nil {
		r.interrupted.Store(true)
	}
	r.out.summary(r)
	return r.exitCode()
}

// produce lists the tenants and their objects and queues each object.
func (r *walk) produce(jobs chan<- job) {
	ids, err := r.tenantIDs()
	if err != nil {
		r.listErr = err
		r.out.errorf("%v", err)
		return
	}

	for _, id := range ids {
		t := &tenantWalk{id: id, stats: tenantStats{byEncryption: map[string]*storedCount{}}}
		r.tenants = append(r.tenants, t)
	}
	r.out.tenantsKnown(len(ids))

	for _, t := range r.tenants {
		if r.stopping() {
			r.interrupted.Store(true)
			return
		}
		r.listTenant(t, jobs)
	}
}

// tenantIDs are the tenants of -tenant, or else the first segments of the
// bucket's keys.
func (r *walk) tenantIDs() ([]string, error) {
	if len(r.opts.tenants) > 0 {
		return r.opts.tenants, nil
	}
	var ids []string
	for obj := range r.bucket.Client().ListObjects(r.app.stopping, r.bucket.Name(),
		minio.ListObjectsOptions{}) {
		if obj.Err != nil {
			if r.stopping() {
				r.interrupted.Store(true)
				return ids, nil
			}
			return nil, fmt.Errorf("list the tenants of bucket %s: %w", r.bucket.Name(), obj.Err)
		}
		if id, ok := strings.CutSuffix(obj.Key, "/"); ok {
			ids = append(ids, id)
		} else {
			r.outside.Add(1)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// listTenant queues the tenant's objects, and reports the tenant when its
// last object is done.
func (r *walk) listTenant(t *tenantWalk, jobs chan<- job) {
	r.reporters.Add(1)
	defer func() {
		go func() {
			defer r.reporters.Done()
			t.pending.Wait()
			r.tenantsDone.Add(1)
			r.out.tenantDone(r, t)
		}()
	}()

	tb, err := r.bucket.Tenant(t.id)
	if err != nil {
		t.fail(err)
		return
	}
	want, err := r.resolver.Encryption(t.id)
	if err != nil {
		t.fail(fmt.Errorf("resolve the encryption of tenant %q: %w", t.id, err))
		return
	}
	t.tb, t.want = tb, want

	prefix := t.id + "/"
	for obj := range r.bucket.Client().ListObjects(r.app.stopping, r.bucket.Name(),
		minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			if r.stopping() {
				r.interrupted.Store(true)
				return
			}
			t.fail(fmt.Errorf("list the objects of tenant %q: %w", t.id, obj.Err))
			return
		}
		if t.failed() {
			return
		}
		if obj.Key == prefix {
			continue // a folder marker some tools create; it holds no data
		}
		t.pending.Add(1)
		r.listed.Add(1)
		j := job{t: t, key: obj.Key, name: strings.TrimPrefix(obj.Key, prefix), size: obj.Size}
		select {
		case jobs <- j:
		case <-r.app.stopping.Done():
			t.pending.Done()
			r.interrupted.Store(true)
			return
		}
	}
}

func (t *tenantWalk) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == nil {
		t.err = err
	}
}

func (t *tenantWalk) failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err != nil
}

// outcome is what became of one object.
type outcome struct {
	status   string // one of the status constants
	stored   s3sse.StoredEncryption
	now      *s3sse.StoredEncryption // after re-encryption
	etag     string
	size     int64
	reason   string
	err      error
	unknownC bool // SSE-C under a key the tenant does not hold
}

// Statuses of an object, as printed.
const (
	statusCompliant       = "compliant"
	statusNonCompliant    = "non-compliant"
	statusWouldReencrypt  = "would-reencrypt"
	statusReencrypted     = "reencrypted"
	statusSkipped         = "skipped"
	statusFailed          = "failed"
	statusError           = "error"
	statusCannotReencrypt = "cannot-reencrypt"
)

// process audits one object and, when asked, re-encrypts it.
func (r *walk) process(ctx context.Context, j job) {
	defer j.t.pending.Done()
	if r.stopping() {
		r.interrupted.Store(true)
		return
	}
	if j.t.failed() {
		return
	}

	o := r.inspect(ctx, j)
	if o == nil {
		return // deleted since it was listed: nothing to audit
	}
	r.checked.Add(1)
	if o.status == statusNonCompliant {
		r.nonCompl.Add(1)
		if r.opts.reencrypt {
			r.reencrypt(ctx, j, o)
		}
	}
	j.t.record(o, r.opts.reencrypt)
	if o.status != statusCompliant {
		r.out.object(j, o)
	}
}

// inspect reads the object's stored encryption and compares it with the
// tenant's policy. It returns nil when the object no longer exists.
func (r *walk) inspect(ctx context.Context, j job) *outcome {
	attrs, err := j.t.tb.Attributes(ctx, j.name)
	switch {
	case err == nil:
	case s3sse.IsObjectNotFound(err):
		return nil
	case errors.Is(err, s3sse.ErrCustomerKeyNeedsTLS), errors.Is(err, s3sse.ErrResolveSSE):
		// Every object of the tenant would fail alike.
		j.t.fail(err)
		return &outcome{status: statusError, size: j.size, err: err}
	case s3sse.IsCustomerKeyMismatch(err):
		return r.inspectUnreadable(ctx, j, err)
	default:
		return &outcome{status: statusError, size: j.size, err: err}
	}

	o := &outcome{stored: attrs.Encryption, etag: attrs.ETag, size: attrs.Size}
	if ok, reason := attrs.Encryption.Satisfies(j.t.want); ok {
		o.status = statusCompliant
	} else {
		o.status, o.reason = statusNonCompliant, reason
	}
	return o
}

// inspectUnreadable tells an SSE-C object under a key the tenant does not
// hold (S3 answers a HEAD without a key with 400) from an object the
// credentials may not read (403, which a wrong key also gives).
func (r *walk) inspectUnreadable(ctx context.Context, j job, err error) *outcome {
	_, plainErr := r.bucket.Client().StatObject(ctx, r.bucket.Name(), j.key,
		minio.StatObjectOptions{})
	var resp minio.ErrorResponse
	if errors.As(plainErr, &resp) && resp.StatusCode == http.StatusBadRequest {
		stored := s3sse.StoredEncryption{Type: s3sse.TypeSSEC}
		return &outcome{status: statusNonCompliant, stored: stored, size: j.size, unknownC: true,
			reason: "SSE-C under a key that none of the tenant's key files holds, so it cannot " +
				"be read; list that key in s3_sse_customer_previous_key_files to read and " +
				"re-encrypt it"}
	}
	if plainErr != nil && s3sse.IsObjectNotFound(plainErr) {
		return nil
	}
	return &outcome{status: statusError, size: j.size, err: err}
}

// reencrypt rewrites a non-compliant object under the tenant's encryption,
// unless this is a dry run, and updates o with what came of it.
func (r *walk) reencrypt(ctx context.Context, j job, o *outcome) {
	if o.unknownC {
		o.status = statusCannotReencrypt
		return
	}
	if !r.opts.apply {
		o.status = statusWouldReencrypt
		return
	}
	if r.stopping() {
		r.interrupted.Store(true)
		return // stays non-compliant; a later run does it
	}

	if r.app.beforeCopy != nil {
		r.app.beforeCopy(j.t.id, j.name)
	}
	err := j.t.tb.Reencrypt(ctx, j.name, o.etag)
	if r.app.afterCopy != nil {
		r.app.afterCopy(j.t.id, j.name, err)
	}

	switch {
	case err == nil:
	case isPreconditionFailed(err):
		o.status, o.reason = statusSkipped, "the object changed since it was audited; the "+
			"newer write is kept"
		return
	case s3sse.IsObjectNotFound(err):
		o.status, o.reason = statusSkipped, "the object was deleted since it was audited"
		return
	case s3sse.IsKMSKeyNotFound(err):
		// Every copy of the tenant would fail alike: stop sending them.
		j.t.fail(fmt.Errorf("its KMS key %q does not exist, so none of its objects can be "+
			"re-encrypted; fix the key id: %w", j.t.want.KMSKeyID(), err))
		o.status, o.err = statusFailed, err
		return
	default:
		o.status, o.err = statusFailed, err
		return
	}

	// Read the object back: the server is the judge of what it stored.
	attrs, err := j.t.tb.Attributes(ctx, j.name)
	if err != nil {
		o.status, o.err = statusFailed, fmt.Errorf("copied, but reading it back: %w", err)
		return
	}
	if ok, reason := attrs.Encryption.Satisfies(j.t.want); !ok {
		o.status = statusFailed
		o.err = fmt.Errorf("copied, but the object is still not compliant: %s", reason)
		return
	}
	o.status, o.now = statusReencrypted, &attrs.Encryption
	r.rewritten.Add(1)
}

// isPreconditionFailed reports whether the copy was refused because the
// object's ETag changed, whether the library or the server noticed.
func isPreconditionFailed(err error) bool {
	if errors.Is(err, s3sse.ErrPreconditionFailed) {
		return true
	}
	var resp minio.ErrorResponse
	return errors.As(err, &resp) &&
		(resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed)
}

// record adds the object to the tenant's summary.
func (t *tenantWalk) record(o *outcome, reencrypt bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.stats
	s.objects++
	s.bytes += o.size

	if o.status == statusError {
		s.errors++
		return
	}
	key := o.stored.String()
	c, ok := s.byEncryption[key]
	if !ok {
		c = &storedCount{stored: o.stored}
		s.byEncryption[key] = c
	}
	c.objects++
	c.bytes += o.size

	switch o.status {
	case statusCompliant:
		s.compliant++
		return
	case statusReencrypted:
		s.reencrypted++
		s.reencryptedBytes += o.size
	case statusSkipped:
		s.skipped++
		s.remaining++
	case statusFailed, statusCannotReencrypt:
		s.failed++
		s.remaining++
	default:
		s.remaining++
	}
	s.nonCompliant++
}

// totals adds up the tenants' summaries.
func (r *walk) totals() (total tenantStats, tenantErrors int) {
	for _, t := range r.tenants {
		t.mu.Lock()
		s := t.stats
		if t.err != nil {
			tenantErrors++
		}
		t.mu.Unlock()
		total.objects += s.objects
		total.bytes += s.bytes
		total.compliant += s.compliant
		total.nonCompliant += s.nonCompliant
		total.reencrypted += s.reencrypted
		total.reencryptedBytes += s.reencryptedBytes
		total.skipped += s.skipped
		total.failed += s.failed
		total.errors += s.errors
		total.remaining += s.remaining
	}
	return total, tenantErrors
}

func (r *walk) exitCode() int {
	total, tenantErrors := r.totals()
	switch {
	case r.interrupted.Load():
		return exitInterrupted
	case r.listErr != nil, tenantErrors > 0, total.errors > 0,
		r.opts.apply && total.failed > 0:
		return exitError
	case total.remaining > 0:
		return exitNonCompliant
	}
	return exitOK
}
