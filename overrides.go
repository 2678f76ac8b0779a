package s3sse

import (
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"gopkg.in/yaml.v3"
)

// Provider gives the per-tenant SSE overrides of a runtime config. Its
// methods return "" for a tenant without the value. Cortex's, Mimir's and
// Loki's limits types satisfy it as they are, so a host passes its overrides
// object directly; RuntimeConfig is the library's own. Implementations must
// be safe for concurrent use.
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

// The override keys, as indexes into per-key arrays.
const (
	typeKey = iota
	kmsKeyIDKey
	contextKey
	keyFileKey
	previousKeyFilesKey
	numOverrideKeys
)

// overrideKeyNames are the runtime config keys of an override, by index.
var overrideKeyNames = [numOverrideKeys]string{
	typeKey:             overrideFieldNames.typ.key,
	kmsKeyIDKey:         overrideFieldNames.keyID.key,
	contextKey:          overrideFieldNames.context.key,
	keyFileKey:          overrideFieldNames.keyFile.key,
	previousKeyFilesKey: overrideFieldNames.previousKeyFiles.key,
}

func overrideKeyIndex(name string) (int, bool) {
	for i, n := range overrideKeyNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// set stores the value a file writes for one key. The error leaves File
// and Tenant to the caller.
func (o *TenantOverride) set(key int, k rawKey) *ConfigError {
	bad := func(reason string, sentinel error) *ConfigError {
		return &ConfigError{Key: k.name, Value: k.value, Reason: reason, Err: sentinel}
	}
	switch key {
	case contextKey:
		if k.node == nil {
			o.KMSEncryptionContext = EncryptionContext(k.value)
			return nil
		}
		var c EncryptionContext
		if err := c.UnmarshalYAML(k.node); err != nil {
			return bad(err.Error()+`; it must be a JSON object of string values, such as `+
				`{"tenant":"a"}, or a mapping of strings`, ErrInvalidEncryptionContext)
		}
		o.KMSEncryptionContext = c

	case previousKeyFilesKey:
		if k.node == nil {
			var files csvFlag
			_ = files.Set(k.value)
			o.CustomerPreviousKeyFiles = files
			return nil
		}
		if k.node.Kind != yaml.SequenceNode {
			return bad(fmt.Sprintf("line %d: must be a list of file names", k.line), ErrInvalidConfig)
		}
		files := make([]string, 0, len(k.node.Content))
		for _, item := range k.node.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" || item.Value == "" {
				return bad(fmt.Sprintf("line %d: must be a list of file names", item.Line),
					ErrInvalidConfig)
			}
			files = append(files, item.Value)
		}
		o.CustomerPreviousKeyFiles = files

	default:
		if k.node != nil {
			return bad(fmt.Sprintf("line %d: must be a string", k.line), ErrInvalidConfig)
		}
		switch key {
		case typeKey:
			o.Type = SSEType(k.value)
		case kmsKeyIDKey:
			o.KMSKeyID = k.value
		case keyFileKey:
			o.CustomerKeyFile = k.value
		}
	}
	return nil
}

func (o *TenantOverride) equal(p *TenantOverride) bool {
	return o.Type == p.Type && o.KMSKeyID == p.KMSKeyID &&
		o.KMSEncryptionContext == p.KMSEncryptionContext &&
		o.CustomerKeyFile == p.CustomerKeyFile &&
		slices.Equal(o.CustomerPreviousKeyFiles, p.CustomerPreviousKeyFiles)
}

// keyFiles lists the SSE-C key files the override names.
func (o *TenantOverride) keyFiles() []string {
	if o.CustomerKeyFile == "" {
		return o.CustomerPreviousKeyFiles
	}
	return append([]string{o.CustomerKeyFile}, o.CustomerPreviousKeyFiles...)
}

// setKeys names the override keys some file sets for the tenant.
func (e *tenantEntry) setKeys() []string {
	var keys []string
	for i, f := range e.fileOf {
		if f >= 0 {
			keys = append(keys, overrideKeyNames[i])
		}
	}
	return keys
}

// DefaultResolverCacheSize is how many distinct override values of a
// host-supplied Provider a Resolver keeps built, unless told otherwise.
const DefaultResolverCacheSize = 1 << 17

