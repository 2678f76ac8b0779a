package s3sse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchTenantCounts are the runtime config sizes BENCHMARKS.md reports.
var benchTenantCounts = []int{1, 10_000, 100_000}

// benchTenants returns n tenant IDs and their overrides, each SSE-KMS under
// its own key with its own context, the costliest common override to build.
// version changes every key id, so that two versions differ in every tenant.
func benchTenants(n int, version string) ([]string, map[string]TenantOverride) {
	ids := make([]string, n)
	overrides := make(map[string]TenantOverride, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("tenant-%06d", i)
		overrides[ids[i]] = TenantOverride{
			Type:                 TypeSSEKMS,
			KMSKeyID:             fmt.Sprintf("arn:aws:kms:eu-west-1:111122223333:key/%s-%06d", version, i),
			KMSEncryptionContext: EncryptionContext(fmt.Sprintf(`{"tenant":"%s"}`, ids[i])),
		}
	}
	return ids, overrides
}

// benchRuntimeFile renders overrides as a runtime config file in the block
// style of generated files, one unrelated limit per tenant included.
func benchRuntimeFile(ids []string, overrides map[string]TenantOverride) string {
	var b strings.Builder
	b.Grow(len(ids) * 200)
	b.WriteString("overrides:\n")
	for _, id := range ids {
		o := overrides[id]
		fmt.Fprintf(&b, "  %s:\n    ingestion_rate: 100000\n    s3_sse_type: %s\n"+
			"    s3_sse_kms_key_id: %s\n    s3_sse_kms_encryption_context: '%s'\n",
			id, o.Type, o.KMSKeyID, o.KMSEncryptionContext)
	}
	return b.String()
}

