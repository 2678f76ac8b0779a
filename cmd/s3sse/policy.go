package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/go-kit/log"

	"github.com/s3sse/s3sse"
)

// policy is the encryption every tenant must have now: the sse block for
// most, an override for some. It is what check prints and what audit and
// reencrypt compare objects with.
type policy struct {
	// resolver is the library's, over the library's RuntimeConfig: tenants
	// are resolved exactly as a host resolves them. Nil when the files
	// have problems.
	resolver  *s3sse.Resolver
	overrides tenantOverrides

	defaults *entry
	tenants  []*entry // tenants with an override, sorted by ID
	warnings []string
	problems []error
}

// entry is the effective encryption of the sse block or of one tenant's
// override, as check reports it.
type entry struct {
	tenant    string // empty for the sse block
	enc       *s3sse.Encryption
	keyFile   string
	prevFiles []string
	sources   []string
	problems  []error
}

// loadPolicy validates the sse block and every tenant's override and
// returns them with every problem found: each tenant is resolved on its
// own, so that one invalid tenant hides none of the others.
func loadPolicy(opts *options) *policy {
	p := &policy{}
	overrides, fileErrs := loadRuntimeConfig(opts.runtimeConfigFiles())
	p.overrides = overrides

	sse := opts.componentConfig.SSE
	// The library logs its warnings; the tool prints them.
	var mu sync.Mutex
	warn := log.LoggerFunc(func(kv ...any) error {
		var lvl, msg string
		for i := 0; i+1 < len(kv); i += 2 {
			switch kv[i] {
			case "level":
				lvl = fmt.Sprint(kv[i+1])
			case "msg":
				msg = fmt.Sprint(kv[i+1])
			}
		}
		if lvl == "warn" {
			mu.Lock()
			p.warnings = append(p.warnings, msg)
			mu.Unlock()
		}
		return nil
	})

	source := "sse block (flags)"
	if opts.configFile != "" {
		source = "sse block (" + opts.configFile + " and flags)"
	}
	p.defaults = &entry{
		keyFile:   sse.CustomerKeyFile,
		prevFiles: sse.CustomerPreviousKeyFiles,
		sources:   []string{source},
	}
	p.defaults.enc, p.defaults.problems = validateAll(fieldsOfConfig(sse),
		func(f sseFields) (*s3sse.Encryption, error) {
			c := sse // keeps the flag prefix, so errors name the flags
			f.applyToConfig(&c)
			r, err := s3sse.NewResolver(c, nil, nil)
			if err != nil {
				return nil, err
			}
			return r.Default(), nil
		})

	if len(opts.fileProblems) > 0 {
		p.defaults.problems = append(opts.fileProblems, p.defaults.problems...)
		p.defaults.enc = nil
	}

	// Warnings come from the library, which logs them when it builds a
	// resolver over a valid block.
	defaults := s3sse.Config{}
	if p.defaults.enc != nil {
		defaults = sse
	}
	if _, err := s3sse.NewResolver(defaults, overrides, warn); err != nil {
		// The block was valid a moment ago; only a key file that changed in
		// between gets here.
		p.problems = append(p.problems, err)
		return p
	}

	// A problem the files have for a tenant (an unknown key, a value of the
	// wrong kind) makes the tenant invalid, as it makes a reload fail.
	var general []error
	byTenant := map[string][]error{}
	for _, err := range fileErrs {
		var ce *s3sse.ConfigError
		if errors.As(err, &ce) && ce.Tenant != "" {
			byTenant[ce.Tenant] = append(byTenant[ce.Tenant], err)
		} else {
			general = append(general, err)
		}
	}

	p.problems = append(general, p.defaults.problems...)
	for _, tenant := range overrides.tenants() {
		e := p.resolveTenant(tenant, warn)
		if fp := byTenant[tenant]; len(fp) > 0 {
			e.problems = append(fp, e.problems...)
			e.enc = nil
		}
		delete(byTenant, tenant)
		p.tenants = append(p.tenants, e)
		p.problems = append(p.problems, e.problems...)
	}
	// Tenants whose override has no type, and so does not apply, can still
	// break a reload.
	rest := make([]string, 0, len(byTenant))
	for tenant := range byTenant {
		rest = append(rest, tenant)
	}
	sort.Strings(rest)
	for _, tenant := range rest {
		p.problems = append(p.problems, byTenant[tenant]...)
	}

	p.loadAsHost(opts, defaults)

	for tenant, o := range overrides {
		if o.override.Type == "" && len(o.fileOf) > 0 {
			p.warnings = append(p.warnings, fmt.Sprintf("tenant %q: %s sets %s but not "+
				"s3_sse_type, so the override does not apply and the tenant uses the sse block",
				tenant, strings.Join(o.files(), ", "), strings.Join(o.keys(), ", ")))
		}
	}
	sort.Strings(p.warnings)
	return p
}

