package s3sse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// DefaultReloadPeriod is how often a RuntimeConfig reads its files again
// unless told otherwise, as in Cortex.
const DefaultReloadPeriod = 10 * time.Second

// maxReportedErrors caps the problems one rejected reload logs and returns:
// a file broken from top to bottom should not flood the log.
const maxReportedErrors = 10

// RuntimeConfigConfig says which runtime config files a RuntimeConfig reads
// and how often. It is the runtime_config block of Cortex and Mimir: the
// YAML keys are file and period, and RegisterFlagsWithPrefix("runtime-config.")
// registers -runtime-config.file and -runtime-config.reload-period.
//
// The zero value reads no file: every tenant uses the sse block. A
// RuntimeConfigConfig is a plain value; do not change it while another
// goroutine reads it.
type RuntimeConfigConfig struct {
	// Files are the runtime config files, read in order; for each tenant, a
	// later file wins for every s3_sse key it sets. In YAML, a
	// comma-separated string (as Cortex writes it) or a list. Default: none.
	Files []string

	// ReloadPeriod is how often the files are read again. Zero reads them
	// once, at start; negative is invalid. Default: DefaultReloadPeriod
	// when set by flags; a RuntimeConfigConfig built in code takes the
	// value it holds.
	ReloadPeriod time.Duration

	// flagPrefix is the prefix the flags were registered under, so that
	// errors can name the flag an operator would change.
	flagPrefix string
}

// RegisterFlagsWithPrefix registers the block's flags on f under prefix,
// which by convention ends with a dot: with "runtime-config." they are
// -runtime-config.file and -runtime-config.reload-period, Cortex's names.
func (c *RuntimeConfigConfig) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	f.Var((*csvFlag)(&c.Files), prefix+"file",
		"Comma-separated runtime config files holding per-tenant overrides, merged from left "+
			"to right: for each tenant, a later file wins for every s3_sse key it sets. Empty "+
			"reads no file and every tenant uses the sse block.")
	f.DurationVar(&c.ReloadPeriod, prefix+"reload-period", DefaultReloadPeriod,
		"How often the runtime config files, and the SSE-C key files they name, are read "+
			"again. 0 reads them once, at start.")
}

// Validate checks the block: the period must not be negative and no file
// name may be empty. The error names the YAML key and the flag.
func (c *RuntimeConfigConfig) Validate() error {
	if c.ReloadPeriod < 0 {
		return fmt.Errorf("s3sse: runtime_config.period (flag -%sreload-period) %q: must be "+
			"0 (read the files once) or a positive duration such as 10s",
			c.flagPrefix, c.ReloadPeriod)
	}
	for i, f := range c.Files {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("s3sse: runtime_config.file (flag -%sfile): file %d of %d has "+
				"an empty name", c.flagPrefix, i+1, len(c.Files))
		}
	}
	return nil
}

// runtimeConfigYAML is the block as YAML writes it.
type runtimeConfigYAML struct {
	File   yaml.Node      `yaml:"file"`
	Period *time.Duration `yaml:"period"`
}

// UnmarshalYAML decodes the keys file and period. Keys the YAML leaves out
// keep their value, so flags set the defaults; unknown keys are an error.
func (c *RuntimeConfigConfig) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		if node.ShortTag() == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: runtime_config must be a mapping with the keys file "+
			"and period", node.Line)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i].Value; k != "file" && k != "period" {
			return fmt.Errorf("line %d: runtime_config: unknown key %q; valid: file, period",
				node.Content[i].Line, k)
		}
	}

	var raw runtimeConfigYAML
	if err := node.Decode(&raw); err != nil {
		return err
	}
	if raw.Period != nil {
		c.ReloadPeriod = *raw.Period
	}
	switch f := raw.File; {
	case f.Kind == 0:
	case f.Kind == yaml.ScalarNode:
		var files csvFlag
		if f.ShortTag() != "!!null" {
			_ = files.Set(f.Value)
		}
		c.Files = files
	case f.Kind == yaml.SequenceNode:
		var files []string
		if err := f.Decode(&files); err != nil {
			return fmt.Errorf("runtime_config.file: %w", err)
		}
		c.Files = files
	default:
		return fmt.Errorf("line %d: runtime_config.file must be a comma-separated string "+
			"or a list of file names", f.Line)
	}
	return nil
}

// MarshalYAML writes the block as Cortex does: the files as one
// comma-separated string and the period as a duration.
func (c RuntimeConfigConfig) MarshalYAML() (any, error) {
	return struct {
		File   string `yaml:"file"`
		Period string `yaml:"period"`
	}{strings.Join(c.Files, ","), c.ReloadPeriod.String()}, nil
}

