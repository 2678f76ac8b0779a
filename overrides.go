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
// host-supplied Provider, and how many tenants' views of them, a Resolver
// keeps built unless told otherwise.
const DefaultResolverCacheSize = 1 << 17

// ResolverOptions tunes a Resolver. A nil *ResolverOptions is the zero
// value, and every zero field takes its default.
type ResolverOptions struct {
	// Logger receives warnings for values the SSE type does not use, and
	// errors for invalid overrides, each logged once per distinct value.
	// Default: none.
	Logger log.Logger

	// CacheSize bounds how many distinct override values (type, key id,
	// context and key files) of a host-supplied Provider stay built, and
	// how many tenants' views of them are kept, a few hundred bytes each.
	// When either is reached it starts over, so what is in use is built
	// again once. It does not apply to a RuntimeConfig, which builds every
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
// Over a host-supplied Provider, whose values may change at any moment,
// the resolver calls its three (or five) methods, then finds the tenant's
// built value by tenant ID and checks it against the strings they
// returned, again with no lock and no allocation. Values are built, JSON
// parsed and bad values logged once per distinct set of strings, however
// many tenants share it.
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
		}
	default:
		r.host = p
		r.hostKeys, _ = p.(CustomerKeyProvider)
		r.cache = newHostCache(o.CacheSize)
	}
	// The block's key files are read again by the RuntimeConfig's reloads
	// when there is one, by resolves otherwise.
	r.def.lazy = r.def.keyFiles && r.runtime == nil
	if r.def.keyFiles && r.runtime != nil {
		r.runtime.follow(r.def)
	}
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

// hostKey is what a host-supplied Provider says of a tenant. Comparing
// it takes no allocation.
type hostKey struct {
	typ, keyID, context, keyFile string
	// previous is a hash of the previous key files, 0 for none; a value
	// keeps the list itself to rule out a collision.
	previous uint64
}

// hostCache holds what a Resolver built from a host-supplied Provider, in
// two maps that reads take no lock on. values holds each distinct value
// once, built once, however many tenants have it: a bad value is logged
// once, and JSON is parsed once. tenants holds each tenant's view of its
// value, the same encryption named after the tenant; it is also the faster
// lookup, since it hashes the short tenant ID rather than the value, and
// its entry holds all a resolve needs in one place.
type hostCache struct {
	values  readMostly[hostKey, *hostValue]
	tenants readMostly[string, *tenantView]
	seed    maphash.Seed
}

