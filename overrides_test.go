package s3sse

import (
	"encoding/base64"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// hostLimits is a host's limits type as Cortex has one: per-tenant values
// behind a lock, read through the Provider methods. It also gives SSE-C
// key files.
type hostLimits struct {
	mu      sync.RWMutex
	tenants map[string]TenantOverride
}

var (
	_ Provider            = (*hostLimits)(nil)
	_ CustomerKeyProvider = (*hostLimits)(nil)
)

func newHostLimits(tenants map[string]TenantOverride) *hostLimits {
	h := &hostLimits{tenants: map[string]TenantOverride{}}
	for id, o := range tenants {
		h.tenants[id] = o
	}
	return h
}

func (h *hostLimits) get(tenantID string) TenantOverride {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.tenants[tenantID]
}

func (h *hostLimits) set(tenantID string, o TenantOverride) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tenants[tenantID] = o
}

func (h *hostLimits) S3SSEType(id string) string     { return string(h.get(id).Type) }
func (h *hostLimits) S3SSEKMSKeyID(id string) string { return h.get(id).KMSKeyID }
func (h *hostLimits) S3SSEKMSEncryptionContext(id string) string {
	return string(h.get(id).KMSEncryptionContext)
}
func (h *hostLimits) S3SSECustomerKeyFile(id string) string { return h.get(id).CustomerKeyFile }
func (h *hostLimits) S3SSECustomerPreviousKeyFiles(id string) []string {
	return h.get(id).CustomerPreviousKeyFiles
}

// cortexLimits has only Cortex's three methods, as Cortex's Overrides has.
type cortexLimits struct{ h *hostLimits }

func (c cortexLimits) S3SSEType(id string) string     { return c.h.S3SSEType(id) }
func (c cortexLimits) S3SSEKMSKeyID(id string) string { return c.h.S3SSEKMSKeyID(id) }
func (c cortexLimits) S3SSEKMSEncryptionContext(id string) string {
	return c.h.S3SSEKMSEncryptionContext(id)
}

// eachProvider runs f with the tenants' overrides given by the library's
// RuntimeConfig, from a file, and by a host's limits type.
func eachProvider(t *testing.T, tenants map[string]TenantOverride, f func(t *testing.T, p Provider)) {
	t.Helper()
	file, err := yaml.Marshal(map[string]any{"overrides": tenants})
	require.NoError(t, err)
	t.Run("RuntimeConfig", func(t *testing.T) {
		f(t, newTestRuntimeConfig(t, nil, runtimeFile(t, string(file))))
	})
	t.Run("host limits", func(t *testing.T) {
		f(t, newHostLimits(tenants))
	})
}

func TestResolverOverrideReplacesTheBlock(t *testing.T) {
	defaults := Config{Type: TypeSSEKMS, KMSKeyID: "default-key", KMSEncryptionContext: `{"env":"prod"}`}
	tenants := map[string]TenantOverride{
		"own-key":     {Type: TypeDSSEKMS, KMSKeyID: "key-a", KMSEncryptionContext: `{"tenant":"a"}`},
		"managed-key": {Type: TypeSSEKMS},
		"sse-s3":      {Type: TypeSSES3},
		"no-type":     {KMSKeyID: "key-without-type", KMSEncryptionContext: `{"tenant":"x"}`},
	}
	tests := []struct {
		tenant  string
		typ     SSEType
		keyID   string            // the block's key id is never merged into an override
		context map[string]string // nor its context
		source  string            // part of Source
	}{
		{"own-key", TypeDSSEKMS, "key-a", map[string]string{"tenant": "a"}, `tenant "own-key"`},
		{"managed-key", TypeSSEKMS, "", nil, `tenant "managed-key"`},
		{"sse-s3", TypeSSES3, "", nil, `tenant "sse-s3"`},
		{"no-type", TypeSSEKMS, "default-key", map[string]string{"env": "prod"}, "sse block"},
		{"absent", TypeSSEKMS, "default-key", map[string]string{"env": "prod"}, "sse block"},
	}
	eachProvider(t, tenants, func(t *testing.T, p Provider) {
		r, err := NewResolver(defaults, p, nil)
		require.NoError(t, err)
		for _, tt := range tests {
			e := requireEncryption(t, r, tt.tenant, tt.typ, tt.keyID)
			require.Equal(t, tt.context, e.Context(), "tenant %q: context", tt.tenant)
			require.Contains(t, e.Source(), tt.source, "tenant %q", tt.tenant)

			sse, err := r.Resolve(tt.tenant)
			require.NoError(t, err)
			require.Equal(t, headersOf(t, e.ServerSide()), headersOf(t, sse), "tenant %q", tt.tenant)
		}
	})
}