// RuntimeConfig is the library's own Provider: it reads per-tenant SSE
// overrides from runtime config files and reads them again every reload
// period while the process runs.
//
// A file is laid out as Cortex's runtime config, and may be the very file
// the host reads its limits from:
//
//	overrides:
//	  tenant-a:
//	    ingestion_rate: 50000          # the host's; ignored here
//	    s3_sse_type: SSE-KMS
//	    s3_sse_kms_key_id: alias/tenant-a
//	    s3_sse_kms_encryption_context: '{"tenant":"a"}'
//	  tenant-b:
//	    s3_sse_type: SSE-C
//	    s3_sse_customer_key_file: /etc/s3sse/keys/tenant-b
//	    s3_sse_customer_previous_key_files: [/etc/s3sse/keys/tenant-b.old]
//
// Every other top-level section and per-tenant limit is ignored. A key
// beginning with s3_sse that is none of the five override keys is an error,
// so that a typo cannot silently drop a tenant's encryption. Files merge in
// order: for each tenant, a later file wins for every s3_sse key it sets,
// as dskit merges runtime config files.
//
// Each reload reads the files and the SSE-C key files they name. When
// nothing changed (by content hash) nothing is rebuilt. Otherwise every
// tenant's override is validated and its encryption built; if any file is
// unreadable or malformed, or any tenant invalid, the whole reload is
// rejected, the last good config stays in force, and each problem is logged
// at error level. Status and the optional metrics tell the host how the last
// reload went. A file that held a config and is found empty, or holding only
// comments, is rejected the same way, as a file caught while rewritten in
// place. Other moments of an in-place rewrite can parse as a valid config (a
// file cut at the end of a line), so write files by renaming a complete one
// over them, as Kubernetes does for mounted ConfigMaps: no reload can catch
// a rename half-done.
//
// Files in the plain block style of generated files (one "key: value" per
// line, no lists, anchors or flow mappings) are read by a reader of that
// style alone; any other file goes through yaml.v3, about ten times slower,
// which a file of 100,000 tenants feels (BenchmarkScanRuntimeConfig).
//
// A RuntimeConfig is safe for concurrent use; reads never wait for a reload.
type RuntimeConfig struct {
	files  []string
	period time.Duration
	logger log.Logger

	// current is the config in force, replaced whole by each change.
	current atomic.Pointer[runtimeSnapshot]

	// reloadMu serializes reloads, and guards what they keep between runs.
	reloadMu sync.Mutex
	seed     maphash.Seed
	fileSums []uint64 // content hash of each file in force
	// fileHeld is whether each file in force held more than white space
	// and comments.
	fileHeld []bool
	// rejectedSums are the content hashes of files whose parse failed with
	// rejectedErr, so that the same broken files are not parsed every period.
	rejectedSums []uint64
	rejectedErr  error
	chunk        []byte              // hashFiles' buffer
	warned       map[string]struct{} // warnings logged for the config in force

	statusMu sync.Mutex
	status   RuntimeConfigStatus

	followMu  sync.Mutex
	followers []weak.Pointer[defaultBlock]

	metrics *runtimeMetrics
	now     func() time.Time
	// afterTick, when set by tests, runs after each reload of the loop.
	afterTick func()

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

var (
	_ Provider            = (*RuntimeConfig)(nil)
	_ CustomerKeyProvider = (*RuntimeConfig)(nil)
)

// RuntimeConfigStatus is how the last reload went and what is in force.
type RuntimeConfigStatus struct {
	// LastReload is when the files were last read, whatever came of it.
	LastReload time.Time
	// LastReloadSuccessful is whether that reload was applied or found
	// nothing changed.
	LastReloadSuccessful bool
	// LastSuccess is when a reload last succeeded.
	LastSuccess time.Time
	// Err is why the last reload was rejected; nil when it succeeded. The
	// config in force is then the one loaded at LoadedAt.
	Err error

	// Hash identifies the config in force: the hex SHA-256 of the files'
	// contents, in order, and of the SSE-C key files they name. Replicas
	// reading the same files report the same hash.
	Hash string
	// LoadedAt is when the config in force was loaded.
	LoadedAt time.Time
	// Tenants is how many tenants have an override in force, that is an
	// s3_sse_type.
	Tenants int
}

// NewRuntimeConfig reads the files of cfg and returns a RuntimeConfig over
// them. If the first load fails, it returns the error and nothing runs.
//
// Unless cfg.ReloadPeriod is zero, a goroutine reads the files again every
// period until ctx is done or Stop is called. reg, when not nil, receives
// the gauges s3sse_runtime_config_last_reload_successful,
// s3sse_runtime_config_last_reload_success_timestamp_seconds,
// s3sse_runtime_config_hash (label sha256) and
// s3sse_runtime_config_tenants_with_overrides; wrap it with a label to
// register more than one RuntimeConfig. A nil logger discards the log.
func NewRuntimeConfig(ctx context.Context, cfg RuntimeConfigConfig, reg prometheus.Registerer,
	logger log.Logger) (*RuntimeConfig, error) {
	return newRuntimeConfig(ctx, cfg, reg, logger, runtimeClock{})
}

// runtimeClock is where time comes from; tests replace it.
type runtimeClock struct {
	now       func() time.Time
	newTicker func(time.Duration) (<-chan time.Time, func())
	afterTick func()
}

func newRuntimeConfig(ctx context.Context, cfg RuntimeConfigConfig, reg prometheus.Registerer,
	logger log.Logger, clock runtimeClock) (*RuntimeConfig, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = log.NewNopLogger()
	}
	if clock.now == nil {
		clock.now = time.Now
	}
	if clock.newTicker == nil {
		clock.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}

	rc := &RuntimeConfig{
		files:     slices.Clone(cfg.Files),
		period:    cfg.ReloadPeriod,
		logger:    logger,
		seed:      maphash.MakeSeed(),
		now:       clock.now,
		afterTick: clock.afterTick,
		done:      make(chan struct{}),
	}
	if reg != nil {
		m, err := newRuntimeMetrics(reg)
		if err != nil {
			return nil, err
		}
		rc.metrics = m
	}

	if err := rc.Reload(); err != nil {
		return nil, fmt.Errorf("load runtime config: %w", err)
	}

	if rc.period == 0 {
		rc.cancel = func() {}
		close(rc.done)
		return rc, nil
	}
	ctx, rc.cancel = context.WithCancel(ctx)
	ticks, stopTicker := clock.newTicker(rc.period)
	go rc.loop(ctx, ticks, stopTicker)
	return rc, nil
}

func (rc *RuntimeConfig) loop(ctx context.Context, ticks <-chan time.Time, stopTicker func()) {
	defer close(rc.done)
	defer stopTicker()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			_ = rc.Reload() // Reload logs its failures and keeps the last good config
			if rc.afterTick != nil {
				rc.afterTick()
			}
		}
	}
}

// Stop ends the reload goroutine and waits for it to return; a reload in
// progress finishes first. The config in force stays readable. Stop may be
// called more than once, and after ctx is done.
func (rc *RuntimeConfig) Stop() {
	rc.stopOnce.Do(rc.cancel)
	<-rc.done
}

// Status reports how the last reload went and what is in force.
func (rc *RuntimeConfig) Status() RuntimeConfigStatus {
	rc.statusMu.Lock()
	defer rc.statusMu.Unlock()
	return rc.status
}