func newHostCache(max int) *hostCache {
	c := &hostCache{seed: maphash.MakeSeed()}
	c.values.init(max)
	c.tenants.init(max)
	return c
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

// hostValue is one distinct value of a host-supplied Provider, built.
type hostValue struct {
	settings settings // as first seen, naming the first tenant with it
	previous []string
	keyFiles bool // whether it names SSE-C key files, read again every refresh

	built       atomic.Pointer[hostBuilt]
	nextRefresh atomic.Int64
	refreshing  atomic.Bool
	lastErr     string // the error last logged; guarded by refreshing once published
}

// hostBuilt is a built value or why it cannot be built.
type hostBuilt struct {
	enc *Encryption
	err *ConfigError
}

// tenantView is a tenant's value as the tenant sees it, for the strings
// the provider gave. It is immutable: a new one replaces it when the
// strings change or the value's key files are read again.
type tenantView struct {
	key      hostKey
	previous []string
	value    *hostValue
	keyFiles bool        // value.keyFiles, here to spare a memory access
	built    *hostBuilt  // the value's build this view comes from
	enc      *Encryption // built.enc, named after the tenant; nil on error
	err      error       // built.err, naming the tenant; nil on success
}

// current reports whether the view is what the provider's strings and the
// value's key files now say.
func (v *tenantView) current(r *Resolver, k hostKey, previous []string) bool {
	if v.key != k || !slices.Equal(v.previous, previous) {
		return false
	}
	return !v.keyFiles || r.refreshHostValue(v.value) == v.built
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

	if v, ok := r.cache.tenants.load(tenantID); ok && v.current(r, k, previous) {
		return v.enc, v.err
	}
	return r.hostEncryptionSlow(tenantID, k, previous)
}

// hostEncryptionSlow finds or builds the value and the tenant's view of it:
// the first time a tenant is seen, when its strings change, and when its
// key files were read again.
func (r *Resolver) hostEncryptionSlow(tenantID string, k hostKey, previous []string) (*Encryption, error) {
	if v, ok := r.cache.tenants.loadNew(tenantID); ok && v.current(r, k, previous) {
		return v.enc, v.err
	}

	value, ok := r.cache.values.load(k)
	if !ok {
		value, ok = r.cache.values.loadNew(k)
	}
	if !ok {
		value = r.cache.values.loadOrAdd(k, func() *hostValue {
			return r.newHostValue(k, previous, tenantID)
		})
	}
	if !slices.Equal(value.previous, previous) {
		// Two lists of previous key files with one hash: build this one
		// apart. Astronomically rare, so it need not be fast.
		value = r.newHostValue(k, previous, tenantID)
	}
	b := value.built.Load()
	if value.keyFiles {
		b = r.refreshHostValue(value)
	}

	v := &tenantView{key: k, previous: value.previous, value: value, keyFiles: value.keyFiles,
		built: b}
	if b.err != nil {
		v.err = b.errorFor(tenantID)
	} else {
		enc := *b.enc // shares the immutable parts: the context, keys and minio-go value
		enc.source = settings{tenant: tenantID}.source()
		v.enc = &enc
	}
	r.cache.tenants.store(tenantID, v)
	return v.enc, v.err
}

// newHostValue builds a value seen for the first time and logs what is
// wrong with it, once.
func (r *Resolver) newHostValue(k hostKey, previous []string, tenantID string) *hostValue {
	o := TenantOverride{Type: SSEType(k.typ), KMSKeyID: k.keyID,
		KMSEncryptionContext: EncryptionContext(k.context), CustomerKeyFile: k.keyFile,
		CustomerPreviousKeyFiles: slices.Clone(previous)}
	v := &hostValue{settings: o.settings(tenantID, ""), previous: o.CustomerPreviousKeyFiles,
		keyFiles: k.keyFile != "" || len(previous) > 0}
	b := v.build()
	v.built.Store(b)
	v.nextRefresh.Store(r.now().Add(r.refresh).UnixNano())

	if b.err != nil {
		v.lastErr = b.err.Error()
		r.logInvalid(b.err, "invalid SSE override from the host's limits; every upload and read "+
			"of a tenant with this value fails until it changes")
	}
	for _, w := range v.settings.warnings() {
		level.Warn(r.logger).Log("msg", fmt.Sprintf("tenant %q: %s", tenantID, w),
			"tenant", tenantID)
	}
	return v
}

// refreshHostValue reads the value's key files again once its refresh
// period is over. One caller does it; the others go on with the value in
// force.
func (r *Resolver) refreshHostValue(v *hostValue) *hostBuilt {
	b := v.built.Load()
	now := r.now().UnixNano()
	if now < v.nextRefresh.Load() || !v.refreshing.CompareAndSwap(false, true) {
		return b
	}
	defer v.refreshing.Store(false)
	v.nextRefresh.Store(now + int64(r.refresh))

	next := v.build()
	switch {
	case next.err == nil:
		v.lastErr = ""
		if !sameKeys(b.enc, next.enc) {
			v.built.Store(next)
		}
	case b.err == nil:
		// The key in force was good: keep it rather than fail every upload.
		if msg := next.err.Error(); msg != v.lastErr {
			v.lastErr = msg
			r.logInvalid(next.err, "cannot read SSE-C key files again; the previous key stays "+
				"in force")
		}
	default:
		v.built.Store(next)
		if msg := next.err.Error(); msg != v.lastErr {
			v.lastErr = msg
			r.logInvalid(next.err, "invalid SSE override from the host's limits; every upload "+
				"and read of a tenant with this value fails until it changes")
		}
	}
	return v.built.Load()
}

func (v *hostValue) build() *hostBuilt {
	enc, err := v.settings.build(nil)
	if err != nil {
		ce, ok := err.(*ConfigError)
		if !ok {
			ce = &ConfigError{Tenant: v.settings.tenant, Key: overrideKeyNames[typeKey],
				Value: string(v.settings.typ), Reason: err.Error(), Err: err}
		}
		return &hostBuilt{err: ce}
	}
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

// readMostly is a bounded map for entries read far more often than
// written. Reads of entries written a while ago take no lock: they are in
// read, an immutable map. Writes go to dirty, under the mutex, and are
// folded into a new read map once lookups have found enough of them there
// to pay for copying it; until then a lookup that finds an entry replaced
// in read must look in dirty too. When the map holds max entries it starts
// over: entries in use are written again, and those no longer in use go.
type readMostly[K comparable, V any] struct {
	read atomic.Pointer[map[K]V]

	mu     sync.Mutex
	dirty  map[K]V // entries written since read was made; they win over read's
	misses int     // lookups that found their entry in dirty
	max    int
}

func (m *readMostly[K, V]) init(max int) {
	m.read.Store(&map[K]V{})
	m.dirty = map[K]V{}
	m.max = max
}

// load looks k up in read, with no lock. The entry may have been replaced
// since; loadNew says.
func (m *readMostly[K, V]) load(k K) (V, bool) {
	v, ok := (*m.read.Load())[k]
	return v, ok
}

// loadNew looks k up as last written: in dirty, then in read.
func (m *readMostly[K, V]) loadNew(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.dirty[k]; ok {
		m.misses++
		m.promoteIfDue()
		return v, true
	}
	v, ok := (*m.read.Load())[k]
	return v, ok
}

// loadOrAdd returns k's entry as last written, adding the one add returns
// if there is none. add runs under the lock, so once per key.
func (m *readMostly[K, V]) loadOrAdd(k K, add func() V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.dirty[k]; ok {
		return v
	}
	if v, ok := (*m.read.Load())[k]; ok {
		return v
	}
	v := add()
	m.storeLocked(k, v)
	return v
}

// store writes k's entry, replacing any.
func (m *readMostly[K, V]) store(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.storeLocked(k, v)
}

func (m *readMostly[K, V]) storeLocked(k K, v V) {
	read := *m.read.Load()
	if _, replaces := read[k]; !replaces && len(read)+len(m.dirty) >= m.max {
		m.read.Store(&map[K]V{})
		m.dirty = map[K]V{}
		m.misses = 0
	}
	m.dirty[k] = v
}

func (m *readMostly[K, V]) promoteIfDue() {
	read := *m.read.Load()
	if m.misses < len(m.dirty)+len(read)/16 {
		return
	}
	next := make(map[K]V, len(read)+len(m.dirty))
	for k, v := range read {
		next[k] = v
	}
	for k, v := range m.dirty {
		next[k] = v
	}
	m.read.Store(&next)
	m.dirty = map[K]V{}
	m.misses = 0
}

// len is how many keys the map holds.
func (m *readMostly[K, V]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	read := *m.read.Load()
	n := len(read)
	for k := range m.dirty {
		if _, ok := read[k]; !ok {
			n++
		}
	}
	return n
}
