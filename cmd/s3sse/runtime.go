package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
)

// tenantOverrides are the SSE overrides of the runtime config files, by
// tenant. It satisfies s3sse.Provider and s3sse.CustomerKeyProvider, so a
// Resolver reads them as a host's limits.
//
// TODO: use the library's runtime config provider once it exists, so that
// the tool and the hosts read the files with one implementation.
type tenantOverrides map[string]*tenantOverride

// tenantOverride is one tenant's merged override and, for each key, the
// file it was last set in.
type tenantOverride struct {
	override s3sse.TenantOverride
	fileOf   map[string]string
	order    []string // the files that set a key, in merge order
}

var (
	_ s3sse.Provider            = tenantOverrides(nil)
	_ s3sse.CustomerKeyProvider = tenantOverrides(nil)
)

func (m tenantOverrides) get(tenant string) s3sse.TenantOverride {
	if o, ok := m[tenant]; ok {
		return o.override
	}
	return s3sse.TenantOverride{}
}

func (m tenantOverrides) S3SSEType(tenant string) string { return string(m.get(tenant).Type) }
func (m tenantOverrides) S3SSEKMSKeyID(tenant string) string {
	return m.get(tenant).KMSKeyID
}
func (m tenantOverrides) S3SSEKMSEncryptionContext(tenant string) string {
	return string(m.get(tenant).KMSEncryptionContext)
}
func (m tenantOverrides) S3SSECustomerKeyFile(tenant string) string {
	return m.get(tenant).CustomerKeyFile
}
func (m tenantOverrides) S3SSECustomerPreviousKeyFiles(tenant string) []string {
	return m.get(tenant).CustomerPreviousKeyFiles
}

// tenants returns the tenants whose override sets s3_sse_type, sorted:
// the others use the sse block.
func (m tenantOverrides) tenants() []string {
	var ids []string
	for id, o := range m {
		if o.override.Type != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// file names the file that set the tenant's key, or the one that set its
// type when the key is not an override key.
func (m tenantOverrides) file(tenant, key string) string {
	o, ok := m[tenant]
	if !ok {
		return ""
	}
	if f, ok := o.fileOf[key]; ok {
		return f
	}
	return o.fileOf["s3_sse_type"]
}

// overrideKeys are the runtime config keys of an SSE override.
var overrideKeys = yamlKeys(reflect.TypeFor[s3sse.TenantOverride]())

// loadRuntimeConfig reads the SSE overrides of the files, later files
// overriding earlier ones key by key, and returns every problem it finds
// rather than the first: an unreadable file, a tenant that is not a
// mapping, an s3_sse key that does not exist or a value of the wrong kind.
// Values are not validated here; that is the resolver's job.
func loadRuntimeConfig(files []string) (tenantOverrides, []error) {
	m := tenantOverrides{}
	var errs []error
	for _, file := range files {
		errs = append(errs, m.loadFile(file)...)
	}
	return m, errs
}

func (m tenantOverrides) loadFile(file string) []error {
	text, err := os.ReadFile(file)
	if err != nil {
		return []error{fmt.Errorf("read runtime config: %w", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return []error{fmt.Errorf("runtime config file %s: %w", file, err)}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("runtime config file %s: line %d: expected a mapping at the "+
			"top level", file, root.Line)}
	}
	overrides := mappingValue(root, "overrides")
	if overrides == nil || overrides.Tag == "!!null" {
		return nil
	}
	if overrides.Kind != yaml.MappingNode {
		return []error{fmt.Errorf("runtime config file %s: line %d: overrides must be a mapping "+
			"of tenant IDs", file, overrides.Line)}
	}

	var errs []error
	for i := 0; i+1 < len(overrides.Content); i += 2 {
		tenant, limits := overrides.Content[i].Value, overrides.Content[i+1]
		if limits.Tag == "!!null" {
			continue
		}
		if limits.Kind != yaml.MappingNode {
			errs = append(errs, &s3sse.ConfigError{File: file, Tenant: tenant, Key: "overrides",
				Value: limits.Value, Reason: fmt.Sprintf("line %d: a tenant's overrides must be "+
					"a mapping", limits.Line), Err: s3sse.ErrInvalidConfig})
			continue
		}
		errs = append(errs, m.loadTenant(file, tenant, limits)...)
	}
	return errs
}

// loadTenant merges the tenant's s3_sse keys into its override. The
// tenant's other limits belong to the host and are left alone.
func (m tenantOverrides) loadTenant(file, tenant string, limits *yaml.Node) []error {
	sse := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	var errs []error
	for i := 0; i+1 < len(limits.Content); i += 2 {
		key := limits.Content[i]
		if !strings.HasPrefix(key.Value, "s3_sse") {
			continue
		}
		if !slices.Contains(overrideKeys, key.Value) {
			errs = append(errs, &s3sse.ConfigError{File: file, Tenant: tenant, Key: key.Value,
				Value: nodeText(limits.Content[i+1]),
				Reason: fmt.Sprintf("line %d: unknown override key; valid: %s", key.Line,
					strings.Join(overrideKeys, ", ")),
				Err: s3sse.ErrUnknownOverrideKey})
			continue
		}
		sse.Content = append(sse.Content, key, limits.Content[i+1])
	}
	if len(sse.Content) == 0 {
		return errs
	}

	o, ok := m[tenant]
	if !ok {
		o = &tenantOverride{fileOf: map[string]string{}}
		m[tenant] = o
	}
	// Decoding key by key keeps one bad value from hiding the others.
	for i := 0; i+1 < len(sse.Content); i += 2 {
		one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map",
			Content: sse.Content[i : i+2 : i+2]}
		key, value := sse.Content[i], sse.Content[i+1]
		if err := one.Decode(&o.override); err != nil {
			errs = append(errs, &s3sse.ConfigError{File: file, Tenant: tenant, Key: key.Value,
				Value: nodeText(value), Reason: yamlReason(err), Err: s3sse.ErrInvalidConfig})
			continue
		}
		o.fileOf[key.Value] = file
		if !slices.Contains(o.order, file) {
			o.order = append(o.order, file)
		}
	}
	return errs
}

// nodeText is a YAML value as an operator wrote it, on one line.
func nodeText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " "))
}

func yamlReason(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