// loadAsHost loads the runtime config files with the library's
// RuntimeConfig, as a host does, and builds the resolver over it. The tool's
// own pass found every problem it could, each tenant on its own; this one
// makes sure that nothing passes that a host would refuse, and adds what
// the library finds that the tool's pass did not.
func (p *policy) loadAsHost(opts *options, defaults s3sse.Config) {
	rc, err := s3sse.NewRuntimeConfig(context.Background(),
		s3sse.RuntimeConfigConfig{Files: opts.runtimeConfigFiles()}, nil, nil)
	if err != nil {
		p.addHostProblems(err)
		return
	}
	resolver, err := s3sse.NewResolver(defaults, rc, nil)
	if err != nil {
		p.addHostProblems(err)
		return
	}
	if len(p.problems) == 0 {
		p.resolver = resolver
	}
}

// addHostProblems adds the library's problems that the tool's pass did not
// report already.
func (p *policy) addHostProblems(err error) {
	// The same key of the same tenant in the same file is the same
	// problem, however each pass quotes the value.
	type id struct{ file, tenant, key string }
	seen := map[id]bool{}
	for _, e := range p.problems {
		var ce *s3sse.ConfigError
		if errors.As(e, &ce) {
			seen[id{ce.File, ce.Tenant, ce.Key}] = true
		}
	}
	for _, e := range splitErrors(err) {
		var ce *s3sse.ConfigError
		if errors.As(e, &ce) {
			if !seen[id{ce.File, ce.Tenant, ce.Key}] {
				p.problems = append(p.problems, ce)
			}
			continue
		}
		if len(p.problems) == 0 { // else most likely the same problem in other words
			p.problems = append(p.problems, e)
		}
	}
}

// splitErrors returns the errors joined in err, looking through wrapping.
func splitErrors(err error) []error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			var out []error
			for _, one := range j.Unwrap() {
				out = append(out, splitErrors(one)...)
			}
			return out
		}
	}
	return []error{err}
}

func (p *policy) resolveTenant(tenant string, warn log.Logger) *entry {
	o := p.overrides[tenant]
	e := &entry{
		tenant:    tenant,
		keyFile:   o.override.CustomerKeyFile,
		prevFiles: o.override.CustomerPreviousKeyFiles,
		sources:   o.files(),
	}
	if err := s3sse.ValidateTenantID(tenant); err != nil {
		// As the library does: such an override is harmless, since no
		// object of the tenant can exist, but it is certainly a mistake.
		p.warnings = append(p.warnings, fmt.Sprintf("tenant %q: the override can never apply: %v",
			tenant, err))
	}

	enc, problems := validateAll(fieldsOfOverride(o.override),
		func(f sseFields) (*s3sse.Encryption, error) {
			one := tenantOverrides{tenant: {override: f.override(), fileOf: o.fileOf}}
			r, err := s3sse.NewResolver(s3sse.Config{}, one, nil)
			if err != nil {
				return nil, err
			}
			return r.Encryption(tenant)
		})
	for _, err := range problems {
		// The resolver knows the tenant but not the file the value is in.
		var ce *s3sse.ConfigError
		if errors.As(err, &ce) && ce.File == "" {
			ce.File = p.overrides.file(tenant, ce.Key)
		}
	}
	e.problems = problems
	e.enc = enc

	if enc != nil {
		// Resolving it once more, with a logger, gets the library's
		// warnings for the tenant, such as a key id its type ignores.
		one := tenantOverrides{tenant: o}
		if r, err := s3sse.NewResolver(s3sse.Config{}, one, warn); err == nil {
			_, _ = r.Encryption(tenant)
		}
	}
	return e
}