// Files are the runtime config files, in merge order.
func (rc *RuntimeConfig) Files() []string { return slices.Clone(rc.files) }

// Override returns the tenant's s3_sse keys as the files merge them, and
// whether any file sets one. The override applies only when its Type is set.
func (rc *RuntimeConfig) Override(tenantID string) (TenantOverride, bool) {
	t, ok := rc.current.Load().tenants[tenantID]
	if !ok {
		return TenantOverride{}, false
	}
	o := t.override
	o.CustomerPreviousKeyFiles = slices.Clone(o.CustomerPreviousKeyFiles)
	return o, true
}

// S3SSEType is the tenant's s3_sse_type, "" when no file sets it.
func (rc *RuntimeConfig) S3SSEType(tenantID string) string {
	return string(rc.override(tenantID).Type)
}

// S3SSEKMSKeyID is the tenant's s3_sse_kms_key_id.
func (rc *RuntimeConfig) S3SSEKMSKeyID(tenantID string) string {
	return rc.override(tenantID).KMSKeyID
}

// S3SSEKMSEncryptionContext is the tenant's s3_sse_kms_encryption_context
// as JSON text.
func (rc *RuntimeConfig) S3SSEKMSEncryptionContext(tenantID string) string {
	return string(rc.override(tenantID).KMSEncryptionContext)
}

// S3SSECustomerKeyFile is the tenant's s3_sse_customer_key_file.
func (rc *RuntimeConfig) S3SSECustomerKeyFile(tenantID string) string {
	return rc.override(tenantID).CustomerKeyFile
}

// S3SSECustomerPreviousKeyFiles is a copy of the tenant's
// s3_sse_customer_previous_key_files.
func (rc *RuntimeConfig) S3SSECustomerPreviousKeyFiles(tenantID string) []string {
	return slices.Clone(rc.override(tenantID).CustomerPreviousKeyFiles)
}

func (rc *RuntimeConfig) override(tenantID string) *TenantOverride {
	if t, ok := rc.current.Load().tenants[tenantID]; ok {
		return &t.override
	}
	return &TenantOverride{}
}

// encryption is the tenant's built override, nil when the sse block
// applies. It is the resolver's fast path: one map lookup on an immutable
// snapshot, no lock, no allocation.
func (rc *RuntimeConfig) encryption(tenantID string) *Encryption {
	return rc.current.Load().encryption[tenantID]
}

// runtimeSnapshot is one loaded config. It is never changed once published.
type runtimeSnapshot struct {
	tenants map[string]*tenantEntry
	// encryption holds the built overrides of the tenants with an
	// s3_sse_type, apart from tenants so that a resolve reads one map slot
	// and no entry: with 100,000 tenants, each memory access is a cache miss.
	encryption map[string]*Encryption
	// order lists the tenants as the files first name them, so that errors
	// and warnings come out in file order.
	order       []string
	withType    int
	keySums     map[string][sha256.Size]byte // SHA-256 of each key file read
	filesDigest [sha256.Size]byte
	hash        string
	loadedAt    time.Time
}

// tenantEntry is one tenant's merged override.
type tenantEntry struct {
	override TenantOverride
	// fileOf is, for each override key, the index in the file list of the
	// file that set it last; -1 when no file sets it.
	fileOf [numOverrideKeys]int16
	// enc is the built override, nil when s3_sse_type is not set.
	enc *Encryption
	// listedIn and listedAt are the file index and line where parsing last
	// found the tenant, to tell a tenant a file lists twice.
	listedIn int16
	listedAt int
}

// Reload reads the files now, as the reload loop does every period, and
// returns why the reload was rejected, if it was. A rejected reload is also
// logged at error level and leaves the last good config in force. Reloads
// are serialized; Reload is safe to call at any time, and is a way for a
// host to reload on a signal.
func (rc *RuntimeConfig) Reload() error {
	rc.reloadMu.Lock()
	defer rc.reloadMu.Unlock()

	start := rc.now()
	changed, err := rc.reload(start)
	rc.record(start, changed, err)
	rc.refreshFollowers()
	return err
}

// reload does the work of Reload, and reports whether it changed the config
// in force.
func (rc *RuntimeConfig) reload(now time.Time) (bool, error) {
	// Hashing the files as they stream by is what every period costs when
	// nothing changed; they are read whole only when a hash differs.
	sums, err := rc.hashFiles()
	if err != nil {
		return false, err
	}
	old := rc.current.Load()
	keys := newKeyFileReader()
	defer keys.clear()

	var (
		tenants  map[string]*tenantEntry
		order    []string
		digest   [sha256.Size]byte
		fresh    = true
		contents [][]byte
	)
	switch {
	case old != nil && slices.Equal(sums, rc.fileSums):
		if !keys.changed(old.keySums) {
			return false, nil
		}
		// Only key files changed: the overrides are those in force.
		tenants, order, digest, fresh = old.tenants, old.order, old.filesDigest, false
	case rc.rejectedErr != nil && slices.Equal(sums, rc.rejectedSums):
		// The same broken files as last time: no need to parse them again.
		return false, rc.rejectedErr
	default:
		// What was hashed may have changed again since: what is parsed is
		// hashed anew, so that the next period compares with it.
		contents, sums, err = rc.readFiles()
		if err != nil {
			return false, err
		}
		if err := rc.refuseEmptied(contents, old); err != nil {
			return false, err
		}
		tenants, order, err = rc.parse(contents)
		if err != nil {
			rc.rejectedSums, rc.rejectedErr = sums, err
			return false, err
		}
		digest = filesDigest(contents)
	}
	rc.rejectedSums, rc.rejectedErr = nil, nil

	snap, warnings, err := rc.build(tenants, order, fresh, old, keys)
	if err != nil {
		return false, err
	}
	snap.filesDigest = digest
	snap.hash = snap.computeHash()
	snap.loadedAt = now

	rc.current.Store(snap)
	rc.fileSums = sums
	if contents != nil {
		rc.fileHeld = rc.fileHeld[:0]
		for _, c := range contents {
			rc.fileHeld = append(rc.fileHeld, holdsYAML(c))
		}
	}
	rc.logWarnings(warnings)
	level.Info(rc.logger).Log("msg", "runtime config loaded", "files", strings.Join(rc.files, ","),
		"tenants_with_overrides", snap.withType, "hash", snap.hash)
	return true, nil
}