func TestResolverHostValueErrors(t *testing.T) {
	tests := []struct {
		name     string         // what is wrong
		override TenantOverride // the host's value
		sentinel error
		key      string // YAML key the error names
		value    string // value the error names
	}{
		{"unknown type", TenantOverride{Type: "SSE-KMX"}, ErrUnknownSSEType, "s3_sse_type", "SSE-KMX"},
		{"context not strings", TenantOverride{Type: TypeSSEKMS, KMSEncryptionContext: `{"a":1}`},
			ErrInvalidEncryptionContext, "s3_sse_kms_encryption_context", `{"a":1}`},
		{"reserved context key", TenantOverride{Type: TypeSSEKMS, KMSEncryptionContext: `{"aws:x":"1"}`},
			ErrInvalidEncryptionContext, "s3_sse_kms_encryption_context", `{"aws:x":"1"}`},
		{"SSE-C without a key file", TenantOverride{Type: TypeSSEC}, ErrInvalidCustomerKey,
			"s3_sse_customer_key_file", ""},
		{"SSE-C key file missing", TenantOverride{Type: TypeSSEC, CustomerKeyFile: "/nonexistent/key"},
			ErrInvalidCustomerKey, "s3_sse_customer_key_file", "/nonexistent/key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			h := newHostLimits(map[string]TenantOverride{"tenant-1": tt.override, "tenant-2": tt.override})
			r, err := NewResolver(Config{Type: TypeSSES3}, h, logs)
			require.NoError(t, err)

			for i := 0; i < 50; i++ {
				for _, tenant := range []string{"tenant-1", "tenant-2"} {
					e, err := r.Encryption(tenant)
					require.Nil(t, e, "tenant %q: no fall back to the sse block", tenant)
					require.ErrorIs(t, err, tt.sentinel, "tenant %q", tenant)
					var ce *ConfigError
					require.ErrorAs(t, err, &ce)
					require.Equal(t, tenant, ce.Tenant, "the error names the tenant asking")
					require.Equal(t, tt.key, ce.Key)
					require.Equal(t, tt.value, ce.Value)
					require.Contains(t, err.Error(), fmt.Sprintf("tenant %q", tenant))

					_, err = r.Resolve(tenant)
					require.ErrorIs(t, err, tt.sentinel)
				}
			}
			require.Len(t, logs.lines("level=error", "key="+tt.key), 1,
				"one log line per distinct bad value, not per call; logs:\n%s", logs)
		})
	}
}