// ResolverOptions tunes a Resolver. A nil *ResolverOptions is the zero
// value, and every zero field takes its default.
type ResolverOptions struct {
	// Logger receives warnings for values the SSE type does not use, and
	// errors for invalid overrides, each logged once per distinct value.
	// Default: none.
	Logger log.Logger

	// CacheSize bounds how many distinct override values (type, key id,
	// context and key files) of a host-supplied Provider stay built. When
	// it is reached the cache starts over, so values in use are built again
	// once. It does not apply to a RuntimeConfig, which builds every
	// tenant's value when it loads. Default DefaultResolverCacheSize.
	CacheSize int

	// KeyFileRefresh is how often SSE-C key files are read again when no
	// RuntimeConfig does it: those of a host-supplied Provider's values and
	// those of the sse block under a host-supplied or nil Provider. The
	// first resolve after the period reads them; resolves meanwhile keep
	// the key in force. Default DefaultReloadPeriod.
	KeyFileRefresh time.Duration

	// now is where time comes from; tests replace it.
	now func() time.Time
}

// Resolver turns a tenant ID into the tenant's encryption: its override
// when the provider sets s3_sse_type for it, the sse block otherwise. As in
// Cortex, an override replaces the block as a whole: a tenant with
// s3_sse_type SSE-KMS and no key id gets the server's managed key, not the
// block's key id, and the block's context is not merged into the tenant's.
// An override without s3_sse_type does not apply.
//
// Values are built once, not per call. Over a RuntimeConfig, resolving is
// a map lookup on the config in force, with no lock and no allocation.
// Over a host-supplied Provider, whose values may change at any moment, the
// three (or five) strings it returns are looked up in a cache of built
// values, so JSON is parsed once per distinct value.
//
// A Resolver is safe for concurrent use.
type Resolver struct {
	def *defaultBlock

	// Exactly one of runtime and host is set when there are overrides.
	runtime  *RuntimeConfig
	host     Provider
	hostKeys CustomerKeyProvider // host's SSE-C part, if it has one
	cache    *hostCache

	logger  log.Logger
	refresh time.Duration
	now     func() time.Time
}

// NewResolver validates the sse block, reads its key files and returns a
// resolver over it and overrides. A nil overrides gives every tenant the
// block; a nil logger discards warnings. It is NewResolverWithOptions with
// only a Logger.
func NewResolver(defaults Config, overrides Provider, logger log.Logger) (*Resolver, error) {
	return NewResolverWithOptions(defaults, overrides, &ResolverOptions{Logger: logger})
}

// NewResolverWithOptions is NewResolver with options; nil opts take every
// default.
//
// When overrides is a *RuntimeConfig, each of its reloads also reads the
// block's SSE-C key files again, so a rotated key takes effect with the
// tenants'; a key file that turns unreadable or invalid is logged at error
// level and the previous key stays in force. Otherwise the block's key
// files are read again every opts.KeyFileRefresh.
func NewResolverWithOptions(defaults Config, overrides Provider, opts *ResolverOptions) (*Resolver, error) {
	var o ResolverOptions
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = log.NewNopLogger()
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultResolverCacheSize
	}
	if o.KeyFileRefresh <= 0 {
		o.KeyFileRefresh = DefaultReloadPeriod
	}
	if o.now == nil {
		o.now = time.Now
	}

	r := &Resolver{logger: o.Logger, refresh: o.KeyFileRefresh, now: o.now}
	s := defaults.settings()
	def, err := s.build(nil)
	if err != nil {
		return nil, err
	}
	for _, w := range s.warnings() {
		level.Warn(r.logger).Log("msg", w)
	}
	r.def = &defaultBlock{settings: s, logger: r.logger, period: r.refresh, now: r.now,
		keyFiles: s.keyFile != "" || len(s.previousKeyFiles) > 0}
	r.def.enc.Store(def)
	r.def.nextRefresh.Store(r.now().Add(r.refresh).UnixNano())

	switch p := overrides.(type) {
	case nil:
	case *RuntimeConfig:
		if p != nil {
			r.runtime = p
			if r.def.keyFiles {
				p.follow(r.def)
			}
		}
	default:
		r.host = p
		r.hostKeys, _ = p.(CustomerKeyProvider)
		r.cache = &hostCache{entries: map[hostKey]*hostEntry{}, max: o.CacheSize,
			seed: maphash.MakeSeed()}
	}
	r.def.lazy = r.def.keyFiles && r.runtime == nil
	return r, nil
}