// refuseEmptied rejects a reload that finds empty (or holding comments
// only) a file which held a config: a file rewritten in place is empty for
// a moment, and taking that moment for "no overrides" would drop every
// tenant's encryption.
func (rc *RuntimeConfig) refuseEmptied(contents [][]byte, old *runtimeSnapshot) error {
	if old == nil {
		return nil
	}
	for i, c := range contents {
		if rc.fileHeld[i] && !holdsYAML(c) {
			return &fileError{rc.files[i], "runtime config file", errors.New("empty, but it held " +
				"a config: taken for a file being rewritten; write \"overrides: {}\" to remove " +
				"every override")}
		}
	}
	return nil
}

// holdsYAML reports whether data has a line that is neither blank nor a
// comment, which an empty YAML document has not.
func holdsYAML(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 && line[0] != '#' {
			return true
		}
	}
	return false
}

// hashFiles hashes every file's content through a small buffer, which the
// CPU caches hold: each byte crosses memory once, and nothing is kept.
func (rc *RuntimeConfig) hashFiles() ([]uint64, error) {
	if rc.chunk == nil {
		rc.chunk = make([]byte, 128<<10)
	}
	sums := make([]uint64, len(rc.files))
	for i, name := range rc.files {
		f, err := os.Open(name)
		if err != nil {
			return nil, &fileError{name, "read runtime config file", err}
		}
		var h maphash.Hash
		h.SetSeed(rc.seed)
		// Hiding the file's WriteTo makes the copy go through rc.chunk.
		_, err = io.CopyBuffer(&h, struct{ io.Reader }{f}, rc.chunk)
		f.Close()
		if err != nil {
			return nil, &fileError{name, "read runtime config file", err}
		}
		sums[i] = h.Sum64()
	}
	return sums, nil
}

// readFiles reads every file whole and hashes it as hashFiles does.
func (rc *RuntimeConfig) readFiles() ([][]byte, []uint64, error) {
	contents := make([][]byte, len(rc.files))
	sums := make([]uint64, len(rc.files))
	for i, name := range rc.files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, &fileError{name, "read runtime config file", err}
		}
		contents[i] = b
		sums[i] = maphash.Bytes(rc.seed, b)
	}
	return contents, sums, nil
}