func TestResolverHostValuesChange(t *testing.T) {
	h := newHostLimits(map[string]TenantOverride{"tenant-a": {Type: TypeSSEKMS, KMSKeyID: "key-1"}})
	r, err := NewResolver(Config{}, cortexLimits{h}, nil)
	require.NoError(t, err)
	// Resolving many times settles the tenant into the cache's lock-free
	// map, where a change must be seen too.
	settle := func(keyID string) *Encryption {
		t.Helper()
		var e *Encryption
		for i := 0; i < 100; i++ {
			e = requireEncryption(t, r, "tenant-a", TypeSSEKMS, keyID)
		}
		return e
	}
	first := settle("key-1")

	h.set("tenant-a", TenantOverride{Type: TypeSSEKMS, KMSKeyID: "key-2"})
	settle("key-2")
	h.set("tenant-a", TenantOverride{Type: "nonsense"})
	for i := 0; i < 100; i++ {
		_, err = r.Encryption("tenant-a")
		require.ErrorIs(t, err, ErrUnknownSSEType, "a bad value is an error, not the last good one")
	}
	h.set("tenant-a", TenantOverride{Type: TypeSSEKMS, KMSKeyID: "key-1"})
	again := settle("key-1")
	require.Equal(t, first, again)
	same := requireEncryption(t, r, "tenant-a", TypeSSEKMS, "key-1")
	require.Same(t, again, same, "an unchanged value is not built again")

	h.set("tenant-b", TenantOverride{Type: TypeSSEKMS, KMSKeyID: "key-1"})
	other := requireEncryption(t, r, "tenant-b", TypeSSEKMS, "key-1")
	require.Equal(t, `override of tenant "tenant-b"`, other.Source())
	require.Equal(t, 3, r.cache.values.len(), "key-1, key-2 and the bad type, each built once")
}

func TestResolverHostWithoutCustomerKeys(t *testing.T) {
	keyFile := keyFileOf(t, newKey(t))
	h := newHostLimits(map[string]TenantOverride{"tenant-a": {Type: TypeSSEC, CustomerKeyFile: keyFile}})
	r, err := NewResolver(Config{}, cortexLimits{h}, nil)
	require.NoError(t, err)
	_, err = r.Encryption("tenant-a")
	require.ErrorIs(t, err, ErrInvalidCustomerKey,
		"a provider without CustomerKeyProvider cannot name a key file, so SSE-C cannot apply")
}

func TestResolverHostCacheIsBounded(t *testing.T) {
	h := newHostLimits(nil)
	for i := 0; i < 10; i++ {
		h.set(fmt.Sprintf("tenant-%d", i), TenantOverride{Type: TypeSSEKMS, KMSKeyID: fmt.Sprintf("key-%d", i)})
	}
	r, err := NewResolverWithOptions(Config{}, h, &ResolverOptions{CacheSize: 3})
	require.NoError(t, err)
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			requireEncryption(t, r, fmt.Sprintf("tenant-%d", i), TypeSSEKMS, fmt.Sprintf("key-%d", i))
			require.LessOrEqual(t, r.cache.values.len(), 3, "values after tenant-%d", i)
			require.LessOrEqual(t, r.cache.tenants.len(), 3, "tenants after tenant-%d", i)
		}
	}
}

func TestResolverHostKeyFilesAreReadAgain(t *testing.T) {
	oldKey, next := newKey(t), newKey(t)
	keyFile := keyFileOf(t, oldKey)
	previous := keyFileOf(t, newKey(t))
	h := newHostLimits(map[string]TenantOverride{"tenant-a": {Type: TypeSSEC, CustomerKeyFile: keyFile,
		CustomerPreviousKeyFiles: []string{previous}}})
	clock := newTestClock()
	logs := &logBuffer{}
	r, err := NewResolverWithOptions(Config{}, h, &ResolverOptions{Logger: logs,
		KeyFileRefresh: time.Minute, now: clock.Now})
	require.NoError(t, err)
	keyMD5 := func() string {
		t.Helper()
		e := requireEncryption(t, r, "tenant-a", TypeSSEC, "")
		require.Len(t, e.readKeys, 2, "the current key and the previous one")
		return e.CustomerKeyMD5()
	}
	require.Equal(t, md5b64(oldKey), keyMD5())

	rewrite(t, keyFile, base64.StdEncoding.EncodeToString(next))
	clock.advance(59 * time.Second)
	require.Equal(t, md5b64(oldKey), keyMD5(), "within the refresh period the key in force stays")
	clock.advance(time.Second)
	require.Equal(t, md5b64(next), keyMD5(), "after it, the key file is read again")

	require.NoError(t, os.Remove(keyFile))
	for i := 0; i < 3; i++ {
		clock.advance(time.Minute)
		require.Equal(t, md5b64(next), keyMD5(), "a key file gone keeps the last good key")
	}
	require.Len(t, logs.lines("level=error", "previous key stays in force", "key=s3_sse_customer_key_file"),
		1, "logs:\n%s", logs)
	requireNoSecret(t, logs.String(), oldKey)
	requireNoSecret(t, logs.String(), next)
}