// benchRuntimeConfig loads a RuntimeConfig holding the overrides, without a
// reload goroutine.
func benchRuntimeConfig(b *testing.B, content string) (*RuntimeConfig, string) {
	b.Helper()
	file := filepath.Join(b.TempDir(), "runtime.yaml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	rc, err := NewRuntimeConfig(context.Background(), RuntimeConfigConfig{Files: []string{file}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Stop)
	return rc, file
}

// BenchmarkResolve resolves tenants that all have an override, from each
// kind of provider:
//
//   - runtime-config: the library's RuntimeConfig;
//   - plain-map: a Go map from tenant to its built value, the floor any
//     design pays, for comparison;
//   - host: a host's limits type with Cortex's three methods;
//   - host-provider-only: those three calls alone, nothing resolved, to
//     subtract from host for what the resolver itself adds;
//   - build-per-call: the value built on every call, as Cortex does.
//
// Each runs two ways: one-tenant resolves the same tenant every time, so
// the CPU caches hold everything; all-tenants takes every tenant in turn,
// so that with 100,000 tenants nearly every memory access misses them and
// the figure is memory latency more than code.
func BenchmarkResolve(b *testing.B) {
	for _, n := range benchTenantCounts {
		ids, overrides := benchTenants(n, "v1")
		host := cortexLimits{newHostLimits(overrides)}
		var rc *RuntimeConfig

		kinds := []struct {
			name    string
			resolve func(b *testing.B) func(tenantID string) bool
		}{
			{"runtime-config", func(b *testing.B) func(string) bool {
				if rc == nil {
					rc, _ = benchRuntimeConfig(b, benchRuntimeFile(ids, overrides))
				}
				return benchResolver(b, Config{Type: TypeSSES3}, rc, ids)
			}},
			{"plain-map", func(b *testing.B) func(string) bool {
				m := make(map[string]*Encryption, n)
				for _, id := range ids {
					e, err := overrides[id].settings(id, "").build(nil)
					if err != nil {
						b.Fatal(err)
					}
					m[strings.Clone(id)] = e
				}
				return func(id string) bool { return m[id] != nil }
			}},
			{"host", func(b *testing.B) func(string) bool {
				return benchResolver(b, Config{Type: TypeSSES3}, host, ids)
			}},
			{"host-provider-only", func(b *testing.B) func(string) bool {
				var p Provider = host // called as the resolver calls it
				return func(id string) bool {
					return p.S3SSEType(id) != "" && p.S3SSEKMSKeyID(id) != "" &&
						p.S3SSEKMSEncryptionContext(id) != ""
				}
			}},
		}
		for _, kind := range kinds {
			for _, pattern := range []string{"one-tenant", "all-tenants"} {
				b.Run(fmt.Sprintf("%s/tenants=%d/%s", kind.name, n, pattern), func(b *testing.B) {
					resolve := kind.resolve(b)
					order := ids
					if pattern == "one-tenant" {
						order = ids[len(ids)/2 : len(ids)/2+1]
					}
					benchLoop(b, resolve, order)
				})
			}
		}
	}

	b.Run("build-per-call/tenants=1/one-tenant", func(b *testing.B) {
		ids, overrides := benchTenants(1, "v1")
		o := overrides[ids[0]]
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := o.settings(ids[0], "").build(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchResolver returns a resolver over p, warmed up: every tenant
// resolved twice, so that a host provider's values are built and its cache
// has settled.
func benchResolver(b *testing.B, defaults Config, p Provider, ids []string) func(string) bool {
	b.Helper()
	r, err := NewResolver(defaults, p, nil)
	if err != nil {
		b.Fatal(err)
	}
	for pass := 0; pass < 2; pass++ {
		for _, id := range ids {
			if e, err := r.Encryption(id); err != nil || e.Type() != TypeSSEKMS {
				b.Fatalf("tenant %q: got %v, %v; want SSE-KMS", id, e, err)
			}
		}
	}
	return func(id string) bool {
		e, err := r.Encryption(id)
		return err == nil && e != nil
	}
}

// benchLoop measures resolve over the tenants of order, in turn.
func benchLoop(b *testing.B, resolve func(string) bool, order []string) {
	b.ReportAllocs()
	b.ResetTimer()
	for i, j := 0, 0; i < b.N; i++ {
		if !resolve(order[j]) {
			b.Fatalf("tenant %q did not resolve", order[j])
		}
		if j++; j == len(order) {
			j = 0
		}
	}
}

// BenchmarkReload reloads a 100,000-tenant runtime config:
//
//   - unchanged: the files are read and hashed, nothing else;
//   - changed-one-tenant: one tenant's key id differs, the usual edit;
//   - changed-every-tenant: every tenant's key id differs, so every
//     override is validated and built again.
func BenchmarkReload(b *testing.B) {
	const n = 100_000
	ids, v1 := benchTenants(n, "v1")
	_, v2 := benchTenants(n, "v2")
	one := make(map[string]TenantOverride, n)
	for id, o := range v1 {
		one[id] = o
	}
	one[ids[n/2]] = v2[ids[n/2]]

	base := benchRuntimeFile(ids, v1)
	versions := map[string][2]string{
		"unchanged":            {base, base},
		"changed-one-tenant":   {base, benchRuntimeFile(ids, one)},
		"changed-every-tenant": {base, benchRuntimeFile(ids, v2)},
	}
	for _, name := range []string{"unchanged", "changed-one-tenant", "changed-every-tenant"} {
		b.Run(fmt.Sprintf("%s/tenants=%d", name, n), func(b *testing.B) {
			contents := versions[name]
			rc, file := benchRuntimeConfig(b, contents[0])
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := os.WriteFile(file, []byte(contents[(i+1)%2]), 0o600); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := rc.Reload(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := rc.Status().Tenants; got != n {
				b.Fatalf("tenants with overrides: got %d, want %d", got, n)
			}
		})
	}
}

// BenchmarkScanRuntimeConfig reads the overrides of a 10,000-tenant file
// with each reader, in MB/s: the plain reader, for files in the block style
// generated files use, and yaml.v3, for every other file.
func BenchmarkScanRuntimeConfig(b *testing.B) {
	ids, overrides := benchTenants(10_000, "v1")
	data := []byte(benchRuntimeFile(ids, overrides))
	readers := []struct {
		name string
		scan func([]byte) (rawFile, bool)
	}{
		{"plain", scanPlainYAML},
		{"yaml.v3", func(d []byte) (rawFile, bool) {
			f, err := scanYAML(d)
			return f, err == nil
		}},
	}
	for _, r := range readers {
		b.Run(r.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if f, ok := r.scan(data); !ok || len(f.tenants) != len(ids) {
					b.Fatalf("got %d tenants, ok %v; want %d", len(f.tenants), ok, len(ids))
				}
			}
		})
	}
}