func filesDigest(contents [][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, c := range contents {
		binary.BigEndian.PutUint64(n[:], uint64(len(c)))
		h.Write(n[:])
		h.Write(c)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// computeHash combines the files' digest with the key files' digests.
func (s *runtimeSnapshot) computeHash() string {
	h := sha256.New()
	h.Write(s.filesDigest[:])
	paths := make([]string, 0, len(s.keySums))
	for p := range s.keySums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var n [8]byte
	for _, p := range paths {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		sum := s.keySums[p]
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parse reads the overrides of every file and merges them in file order.
func (rc *RuntimeConfig) parse(contents [][]byte) (map[string]*tenantEntry, []string, error) {
	raws := make([]rawFile, len(contents))
	size := 0
	for i, data := range contents {
		raw, err := scanRuntimeConfig(data)
		if err != nil {
			return nil, nil, &fileError{rc.files[i], "runtime config file", err}
		}
		raws[i] = raw
		size = max(size, len(raw.tenants))
	}

	tenants := make(map[string]*tenantEntry, size)
	order := make([]string, 0, size)
	var errs []error
	for i, raw := range raws {
		file := rc.files[i]
		for _, t := range raw.tenants {
			e, ok := tenants[t.id]
			switch {
			case !ok:
				e = &tenantEntry{}
				for k := range e.fileOf {
					e.fileOf[k] = -1
				}
				tenants[t.id] = e
				order = append(order, t.id)
			case e.listedIn == int16(i):
				errs = append(errs, &ConfigError{File: file, Tenant: t.id, Key: "overrides",
					Value: t.id, Reason: fmt.Sprintf("line %d: the tenant is already listed at "+
						"line %d", t.line, e.listedAt), Err: ErrInvalidConfig})
				continue
			}
			e.listedIn, e.listedAt = int16(i), t.line
			errs = append(errs, e.merge(file, int16(i), t)...)
		}
	}
	if len(errs) > 0 {
		return nil, nil, joinErrors(errs)
	}
	return tenants, order, nil
}

// merge sets the keys the file writes for the tenant.
func (e *tenantEntry) merge(file string, fileIndex int16, t rawTenant) []error {
	var errs []error
	var seen [numOverrideKeys]int // line of each key in this file
	for _, k := range t.keys {
		idx, ok := overrideKeyIndex(k.name)
		if !ok {
			errs = append(errs, &ConfigError{File: file, Tenant: t.id, Key: k.name, Value: k.value,
				Reason: fmt.Sprintf("line %d: unknown override key; valid: %s", k.line,
					strings.Join(overrideKeyNames[:], ", ")),
				Err: ErrUnknownOverrideKey})
			continue
		}
		if seen[idx] != 0 {
			errs = append(errs, &ConfigError{File: file, Tenant: t.id, Key: k.name, Value: k.value,
				Reason: fmt.Sprintf("line %d: the key is already set at line %d", k.line, seen[idx]),
				Err:    ErrInvalidConfig})
			continue
		}
		seen[idx] = k.line
		if err := e.override.set(idx, k); err != nil {
			err.File, err.Tenant = file, t.id
			errs = append(errs, err)
			continue
		}
		e.fileOf[idx] = fileIndex
	}
	return errs
}

// build validates every tenant's override and builds its encryption,
// reusing the old snapshot's value for a tenant whose override and key
// files did not change. fresh says whether tenants were just parsed, so
// that their entries can go into the snapshot as they are; otherwise they
// belong to the snapshot in force and are copied.
func (rc *RuntimeConfig) build(tenants map[string]*tenantEntry, order []string, fresh bool,
	old *runtimeSnapshot, keys *keyFileReader) (*runtimeSnapshot, []string, error) {
	snap := &runtimeSnapshot{tenants: tenants, order: order,
		encryption: make(map[string]*Encryption, len(tenants))}
	if !fresh {
		snap.tenants = make(map[string]*tenantEntry, len(tenants))
	}

	// First the checks and the values that can be kept, in file order.
	var warnings []string
	var todo []*tenantEntry // entries whose value must be built
	var todoIDs []string
	for _, id := range order {
		t := tenants[id]
		if !fresh {
			c := *t
			t = &c
			snap.tenants[id] = t
		}
		t.enc = nil

		if t.override.Type == "" {
			warnings = append(warnings, fmt.Sprintf("tenant %q: %s sets %s but not "+
				"s3_sse_type, so the override does not apply and the tenant uses the sse block",
				id, strings.Join(rc.filesOf(t), ", "), strings.Join(t.setKeys(), ", ")))
			continue
		}
		snap.withType++
		if err := ValidateTenantID(id); err != nil {
			warnings = append(warnings, fmt.Sprintf("tenant %q: the override can never apply: %v",
				id, err))
		}
		for _, w := range t.override.settings(id, "").warnings() {
			warnings = append(warnings, fmt.Sprintf("tenant %q: %s", id, w))
		}
		if prev := old.reusable(id, t, keys); prev != nil {
			t.enc = prev
			continue
		}
		todo = append(todo, t)
		todoIDs = append(todoIDs, id)
	}

	// Then the values to build, which parse JSON and read key files: on
	// every core when there are many, as when every tenant changed.
	errs := make([]error, len(todo))
	rc.buildEach(len(todo), func(i int) {
		t, id := todo[i], todoIDs[i]
		enc, err := t.override.settings(id, rc.fileOf(t, typeKey)).build(keys.read)
		if err != nil {
			errs[i] = rc.attribute(err, t)
			return
		}
		t.enc = enc
	})
	if err := joinErrors(slices.DeleteFunc(errs, func(err error) bool { return err == nil })); err != nil {
		return nil, nil, err
	}

	for _, id := range order {
		if e := snap.tenants[id].enc; e != nil {
			snap.encryption[id] = e
		}
	}
	snap.keySums = keys.sums
	return snap, warnings, nil
}

// buildEach calls f for 0 to n-1, spread over the available cores when n is
// large enough to pay for it.
func (rc *RuntimeConfig) buildEach(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/512)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// attribute names in a build error the file that set the key it is about.
func (rc *RuntimeConfig) attribute(err error, t *tenantEntry) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		if idx, ok := overrideKeyIndex(ce.Key); ok {
			ce.File = rc.fileOf(t, idx)
		}
		if ce.File == "" {
			// A missing key, such as SSE-C's key file: the file that set the
			// type asked for it.
			ce.File = rc.fileOf(t, typeKey)
		}
	}
	return err
}

// reusable returns the tenant's encryption in s when its override, the
// files it comes from and the content of its key files are all unchanged.
func (s *runtimeSnapshot) reusable(id string, t *tenantEntry, keys *keyFileReader) *Encryption {
	if s == nil {
		return nil
	}
	prev, ok := s.tenants[id]
	if !ok || prev.enc == nil || prev.fileOf != t.fileOf || !prev.override.equal(&t.override) {
		return nil
	}
	for _, f := range t.override.keyFiles() {
		sum, err := keys.sum(f)
		if err != nil || sum != s.keySums[f] {
			return nil
		}
	}
	return prev.enc
}

func (rc *RuntimeConfig) fileOf(t *tenantEntry, key int) string {
	if i := t.fileOf[key]; i >= 0 {
		return rc.files[i]
	}
	return ""
}

// filesOf names the files that set any of the tenant's keys.
func (rc *RuntimeConfig) filesOf(t *tenantEntry) []string {
	var files []string
	for _, i := range t.fileOf {
		if i >= 0 && !slices.Contains(files, rc.files[i]) {
			files = append(files, rc.files[i])
		}
	}
	return files
}

// logWarnings logs the warnings not logged for an earlier config, so that
// each is logged once while it holds.
func (rc *RuntimeConfig) logWarnings(warnings []string) {
	next := make(map[string]struct{}, len(warnings))
	for _, w := range warnings {
		next[w] = struct{}{}
		if _, ok := rc.warned[w]; ok {
			continue
		}
		level.Warn(rc.logger).Log("msg", w)
	}
	rc.warned = next
}

// record updates the status and the metrics after a reload.
func (rc *RuntimeConfig) record(at time.Time, changed bool, err error) {
	snap := rc.current.Load()

	rc.statusMu.Lock()
	rc.status.LastReload = at
	rc.status.LastReloadSuccessful = err == nil
	rc.status.Err = err
	if err == nil {
		rc.status.LastSuccess = at
	}
	if snap != nil {
		rc.status.Hash = snap.hash
		rc.status.LoadedAt = snap.loadedAt
		rc.status.Tenants = snap.withType
	}
	rc.statusMu.Unlock()

	if err != nil {
		rc.logReloadError(err)
	}
	rc.metrics.record(at, changed, err, snap)
}

// fileError is a problem with a whole runtime config file, such as YAML
// that does not parse. It names the file for the log's file key.
type fileError struct {
	file string
	op   string // what was being done, such as "read runtime config file"
	err  error
}

func (e *fileError) Error() string { return e.op + " " + e.file + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

func (rc *RuntimeConfig) logReloadError(err error) {
	msg := "reject runtime config reload; the last good config stays in force"
	if rc.current.Load() == nil {
		msg = "cannot load the runtime config"
	}
	for _, e := range unjoin(err) {
		kv := []any{"msg", msg}
		var ce *ConfigError
		var fe *fileError
		switch {
		case errors.As(e, &ce):
			kv = append(kv, "file", ce.File, "tenant", ce.Tenant, "key", ce.Key, "value", ce.Value)
		case errors.As(e, &fe):
			kv = append(kv, "file", fe.file)
		}
		level.Error(rc.logger).Log(append(kv, "err", e)...)
	}
}

// follow makes each reload refresh the key files of a resolver's sse
// block. The RuntimeConfig holds it weakly, so a resolver that is no longer
// used is dropped rather than kept alive.
func (rc *RuntimeConfig) follow(d *defaultBlock) {
	rc.followMu.Lock()
	defer rc.followMu.Unlock()
	rc.followers = append(rc.followers, weak.Make(d))
}

func (rc *RuntimeConfig) refreshFollowers() {
	rc.followMu.Lock()
	live := rc.followers[:0]
	var blocks []*defaultBlock
	for _, w := range rc.followers {
		if d := w.Value(); d != nil {
			live = append(live, w)
			blocks = append(blocks, d)
		}
	}
	clear(rc.followers[len(live):])
	rc.followers = live
	rc.followMu.Unlock()

	for _, d := range blocks {
		d.refresh()
	}
}

// keyFileReader reads the SSE-C key files of one reload, each once, and
// hashes their contents to tell whether a key changed. SHA-256 reveals
// nothing of a key, so the hashes may outlive the reload; the bytes do not.
type keyFileReader struct {
	mu    sync.Mutex // builds run on several goroutines
	files map[string]keyFileRead
	sums  map[string][sha256.Size]byte
}

type keyFileRead struct {
	data []byte
	err  error
}

func newKeyFileReader() *keyFileReader {
	return &keyFileReader{files: map[string]keyFileRead{}, sums: map[string][sha256.Size]byte{}}
}

// read has os.ReadFile's signature, for settings.build.
func (k *keyFileReader) read(path string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r, ok := k.files[path]; ok {
		return r.data, r.err
	}
	b, err := os.ReadFile(path)
	k.files[path] = keyFileRead{b, err}
	if err == nil {
		k.sums[path] = sha256.Sum256(b)
	}
	return b, err
}

func (k *keyFileReader) sum(path string) ([sha256.Size]byte, error) {
	if _, err := k.read(path); err != nil {
		return [sha256.Size]byte{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sums[path], nil
}

// changed reads every key file of old and reports whether any differs or
// cannot be read.
func (k *keyFileReader) changed(old map[string][sha256.Size]byte) bool {
	for path, want := range old {
		if got, err := k.sum(path); err != nil || got != want {
			return true
		}
	}
	return false
}

// clear wipes the key bytes read, which are secrets, once the reload is done.
func (k *keyFileReader) clear() {
	for _, r := range k.files {
		clear(r.data)
	}
}

// runtimeMetrics are the gauges of a RuntimeConfig; nil means none.
type runtimeMetrics struct {
	successful  prometheus.Gauge
	successTime prometheus.Gauge
	hash        *prometheus.GaugeVec
	tenants     prometheus.Gauge
}

func newRuntimeMetrics(reg prometheus.Registerer) (*runtimeMetrics, error) {
	m := &runtimeMetrics{
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s3sse_runtime_config_last_reload_successful",
			Help: "Whether the last reload of the s3sse runtime config files succeeded (1) or " +
				"was rejected (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s3sse_runtime_config_last_reload_success_timestamp_seconds",
			Help: "When the s3sse runtime config files were last reloaded successfully.",
		}),
		hash: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "s3sse_runtime_config_hash",
			Help: "Hash of the s3sse runtime config in force, files and SSE-C key files; " +
				"the series with value 1 carries it.",
		}, []string{"sha256"}),
		tenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "s3sse_runtime_config_tenants_with_overrides",
			Help: "Tenants whose SSE override, an s3_sse_type, is in force.",
		}),
	}
	for _, c := range []prometheus.Collector{m.successful, m.successTime, m.hash, m.tenants} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register runtime config metrics: %w", err)
		}
	}
	return m, nil
}