func TestResolverDefaultBlockKeyFilesAreReadAgain(t *testing.T) {
	oldKey, next := newKey(t), newKey(t)
	keyFile := keyFileOf(t, oldKey)
	clock := newTestClock()
	for _, p := range []Provider{nil, newHostLimits(nil)} {
		rewrite(t, keyFile, base64.StdEncoding.EncodeToString(oldKey))
		r, err := NewResolverWithOptions(Config{Type: TypeSSEC, CustomerKeyFile: keyFile}, p,
			&ResolverOptions{KeyFileRefresh: time.Minute, now: clock.Now})
		require.NoError(t, err)
		require.Equal(t, md5b64(oldKey), r.Default().CustomerKeyMD5())

		rewrite(t, keyFile, base64.StdEncoding.EncodeToString(next))
		require.Equal(t, md5b64(oldKey), r.Default().CustomerKeyMD5(), "provider %T", p)
		clock.advance(time.Minute)
		e := requireEncryption(t, r, "any", TypeSSEC, "")
		require.Equal(t, md5b64(next), e.CustomerKeyMD5(), "provider %T", p)
	}
}

func TestResolverDoesNotAllocate(t *testing.T) {
	tenants := map[string]TenantOverride{
		"kms": {Type: TypeSSEKMS, KMSKeyID: "key", KMSEncryptionContext: `{"tenant":"kms"}`},
		"s3":  {Type: TypeSSES3},
	}
	eachProvider(t, tenants, func(t *testing.T, p Provider) {
		r, err := NewResolver(Config{Type: TypeSSES3}, p, nil)
		require.NoError(t, err)
		for _, tenant := range []string{"kms", "s3", "absent"} {
			_, err := r.Resolve(tenant) // builds the host's value on first sight
			require.NoError(t, err)
			allocs := testing.AllocsPerRun(100, func() { _, _ = r.Resolve(tenant) })
			require.Zero(t, allocs, "tenant %q: allocations per resolve", tenant)
		}
	})
}

func TestResolverHostValuesChangeWhileResolving(t *testing.T) {
	h := newHostLimits(nil)
	const tenants = 50
	for i := 0; i < tenants; i++ {
		h.set(fmt.Sprintf("tenant-%d", i), TenantOverride{Type: TypeSSEKMS, KMSKeyID: "key-0"})
	}
	r, err := NewResolverWithOptions(Config{}, h, &ResolverOptions{CacheSize: 16})
	require.NoError(t, err)

	done := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				tenant := fmt.Sprintf("tenant-%d", i%tenants)
				e, err := r.Encryption(tenant)
				if err != nil {
					errs <- err
					return
				}
				if id := e.KMSKeyID(); id != "key-0" && id != "key-1" && id != "key-2" {
					errs <- fmt.Errorf("tenant %q resolved to key id %q", tenant, id)
					return
				}
				if want := (settings{tenant: tenant}).source(); e.Source() != want {
					errs <- fmt.Errorf("tenant %q: source %q, want %q", tenant, e.Source(), want)
					return
				}
			}
		}()
	}
	for round := 0; round < 300; round++ {
		h.set(fmt.Sprintf("tenant-%d", round%tenants),
			TenantOverride{Type: TypeSSEKMS, KMSKeyID: fmt.Sprintf("key-%d", round%3)})
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := 0; i < tenants; i++ {
		tenant := fmt.Sprintf("tenant-%d", i)
		requireEncryption(t, r, tenant, TypeSSEKMS, h.S3SSEKMSKeyID(tenant))
	}
}