// Encryption returns the tenant's encryption. An invalid override is an
// error naming the tenant, key and value, a *ConfigError: never a fall back
// to the sse block or to no encryption. Over a RuntimeConfig it never fails,
// since every override in force was validated when it loaded.
func (r *Resolver) Encryption(tenantID string) (*Encryption, error) {
	if r.runtime != nil {
		if e := r.runtime.encryption(tenantID); e != nil {
			return e, nil
		}
		return r.def.get(), nil
	}
	if r.host != nil {
		return r.hostEncryption(tenantID)
	}
	return r.def.get(), nil
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

// Default is the encryption of the sse block, with its key files as last
// read.
func (r *Resolver) Default() *Encryption { return r.def.get() }

// defaultBlock is the sse block's encryption, which changes only when its
// SSE-C key files do.
type defaultBlock struct {
	settings settings
	enc      atomic.Pointer[Encryption]
	// keyFiles is whether the block names SSE-C key files, which rotate.
	keyFiles bool
	// lazy is whether get reads them again itself, every refresh; when a
	// RuntimeConfig follows the block, its reloads do.
	lazy        bool
	period      time.Duration
	now         func() time.Time
	nextRefresh atomic.Int64
	refreshing  atomic.Bool
	logger      log.Logger
	lastErr     string // the refresh error last logged; refreshes are serialized
}

func (d *defaultBlock) get() *Encryption {
	if d.lazy {
		now := d.now().UnixNano()
		if now >= d.nextRefresh.Load() && d.refreshing.CompareAndSwap(false, true) {
			d.nextRefresh.Store(now + int64(d.period))
			d.refresh()
			d.refreshing.Store(false)
		}
	}
	return d.enc.Load()
}

// refresh reads the block's key files again and puts a changed key in
// force. A key file that cannot be used keeps the previous key.
func (d *defaultBlock) refresh() {
	e, err := d.settings.build(nil)
	if err != nil {
		if msg := err.Error(); msg != d.lastErr {
			d.lastErr = msg
			level.Error(d.logger).Log("msg", "cannot read the sse block's key files again; "+
				"the previous key stays in force", "file", d.settings.keyFile, "err", err)
		}
		return
	}
	d.lastErr = ""
	if sameKeys(d.enc.Load(), e) {
		return
	}
	d.enc.Store(e)
	level.Info(d.logger).Log("msg", "the sse block's SSE-C key files changed; the new key is "+
		"in force", "file", d.settings.keyFile, "key", e.CustomerKeyMD5())
}

// sameKeys reports whether a and b hold the same SSE-C keys in the same order.
func sameKeys(a, b *Encryption) bool {
	if a == nil || b == nil || len(a.readKeys) != len(b.readKeys) {
		return false
	}
	for i := range a.readKeys {
		if a.readKeys[i].key != b.readKeys[i].key {
			return false
		}
	}
	return true
}

// hostKey is what a host-supplied Provider says of a tenant: the cache's
// key. Comparing it takes no allocation.
type hostKey struct {
	typ, keyID, context, keyFile string
	// previous is a hash of the previous key files, 0 for none; the entry
	// keeps the list to rule out a collision.
	previous uint64
}

// hostCache holds built values of a host-supplied Provider. Misses, once
// per distinct value, take the write lock; hits share the read lock.
type hostCache struct {
	mu      sync.RWMutex
	entries map[hostKey]*hostEntry
	max     int
	seed    maphash.Seed
}

type hostEntry struct {
	settings settings
	previous []string
	keyFiles bool

	built       atomic.Pointer[hostBuilt]
	nextRefresh atomic.Int64
	refreshing  atomic.Bool
	lastErr     string // the error last logged; guarded by refreshing after creation
}

// hostBuilt is a built value or why it cannot be built.
type hostBuilt struct {
	enc *Encryption
	err *ConfigError
}

func (r *Resolver) hostEncryption(tenantID string) (*Encryption, error) {
	typ := r.host.S3SSEType(tenantID)
	if typ == "" {
		return r.def.get(), nil
	}
	k := hostKey{
		typ:     typ,
		keyID:   r.host.S3SSEKMSKeyID(tenantID),
		context: r.host.S3SSEKMSEncryptionContext(tenantID),
	}
	var previous []string
	if r.hostKeys != nil {
		k.keyFile = r.hostKeys.S3SSECustomerKeyFile(tenantID)
		previous = r.hostKeys.S3SSECustomerPreviousKeyFiles(tenantID)
		k.previous = r.cache.hashFiles(previous)
	}

	r.cache.mu.RLock()
	e := r.cache.entries[k]
	r.cache.mu.RUnlock()
	if e == nil || !slices.Equal(e.previous, previous) {
		e = r.addHostEntry(k, previous, tenantID)
	}

	b := e.built.Load()
	if e.keyFiles {
		b = r.refreshHostEntry(e, tenantID)
	}
	if b.err != nil {
		return nil, b.errorFor(tenantID)
	}
	return b.enc, nil
}

func (c *hostCache) hashFiles(files []string) uint64 {
	if len(files) == 0 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, f := range files {
		h.WriteString(f)
		h.WriteByte(0)
	}
	return h.Sum64() | 1 // never 0, which stands for none
}

// addHostEntry builds a value seen for the first time, under the write
// lock so that it is built, and its problems logged, once.
func (r *Resolver) addHostEntry(k hostKey, previous []string, tenantID string) *hostEntry {
	r.cache.mu.Lock()
	if e := r.cache.entries[k]; e != nil && slices.Equal(e.previous, previous) {
		r.cache.mu.Unlock()
		return e
	}
	o := TenantOverride{Type: SSEType(k.typ), KMSKeyID: k.keyID,
		KMSEncryptionContext: EncryptionContext(k.context), CustomerKeyFile: k.keyFile,
		CustomerPreviousKeyFiles: slices.Clone(previous)}
	e := &hostEntry{settings: o.settings(tenantID, ""), previous: o.CustomerPreviousKeyFiles,
		keyFiles: k.keyFile != "" || len(previous) > 0}
	b := e.build()
	e.built.Store(b)
	e.nextRefresh.Store(r.now().Add(r.refresh).UnixNano())
	if b.err != nil {
		e.lastErr = b.err.Error()
	}
	if len(r.cache.entries) >= r.cache.max {
		r.cache.entries = make(map[hostKey]*hostEntry, len(r.cache.entries))
	}
	r.cache.entries[k] = e
	r.cache.mu.Unlock()

	if b.err != nil {
		r.logInvalid(b.err, "invalid SSE override from the host's limits; every upload and read "+
			"of a tenant with this value fails until it changes")
	}
	for _, w := range e.settings.warnings() {
		level.Warn(r.logger).Log("msg", fmt.Sprintf("tenant %q: %s", tenantID, w),
			"tenant", tenantID)
	}
	return e
}

// refreshHostEntry reads the entry's key files again once its refresh
// period is over. One caller does it; the others go on with the value in
// force.
func (r *Resolver) refreshHostEntry(e *hostEntry, tenantID string) *hostBuilt {
	b := e.built.Load()
	now := r.now().UnixNano()
	if now < e.nextRefresh.Load() || !e.refreshing.CompareAndSwap(false, true) {
		return b
	}
	defer e.refreshing.Store(false)
	e.nextRefresh.Store(now + int64(r.refresh))

	next := e.build()
	switch {
	case next.err == nil:
		e.lastErr = ""
		if !sameKeys(b.enc, next.enc) {
			e.built.Store(next)
		}
	case b.err == nil:
		// The key in force was good: keep it rather than fail every upload.
		if msg := next.err.Error(); msg != e.lastErr {
			e.lastErr = msg
			r.logInvalid(next.err, "cannot read SSE-C key files again; the previous key stays "+
				"in force")
		}
	default:
		e.built.Store(next)
		if msg := next.err.Error(); msg != e.lastErr {
			e.lastErr = msg
			r.logInvalid(next.err, "invalid SSE override from the host's limits; every upload "+
				"and read of a tenant with this value fails until it changes")
		}
	}
	return e.built.Load()
}

func (e *hostEntry) build() *hostBuilt {
	enc, err := e.settings.build(nil)
	if err != nil {
		ce, ok := err.(*ConfigError)
		if !ok {
			ce = &ConfigError{Tenant: e.settings.tenant, Key: overrideKeyNames[typeKey],
				Value: string(e.settings.typ), Reason: err.Error(), Err: err}
		}
		return &hostBuilt{err: ce}
	}
	// One value serves every tenant with the same strings.
	enc.source = "override from the host's limits"
	return &hostBuilt{enc: enc}
}

// errorFor is the error as the tenant should read it: every tenant with
// the value shares it, but each is named in its own.
func (b *hostBuilt) errorFor(tenantID string) error {
	if b.err.Tenant == tenantID {
		return b.err
	}
	ce := *b.err
	ce.Tenant = tenantID
	return &ce
}

func (r *Resolver) logInvalid(err *ConfigError, msg string) {
	level.Error(r.logger).Log("msg", msg, "tenant", err.Tenant, "key", err.Key,
		"value", err.Value, "err", err)
}