func (m *runtimeMetrics) record(at time.Time, changed bool, err error, snap *runtimeSnapshot) {
	if m == nil {
		return
	}
	if err != nil {
		m.successful.Set(0)
		return
	}
	m.successful.Set(1)
	m.successTime.Set(float64(at.UnixNano()) / 1e9)
	if changed && snap != nil {
		m.hash.Reset()
		m.hash.WithLabelValues(snap.hash).Set(1)
		m.tenants.Set(float64(snap.withType))
	}
}

// joinErrors joins the errors of a rejected reload, at most
// maxReportedErrors of them.
func joinErrors(errs []error) error {
	if len(errs) > maxReportedErrors {
		more := len(errs) - maxReportedErrors
		errs = append(errs[:maxReportedErrors:maxReportedErrors],
			fmt.Errorf("and %d more problems not listed", more))
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// unjoin splits an error made by joinErrors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// rawFile is what a runtime config file says about SSE overrides: its
// tenants in file order, each with its s3_sse keys as written. Both readers
// below produce it, so that the rest of the loading cannot tell them apart.
type rawFile struct {
	tenants []rawTenant
}

type rawTenant struct {
	id   string
	line int
	keys []rawKey // keys that look like override keys, valid or not
}

type rawKey struct {
	name  string
	line  int
	value string // the scalar's text; empty for null
	// node is a value that is not a scalar, such as a context written as a
	// mapping. Only the yaml.v3 reader sets it; the plain reader leaves
	// such files to it.
	node *yaml.Node
}

// scanRuntimeConfig reads the overrides of a runtime config file. The plain
// reader handles the block style these files are written in about ten times
// faster than yaml.v3, which matters with 100,000 tenants; anything it does
// not recognize with certainty goes to yaml.v3. Both give the same result
// wherever the plain reader answers, which a fuzz test checks.
//
// TODO: a large file with lists or anchors anywhere goes through yaml.v3
// whole, about 2 s for 100,000 tenants; correct, and only slow.
func scanRuntimeConfig(data []byte) (rawFile, error) {
	if f, ok := scanPlainYAML(data); ok {
		return f, nil
	}
	return scanYAML(data)
}

// scanYAML reads the overrides with yaml.v3, anchors, aliases and merge
// keys included.
func scanYAML(data []byte) (rawFile, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return rawFile{}, err
	}
	if len(doc.Content) == 0 {
		return rawFile{}, nil
	}
	w := yamlWalker{pairs: map[*yaml.Node][]yamlPair{}}
	root := resolveAlias(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return rawFile{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return rawFile{}, fmt.Errorf("line %d: the top level must be a mapping", root.Line)
	}

	top, err := w.mappingPairs(root)
	if err != nil {
		return rawFile{}, err
	}
	var overrides *yaml.Node
	for _, p := range top {
		if p.key.Kind != yaml.ScalarNode || p.key.Value != "overrides" {
			continue
		}
		if overrides != nil {
			return rawFile{}, fmt.Errorf("line %d: overrides appears twice", p.key.Line)
		}
		overrides = resolveAlias(p.value)
	}
	if overrides == nil || overrides.Kind == yaml.ScalarNode && overrides.ShortTag() == "!!null" {
		return rawFile{}, nil
	}
	if overrides.Kind != yaml.MappingNode {
		return rawFile{}, fmt.Errorf("line %d: overrides must be a mapping of tenant IDs to "+
			"their limits", overrides.Line)
	}

	tenants, err := w.mappingPairs(overrides)
	if err != nil {
		return rawFile{}, err
	}
	var f rawFile
	for _, p := range tenants {
		if p.key.Kind != yaml.ScalarNode {
			return rawFile{}, fmt.Errorf("line %d: overrides: a tenant ID must be a string",
				p.key.Line)
		}
		t := rawTenant{id: p.key.Value, line: p.key.Line}
		limits := resolveAlias(p.value)
		switch {
		case limits.Kind == yaml.ScalarNode && limits.ShortTag() == "!!null":
		case limits.Kind == yaml.MappingNode:
			pairs, err := w.mappingPairs(limits)
			if err != nil {
				return rawFile{}, err
			}
			for _, l := range pairs {
				if l.key.Kind != yaml.ScalarNode || !looksLikeOverrideKey(l.key.Value) {
					continue
				}
				k := rawKey{name: l.key.Value, line: l.key.Line}
				v := resolveAlias(l.value)
				if v.Kind == yaml.ScalarNode {
					if v.ShortTag() != "!!null" {
						k.value = v.Value
					}
				} else {
					k.node = v
				}
				t.keys = append(t.keys, k)
			}
		default:
			return rawFile{}, fmt.Errorf("line %d: overrides.%s must be a mapping of the "+
				"tenant's limits", limits.Line, p.key.Value)
		}
		f.tenants = append(f.tenants, t)
	}
	return f, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

type yamlPair struct{ key, value *yaml.Node }

// yamlWalker expands merge keys, remembering each mapping it expanded so
// that a file merging one anchor many times costs no more than once.
type yamlWalker struct {
	pairs map[*yaml.Node][]yamlPair
}

// mappingPairs returns the key-value pairs of a mapping with merge keys
// (<<) expanded as YAML defines them: the keys the mapping writes, in
// order, then each merged key it does not write, the first merged mapping
// winning.
func (w yamlWalker) mappingPairs(m *yaml.Node) ([]yamlPair, error) {
	if p, ok := w.pairs[m]; ok {
		return p, nil
	}
	w.pairs[m] = nil // a mapping that merges itself adds nothing the second time

	var out []yamlPair
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		out = append(out, yamlPair{k, v})
	}
	if len(merges) > 0 {
		written := make(map[string]bool, len(out))
		for _, p := range out {
			written[p.key.Value] = true
		}
		for _, mv := range merges {
			mv = resolveAlias(mv)
			sources := []*yaml.Node{mv}
			if mv.Kind == yaml.SequenceNode {
				sources = mv.Content
			}
			for _, src := range sources {
				src = resolveAlias(src)
				if src.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: a merge key (<<) must name a mapping or a "+
						"list of mappings", src.Line)
				}
				merged, err := w.mappingPairs(src)
				if err != nil {
					return nil, err
				}
				for _, p := range merged {
					if !written[p.key.Value] {
						written[p.key.Value] = true
						out = append(out, p)
					}
				}
			}
		}
	}
	w.pairs[m] = out
	return out, nil
}