// sseFields are the values of an sse block or of an override, so that
// one validation loop serves both.
type sseFields struct {
	typ       s3sse.SSEType
	keyID     string
	context   s3sse.EncryptionContext
	keyFile   string
	prevFiles []string
}

func fieldsOfConfig(c s3sse.Config) sseFields {
	return sseFields{c.Type, c.KMSKeyID, c.KMSEncryptionContext, c.CustomerKeyFile,
		c.CustomerPreviousKeyFiles}
}

func fieldsOfOverride(o s3sse.TenantOverride) sseFields {
	return sseFields{o.Type, o.KMSKeyID, o.KMSEncryptionContext, o.CustomerKeyFile,
		o.CustomerPreviousKeyFiles}
}

func (f sseFields) applyToConfig(c *s3sse.Config) {
	c.Type, c.KMSKeyID, c.KMSEncryptionContext = f.typ, f.keyID, f.context
	c.CustomerKeyFile, c.CustomerPreviousKeyFiles = f.keyFile, f.prevFiles
}

func (f sseFields) override() s3sse.TenantOverride {
	return s3sse.TenantOverride{Type: f.typ, KMSKeyID: f.keyID, KMSEncryptionContext: f.context,
		CustomerKeyFile: f.keyFile, CustomerPreviousKeyFiles: f.prevFiles}
}

// validateAll runs the library's validation over f until it passes,
// setting aside each value it refuses, so that every invalid value is
// reported and not only the first. The encryption is returned only when
// nothing was refused.
func validateAll(f sseFields,
	build func(sseFields) (*s3sse.Encryption, error)) (*s3sse.Encryption, []error) {
	var problems []error
	// Each round sets one value aside, and there are five.
	for range 8 {
		enc, err := build(f)
		if err == nil {
			if len(problems) > 0 {
				return nil, problems
			}
			return enc, nil
		}
		var ce *s3sse.ConfigError
		if !errors.As(err, &ce) {
			return nil, append(problems, err)
		}
		problems = append(problems, ce) // without the resolver's wrapping
		switch key := ce.Key; {
		case strings.HasSuffix(key, "_previous_key_files"):
			i := slices.Index(f.prevFiles, ce.Value)
			if i < 0 {
				return nil, problems
			}
			f.prevFiles = slices.Delete(slices.Clone(f.prevFiles), i, i+1)
		case strings.HasSuffix(key, "_key_file"):
			if f.keyFile == "" && f.typ != s3sse.TypeSSEC {
				return nil, problems
			}
			f.keyFile = ""
			if f.typ == s3sse.TypeSSEC {
				f.typ = s3sse.TypeSSES3
			}
		case strings.HasSuffix(key, "_encryption_context"):
			if f.context == "" {
				return nil, problems
			}
			f.context = ""
		case strings.HasSuffix(key, "type"):
			// Check the other values as the type they most likely go with.
			switch {
			case f.keyFile != "":
				f.typ = s3sse.TypeSSEC
			case f.keyID != "" || f.context != "":
				f.typ = s3sse.TypeSSEKMS
			default:
				f.typ = s3sse.TypeSSES3
			}
		default:
			return nil, problems
		}
	}
	return nil, problems
}

// files are the files that set the override's keys, in merge order.
func (o *tenantOverride) files() []string { return slices.Clone(o.order) }

// keys are the override keys the files set, in the order the library
// names them.
func (o *tenantOverride) keys() []string {
	var keys []string
	for _, k := range overrideKeys {
		if _, ok := o.fileOf[k]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}