// looksLikeOverrideKey reports whether a tenant's key is meant as an SSE
// override key: it begins with s3_sse or s3sse in any case, with dashes
// taken for underscores. Such a key that is not an override key is a typo.
func looksLikeOverrideKey[T string | []byte](k T) bool {
	norm := func(c byte) byte {
		switch {
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		case c == '-':
			return '_'
		}
		return c
	}
	for _, prefix := range [...]string{"s3_sse", "s3sse"} {
		if len(k) < len(prefix) {
			continue
		}
		match := true
		for i := 0; i < len(prefix); i++ {
			if norm(k[i]) != prefix[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// scanPlainYAML reads the overrides of a file written in plain block style:
// printable ASCII, spaces for indentation, one "key: value" per line with
// plain or simply quoted scalars, comments. Anything else (lists, flow
// collections, anchors, tags, multi-line scalars, escapes, document
// markers, odd indentation) makes it answer false, and yaml.v3 reads the
// file instead. The strings it returns are copies: they do not keep the
// file's bytes alive.
func scanPlainYAML(data []byte) (rawFile, bool) {
	for _, c := range data {
		if (c < 0x20 && c != '\n') || c >= 0x7f {
			return rawFile{}, false
		}
	}

	var (
		f      rawFile
		levels []int // indentation of each open block mapping, outermost first
		// keys holds the key of each open level; keys[0] is the top-level key.
		keys          [][]byte
		lastHadValue  = true // whether the previous entry had a value (or there was none)
		lastSSEKey    bool   // whether the previous entry was an override key without a value
		seenOverrides bool
		tenant        = -1 // index in f.tenants of the tenant being read
		slab          []rawKey
	)
	text := data
	for lineNo := 1; len(text) > 0; lineNo++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		rest := line[indent:]
		if len(rest) == 0 || rest[0] == '#' {
			continue
		}
		e, ok := parsePlainEntry(rest)
		if !ok {
			return rawFile{}, false
		}

		switch {
		case len(levels) == 0:
			if indent != 0 {
				return rawFile{}, false
			}
			levels, keys = append(levels, 0), append(keys, nil)
		case indent > levels[len(levels)-1]:
			if lastHadValue || lastSSEKey {
				// A continuation line, or a nested value for an override key
				// that yaml.v3 must decode.
				return rawFile{}, false
			}
			levels, keys = append(levels, indent), append(keys, nil)
		default:
			for indent < levels[len(levels)-1] {
				levels, keys = levels[:len(levels)-1], keys[:len(keys)-1]
			}
			if indent != levels[len(levels)-1] {
				return rawFile{}, false
			}
		}
		depth := len(levels) - 1
		keys[depth] = e.key
		lastHadValue, lastSSEKey = e.hasValue, false
		inOverrides := depth > 0 && string(keys[0]) == "overrides"

		switch {
		case depth == 0 && string(e.key) == "overrides":
			if seenOverrides || e.hasValue && !e.null {
				return rawFile{}, false
			}
			seenOverrides = true
		case depth == 1 && inOverrides:
			if e.hasValue && !e.null {
				return rawFile{}, false
			}
			f.tenants = append(f.tenants, rawTenant{id: string(e.key), line: lineNo})
			tenant = len(f.tenants) - 1
		case depth == 2 && inOverrides && looksLikeOverrideKey(e.key):
			// Tenants' keys share arrays of 1,024: an array each would cost
			// an allocation per tenant, 100,000 of them in a large file.
			// slab holds the current tenant's keys, in the free end of one.
			t := &f.tenants[tenant]
			if len(t.keys) == 0 {
				if cap(slab)-len(slab) < numOverrideKeys {
					slab = make([]rawKey, 0, 1024)
				}
				slab = slab[len(slab):]
			}
			slab = append(slab, rawKey{name: overrideKeyName(e.key), line: lineNo,
				value: string(e.value)})
			t.keys = slab[:len(slab):len(slab)]
			lastSSEKey = !e.hasValue
		}
	}
	return f, true
}

// overrideKeyName returns the key as a string, without a copy when it is
// one of the override keys.
func overrideKeyName(k []byte) string {
	for _, n := range overrideKeyNames {
		if string(k) == n {
			return n
		}
	}
	return string(k)
}

// plainEntry is one "key: value" line of the plain reader. Its slices point
// into the file, or into a copy where a quote was unescaped.
type plainEntry struct {
	key      []byte
	value    []byte // empty for null
	hasValue bool
	null     bool
}

// parsePlainEntry reads a line, without its indentation, as a key and an
// optional scalar value. It answers false for anything but the plain forms
// scanPlainYAML accepts.
func parsePlainEntry(s []byte) (plainEntry, bool) {
	var e plainEntry
	var rest []byte
	switch s[0] {
	case '"', '\'':
		v, n, ok := parseQuoted(s)
		if !ok {
			return e, false
		}
		e.key, rest = v, s[n:]
	default:
		if !isAlnum(s[0]) && s[0] != '_' {
			return e, false
		}
		i := 1
		for i < len(s) && s[i] != ':' {
			c := s[i]
			if !isAlnum(c) && c != '_' && c != '-' && c != '.' && c != '/' {
				return e, false
			}
			i++
		}
		e.key, rest = s[:i], s[i:]
	}
	// YAML allows a key on one line of at most 1024 characters.
	if len(rest) == 0 || rest[0] != ':' || len(s)-len(rest) > 1000 {
		return e, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] != ' ' {
		return e, false
	}
	rest = bytes.TrimLeft(rest, " ")
	if len(rest) == 0 || rest[0] == '#' {
		return e, true
	}

	e.hasValue = true
	switch c := rest[0]; {
	case c == '"' || c == '\'':
		v, n, ok := parseQuoted(rest)
		if !ok {
			return e, false
		}
		if after := bytes.TrimLeft(rest[n:], " "); len(after) > 0 &&
			(after[0] != '#' || len(after) == len(rest[n:])) {
			return e, false
		}
		e.value = v
		return e, true
	case strings.IndexByte("-?:,[]{}#&*!|>%@`", c) >= 0:
		if c != '-' || len(rest) < 2 || rest[1] < '0' || rest[1] > '9' {
			return e, false
		}
	}
	v := rest
	if i := bytes.Index(v, []byte(" #")); i >= 0 {
		v = v[:i]
	}
	v = bytes.TrimRight(v, " ")
	if bytes.Contains(v, []byte(": ")) || v[len(v)-1] == ':' {
		return e, false
	}
	switch string(v) {
	case "~", "null", "Null", "NULL":
		e.null = true
	default:
		e.value = v
	}
	return e, true
}

// parseQuoted reads a quoted scalar at the start of s and returns its
// value and length. Double-quoted scalars with escapes, and scalars that
// do not close on the line, are left to yaml.v3.
func parseQuoted(s []byte) ([]byte, int, bool) {
	if s[0] == '"' {
		end := bytes.IndexByte(s[1:], '"')
		if end < 0 || bytes.IndexByte(s[1:1+end], '\\') >= 0 {
			return nil, 0, false
		}
		return s[1 : 1+end], end + 2, true
	}
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' { // '' is a quote inside the scalar
			i++
			continue
		}
		return bytes.ReplaceAll(s[1:i], []byte("''"), []byte("'")), i + 1, true
	}
	return nil, 0, false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
