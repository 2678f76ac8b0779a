package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-kit/log"
	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// The demo's tenants, one per way a tenant's encryption is decided.
const (
	tenantDefault = "alpha"   // no override: each component's sse block
	tenantSSES3   = "bravo"   // override: SSE-S3
	tenantKMS     = "charlie" // override: SSE-KMS, own key and context; moves key
	tenantBroken  = "delta"   // override added with a mistake, then fixed
)

// demoKMSKeys are the keys of the KMS the demo starts: the platform's
// default key, and the two keys tenant charlie uses one after the other.
var demoKMSKeys = []string{"platform-key", "charlie-key-1", "charlie-key-2"}

const (
	// demoReloadPeriod is how often the demo's runtime config is reread:
	// short, so that the walkthrough does not wait.
	demoReloadPeriod = time.Second
	// reloadWait bounds the wait for a reload to pick up an edit.
	reloadWait = 30 * time.Second
	// cleanupTimeout bounds the cleanup, which runs even after Ctrl-C.
	cleanupTimeout = 30 * time.Second
)

// demoFlags are the flags of -demo mode.
type demoFlags struct {
	enabled bool
	kmsKeys csvValue
}

func (d *demoFlags) registerFlags(f *flag.FlagSet) {
	f.BoolVar(&d.enabled, "demo", false,
		"Run the walkthrough. Without an S3 endpoint (-<component>.s3.endpoint flags, or "+
			s3test.EnvEndpoint+") it starts a local MinIO with a KMS, and stops it at the end.")
	f.Var(&d.kmsKeys, "demo.kms-keys",
		"With -demo and an S3 endpoint of your own: three KMS key ids its KMS holds, "+
			"comma-separated: the default key, the key tenant charlie starts on and the key it "+
			"moves to. Default: "+s3test.EnvKMSKeys+".")
}

// csvValue is a flag.Value holding a comma-separated list.
type csvValue []string

func (v *csvValue) String() string { return strings.Join(*v, ",") }

func (v *csvValue) Set(s string) error {
	*v = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	return nil
}

// demoStage names a point of the walkthrough, for demoHook.
type demoStage string

const (
	stageStarted  demoStage = "started"  // server up, files written, storage wired
	stageUploaded demoStage = "uploaded" // step 1 done
)

// demoHook, when set by tests, runs at each stage; an error it returns
// fails the demo there, so that tests can check the cleanup of every path.
var demoHook func(demoStage, *demo) error

// demo is one run of the walkthrough.
type demo struct {
	out    io.Writer
	logger log.Logger

	dir         string // the demo's files; removed at the end
	configFile  string
	runtimeFile string
	keys        []string // default key, charlie's first key, charlie's second key

	server  *s3test.Server // nil when an endpoint was given
	st      *storage
	rows    []demoRow
	written []writtenObject
	// createdBuckets are buckets the demo made on an endpoint it was given,
	// to remove at the end; a server the demo started goes whole.
	createdBuckets map[*componentStorage]bool
}

// demoRow is one line of the table: an object and what the server reports.
type demoRow struct {
	step       int
	component  string
	tenant     string
	key        string
	configured string // "sse block" or "override"
	stored     s3sse.StoredEncryption
}

type writtenObject struct {
	comp   *componentStorage
	tenant string
	name   string
	body   string
}

// connection is how the demo reaches S3 when it writes the config file:
// the server it started, or S3SSE_S3_*. Empty when the flags give it.
type connection struct {
	endpoint  string
	insecure  bool
	region    string
	accessKey string
	secretKey Secret
	caFile    string
	skipTLS   bool
}

// runDemo runs the walkthrough. args, cfg and set are the command line as
// parsed, cfg without a config file.
func runDemo(ctx context.Context, args []string, cfg *Config, cl *commandLine,
	set map[string]bool, out io.Writer, logger log.Logger) (err error) {
	for _, name := range []string{"config.file", "runtime-config.file", "print-config"} {
		if set[name] {
			return fmt.Errorf("-demo writes its own configuration and runtime config files; "+
				"drop -%s", name)
		}
	}

	d := &demo{out: out, logger: logger, createdBuckets: map[*componentStorage]bool{}}
	var cleanups []func() error
	defer func() {
		switch {
		case err != nil && ctx.Err() != nil:
			// Say what stopped the demo, not only what the stop broke.
			err = fmt.Errorf("%w; %v", context.Cause(ctx), err)
			d.say("\nThe demo was interrupted: %v\nCleaning up.", err)
		case err != nil:
			d.say("\nThe demo failed: %v\nCleaning up.", err)
		}
		// Run even after Ctrl-C: the context is cancelled, the cleanup is not.
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				d.say("cleanup: %v", cerr)
				err = errors.Join(err, cerr)
			}
		}
	}()

	d.dir, err = os.MkdirTemp("", "s3sse-demo-")
	if err != nil {
		return fmt.Errorf("create demo dir: %w", err)
	}
	cleanups = append(cleanups, func() error {
		if err := os.RemoveAll(d.dir); err != nil {
			return fmt.Errorf("remove %s: %w", d.dir, err)
		}
		d.say("Removed %s.", d.dir)
		return nil
	})
	d.configFile = filepath.Join(d.dir, "config.yaml")
	d.runtimeFile = filepath.Join(d.dir, "runtime.yaml")

	d.say("s3sse demo: three storage components, one runtime config, four tenants.\n")
	conn, err := d.connect(ctx, cfg, cl, &cleanups)
	if err != nil {
		return err
	}

	if err := d.writeFiles(conn); err != nil {
		return err
	}
	// The host's own start-up: flags, then the file, then the flags given
	// explicitly again, so that they win.
	full, _, _, _, err := parseArgs(append([]string{"-config.file=" + d.configFile}, args...),
		io.Discard)
	if err != nil {
		return err
	}
	if err := full.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := d.showConfig(full); err != nil {
		return err
	}

	d.st, err = newStorage(ctx, full, prometheus.NewRegistry(), d.logger)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() error { d.st.Stop(); return nil })
	if d.server == nil {
		cleanups = append(cleanups, func() error { return d.removeWritten() })
	}
	if err := d.ensureBuckets(ctx); err != nil {
		return err
	}
	if err := d.hook(stageStarted); err != nil {
		return err
	}

	return d.walkthrough(ctx)
}

// showConfig prints the blocks_storage section of the configuration in
// force, as the host's /config endpoint would: the other two sections
// differ only in bucket and sse block, which the table shows.
func (d *demo) showConfig(cfg *Config) error {
	var dump strings.Builder
	enc := yaml.NewEncoder(&dump)
	enc.SetIndent(2)
	err := enc.Encode(map[string]*StorageConfig{blocksStorage.yamlKey: &cfg.BlocksStorage})
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	d.say("\nConfig file %s, and runtime config file %s, reread every %v.",
		d.configFile, filepath.Base(d.runtimeFile), cfg.RuntimeConfig.ReloadPeriod)
	d.say("Its blocks_storage section as the host dumps it (-print-config shows all; the secret " +
		"is masked):\n")
	d.sayIndented(dump.String())
	return nil
}

func (d *demo) hook(stage demoStage) error {
	if demoHook == nil {
		return nil
	}
	return demoHook(stage, d)
}

// connect decides where the demo's S3 is: the endpoints the flags name,
// S3SSE_S3_ENDPOINT, or a MinIO it starts. It also settles the KMS keys.
func (d *demo) connect(ctx context.Context, cfg *Config, cl *commandLine,
	cleanups *[]func() error) (connection, error) {
	var given, missing []string
	for _, comp := range components {
		if cfg.storage(comp).S3.Endpoint != "" {
			given = append(given, comp.flagPrefix+"s3.endpoint")
		} else {
			missing = append(missing, comp.flagPrefix+"s3.endpoint")
		}
	}
	keys := []string(cl.demo.kmsKeys)
	if len(keys) == 0 {
		var fromEnv csvValue
		_ = fromEnv.Set(os.Getenv(s3test.EnvKMSKeys))
		keys = fromEnv
	}

	switch {
	case len(given) > 0:
		if len(missing) > 0 {
			return connection{}, fmt.Errorf("-%s is set, so the demo uses your S3 endpoints; "+
				"set -%s too", given[0], strings.Join(missing, " and -"))
		}
		if err := d.setKeys(keys); err != nil {
			return connection{}, err
		}
		d.say("Using the S3 endpoints given by flags (%s); starting nothing.",
			cfg.BlocksStorage.S3.Endpoint)
		return connection{}, nil

	case os.Getenv(s3test.EnvEndpoint) != "":
		conn, err := connectionFromEnv()
		if err != nil {
			return connection{}, err
		}
		if err := d.setKeys(keys); err != nil {
			return connection{}, err
		}
		d.say("Using the S3 endpoint %s from %s; starting nothing.",
			os.Getenv(s3test.EnvEndpoint), s3test.EnvEndpoint)
		return conn, nil
	}

	start := time.Now()
	srv, err := s3test.Launch(ctx, s3test.Options{KMSKeys: demoKMSKeys})
	if err != nil {
		return connection{}, fmt.Errorf("start MinIO: %w", err)
	}
	d.server = srv
	*cleanups = append(*cleanups, func() error {
		if err := srv.Close(); err != nil {
			return fmt.Errorf("stop MinIO: %w", err)
		}
		d.say("Stopped MinIO.")
		return nil
	})
	d.keys = demoKMSKeys

	caFile := filepath.Join(d.dir, "ca.crt")
	if err := os.WriteFile(caFile, srv.CACertPEM(), 0o644); err != nil {
		return connection{}, fmt.Errorf("write CA file: %w", err)
	}
	access, secret := srv.Credentials()
	d.say("Started %s at %s in %v: TLS with a certificate from its own CA, and a KMS "+
		"(a KES stand-in) holding the keys %s.", srv.Source(), srv.URL(),
		time.Since(start).Round(time.Millisecond), strings.Join(srv.KMSKeys(), ", "))
	return connection{
		endpoint:  srv.Endpoint(),
		insecure:  !srv.Secure(),
		region:    srv.Region(),
		accessKey: access,
		secretKey: NewSecret(secret),
		caFile:    caFile,
	}, nil
}

func (d *demo) setKeys(keys []string) error {
	if len(keys) < 3 {
		return fmt.Errorf("with an S3 endpoint of your own, the demo needs three KMS key ids "+
			"its KMS holds (the default key, then two for tenant charlie): set -demo.kms-keys "+
			"or %s; got %d (%s)", s3test.EnvKMSKeys, len(keys), strings.Join(keys, ","))
	}
	d.keys = keys[:3]
	return nil
}

// connectionFromEnv reads the S3SSE_S3_* variables the test harness uses
// for an existing endpoint.
func connectionFromEnv() (connection, error) {
	raw := os.Getenv(s3test.EnvEndpoint)
	scheme, host, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") || host == "" {
		return connection{}, fmt.Errorf("%s=%q: want http://host:port or https://host:port",
			s3test.EnvEndpoint, raw)
	}
	conn := connection{
		endpoint:  host,
		insecure:  scheme == "http",
		region:    os.Getenv(s3test.EnvRegion),
		accessKey: os.Getenv(s3test.EnvAccessKey),
		secretKey: NewSecret(os.Getenv(s3test.EnvSecretKey)),
		caFile:    os.Getenv(s3test.EnvCAFile),
	}
	if v := os.Getenv(s3test.EnvInsecure); v != "" {
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return connection{}, fmt.Errorf("%s=%q: want 1 or 0", s3test.EnvInsecure, v)
		}
		conn.skipTLS = skip
	}
	if conn.accessKey == "" || !conn.secretKey.IsSet() {
		return connection{}, fmt.Errorf("%s is set: %s and %s must be set too",
			s3test.EnvEndpoint, s3test.EnvAccessKey, s3test.EnvSecretKey)
	}
	return conn, nil
}

// writeFiles writes the config file and the first runtime config file.
func (d *demo) writeFiles(conn connection) error {
	if err := os.WriteFile(d.configFile, []byte(d.configYAML(conn)), 0o600); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	return d.writeRuntimeConfig(d.keys[1], deltaAbsent)
}

// configYAML is the demo's config file. The connection keys are left out
// when the flags give them.
func (d *demo) configYAML(conn connection) string {
	sections := []struct {
		comp   component
		bucket string
		sse    string
	}{
		{blocksStorage, "s3sse-demo-blocks",
			"    # Tenants without an override: SSE-KMS under the platform's key.\n" +
				"    sse:\n      type: SSE-KMS\n      kms_key_id: " + d.keys[0] + "\n"},
		{rulerStorage, "s3sse-demo-ruler",
			"    # Tenants without an override: SSE-S3.\n" +
				"    sse:\n      type: SSE-S3\n"},
		{alertmanagerStorage, "s3sse-demo-alertmanager",
			"    # No sse block: tenants without an override send no SSE header, so\n" +
				"    # the bucket's default encryption applies (none on this server).\n"},
	}

	var b strings.Builder
	b.WriteString("# The demo's configuration: three storage components, each with its S3\n" +
		"# block and its default SSE, sharing one runtime config of per-tenant overrides.\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "%s:\n  backend: s3\n  s3:\n", s.comp.yamlKey)
		if conn.endpoint != "" {
			fmt.Fprintf(&b, "    endpoint: %s\n", yamlString(conn.endpoint))
		}
		fmt.Fprintf(&b, "    bucket_name: %s\n", s.bucket)
		if conn.endpoint != "" {
			if conn.region != "" {
				fmt.Fprintf(&b, "    region: %s\n", yamlString(conn.region))
			}
			fmt.Fprintf(&b, "    access_key_id: %s\n", strconv.Quote(conn.accessKey))
			fmt.Fprintf(&b, "    secret_access_key: %s\n", strconv.Quote(conn.secretKey.Reveal()))
			if conn.insecure {
				b.WriteString("    insecure: true\n")
			}
			if conn.caFile != "" || conn.skipTLS {
				b.WriteString("    http:\n")
				if conn.caFile != "" {
					fmt.Fprintf(&b, "      tls_ca_path: %s\n", yamlString(conn.caFile))
				}
				if conn.skipTLS {
					b.WriteString("      insecure_skip_verify: true\n")
				}
			}
		}
		b.WriteString(s.sse)
	}
	file := yamlString(d.runtimeFile)
	if strings.Contains(d.runtimeFile, ",") {
		// The string form is a comma-separated list of files; a list keeps
		// a comma in a temporary directory's name from splitting the path.
		file = "[" + file + "]"
	}
	fmt.Fprintf(&b, "runtime_config:\n  file: %s\n  period: %s\n", file, demoReloadPeriod)
	return b.String()
}

// yamlString writes s as a YAML scalar: as it is when it is plainly safe,
// quoted otherwise, so that a path or a secret with YAML's special
// characters reads back unchanged.
func yamlString(s string) string {
	for _, r := range s {
		safe := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("/._-:", r)
		if !safe {
			return strconv.Quote(s)
		}
	}
	if s == "" || strings.HasSuffix(s, ":") {
		return strconv.Quote(s)
	}
	return s
}

// The states of tenant delta's override in the runtime config.
const (
	deltaAbsent = iota
	deltaBroken
	deltaFixed
)

// runtimeYAML is the runtime config file with charlie under charlieKey
// and delta's override as given.
func (d *demo) runtimeYAML(charlieKey string, delta int) string {
	var b strings.Builder
	b.WriteString(`# Per-tenant overrides, shared by every component and reread every second.
# The other keys are the host's own limits: s3sse ignores them.
overrides:
  ` + tenantSSES3 + `:
    ingestion_rate: 50000
    s3_sse_type: SSE-S3
  ` + tenantKMS + `:
    ingestion_rate: 100000
    s3_sse_type: SSE-KMS
    s3_sse_kms_key_id: ` + charlieKey + `
    s3_sse_kms_encryption_context: '{"tenant":"charlie","env":"demo"}'
`)
	b.WriteString(deltaYAML(delta))
	return b.String()
}

// deltaYAML is tenant delta's section of the runtime config.
func deltaYAML(delta int) string {
	if delta == deltaAbsent {
		return ""
	}
	shard := `7`
	if delta == deltaFixed {
		shard = `"7"`
	}
	return `  ` + tenantBroken + `:
    s3_sse_type: SSE-KMS
    s3_sse_kms_encryption_context: '{"tenant":"delta","shard":` + shard + `}'
`
}

// writeRuntimeConfig replaces the runtime config file in one rename, as a
// config management tool would, so that a reload never reads half a file.
func (d *demo) writeRuntimeConfig(charlieKey string, delta int) error {
	tmp := d.runtimeFile + ".new"
	if err := os.WriteFile(tmp, []byte(d.runtimeYAML(charlieKey, delta)), 0o644); err != nil {
		return fmt.Errorf("write runtime config: %w", err)
	}
	if err := os.Rename(tmp, d.runtimeFile); err != nil {
		return fmt.Errorf("write runtime config: %w", err)
	}
	return nil
}

// ensureBuckets creates the components' buckets where they are missing.
func (d *demo) ensureBuckets(ctx context.Context) error {
	for _, c := range d.st.components {
		client, name := c.bucket.Client(), c.bucket.Name()
		exists, err := client.BucketExists(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: check bucket %s: %w", c.yamlKey, name, err)
		}
		if exists {
			continue
		}
		region := ""
		if d.server != nil {
			region = d.server.Region()
		}
		if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: region}); err != nil {
			return fmt.Errorf("%s: create bucket %s: %w", c.yamlKey, name, err)
		}
		d.createdBuckets[c] = true
	}
	return nil
}

// removeWritten deletes what the demo wrote to an endpoint it was given:
// its objects, and the buckets it created.
func (d *demo) removeWritten() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()

	var errs []error
	for _, w := range d.written {
		t, err := w.comp.bucket.Tenant(w.tenant)
		if err == nil {
			err = t.Delete(ctx, w.name)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for c := range d.createdBuckets {
		if err := c.bucket.Client().RemoveBucket(ctx, c.bucket.Name()); err != nil {
			errs = append(errs, fmt.Errorf("remove bucket %s: %w", c.bucket.Name(), err))
		}
	}
	if len(errs) == 0 {
		d.say("Deleted the %d objects the demo wrote, and the %d buckets it created.",
			len(d.written), len(d.createdBuckets))
	}
	return errors.Join(errs...)
}

// walkthrough is the demo proper: four steps, the table, the read-back.
func (d *demo) walkthrough(ctx context.Context) error {
	blocks, _ := d.st.component(blocksStorage.name)
	d.say("\nStep 1. Every component writes an object for tenants %s, %s and %s, under the "+
		"runtime config as it starts:\n", tenantDefault, tenantSSES3, tenantKMS)
	d.sayIndented(d.runtimeYAML(d.keys[1], deltaAbsent))
	objects := map[string]string{
		blocksStorage.name:       "block-1/meta.json",
		rulerStorage.name:        "rules/demo.yaml",
		alertmanagerStorage.name: "alertmanager/fullstate",
	}
	for _, tenant := range []string{tenantDefault, tenantSSES3, tenantKMS} {
		for _, c := range d.st.components {
			if err := d.upload(ctx, 1, c, tenant, objects[c.name]); err != nil {
				return err
			}
		}
	}
	if err := d.hook(stageUploaded); err != nil {
		return err
	}

	d.say("\nStep 2. While the program runs, the operator moves tenant %s from %s to %s in %s.",
		tenantKMS, d.keys[1], d.keys[2], filepath.Base(d.runtimeFile))
	if err := d.edit(ctx, d.keys[2], deltaAbsent, true); err != nil {
		return err
	}
	if err := d.upload(ctx, 2, blocks, tenantKMS, "block-2/meta.json"); err != nil {
		return err
	}

	d.say("\nStep 3. The operator adds tenant %s with a mistake: a number in its encryption "+
		"context, where S3 takes only strings:\n", tenantBroken)
	d.sayIndented(deltaYAML(deltaBroken))
	if err := d.edit(ctx, d.keys[2], deltaBroken, false); err != nil {
		return err
	}
	if err := d.upload(ctx, 3, blocks, tenantBroken, "block-3/meta.json"); err != nil {
		return err
	}

	d.say("\nStep 4. The operator fixes the mistake:\n")
	d.sayIndented(deltaYAML(deltaFixed))
	if err := d.edit(ctx, d.keys[2], deltaFixed, true); err != nil {
		return err
	}
	if err := d.upload(ctx, 4, blocks, tenantBroken, "block-4/meta.json"); err != nil {
		return err
	}

	d.say("\nEvery object the demo wrote. SET BY is where the tenant's encryption came from; " +
		"SSE, KMS KEY\nand CONTEXT are what the server reports for the object (a HEAD after " +
		"the upload):\n")
	if err := d.printTable(); err != nil {
		return err
	}
	if err := d.readBack(ctx); err != nil {
		return err
	}

	st := d.st.runtime.Status()
	d.say("Runtime config in force: %d tenants with overrides, hash %.12s, last reload %s.\n",
		st.Tenants, st.Hash, map[bool]string{true: "applied", false: "rejected"}[st.LastReloadSuccessful])
	return nil
}

// edit rewrites the runtime config and waits for the reload loop to read
// it: applied when wantApplied, rejected otherwise. It says what happened.
func (d *demo) edit(ctx context.Context, charlieKey string, delta int, wantApplied bool) error {
	before := d.st.runtime.Status()
	edited := time.Now()
	if err := d.writeRuntimeConfig(charlieKey, delta); err != nil {
		return err
	}

	st, err := d.awaitReload(ctx, before.Hash, edited)
	if err != nil {
		return err
	}
	switch {
	case st.LastReloadSuccessful && wantApplied:
		d.say("  The reload applied it %v after the edit, without a restart: runtime config hash "+
			"%.12s -> %.12s.",
			st.LastReload.Sub(edited).Round(time.Millisecond), before.Hash, st.Hash)
	case !st.LastReloadSuccessful && !wantApplied:
		d.say("  The reload rejected the whole file, and the last good config stays in force "+
			"(hash %.12s). The log above says why; so does the status the host can serve:", st.Hash)
		d.sayIndented(st.Err.Error() + "\n")
		d.say("  Until it is fixed, %s's uploads take the sse block, as before the edit.",
			tenantBroken)
	case st.LastReloadSuccessful:
		return fmt.Errorf("the runtime config edit was applied, want it rejected")
	default:
		return fmt.Errorf("the runtime config edit was rejected: %w", st.Err)
	}
	return nil
}

// awaitReload waits for a reload that started after the edit and changed
// the hash or was rejected.
func (d *demo) awaitReload(ctx context.Context, oldHash string, edited time.Time) (
	s3sse.RuntimeConfigStatus, error) {
	deadline := time.NewTimer(reloadWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := d.st.runtime.Status()
		if st.LastReload.After(edited) && (!st.LastReloadSuccessful || st.Hash != oldHash) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-deadline.C:
			return st, fmt.Errorf("the runtime config was not reloaded within %v of the edit "+
				"(reload period %v)", reloadWait, demoReloadPeriod)
		case <-tick.C:
		}
	}
}

// upload writes one object for the tenant, asks the server how it stored
// it, and checks that against the encryption configured for the tenant.
func (d *demo) upload(ctx context.Context, step int, c *componentStorage,
	tenant, name string) error {
	want, err := c.resolver.Encryption(tenant)
	if err != nil {
		return err
	}
	configured := "sse block"
	if o, ok := d.st.runtime.Override(tenant); ok && o.Type != "" {
		configured = "override"
	}

	t, err := c.bucket.Tenant(tenant)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("%s object %s of tenant %s, written at step %d\n", c.name, name, tenant, step)
	if err := t.Upload(ctx, name, strings.NewReader(body)); err != nil {
		return err
	}
	d.written = append(d.written, writtenObject{c, tenant, name, body})

	attrs, err := t.Attributes(ctx, name)
	if err != nil {
		return err
	}
	key, _ := t.Key(name)
	if ok, why := attrs.Encryption.Satisfies(want); !ok {
		return fmt.Errorf("%s: %s of tenant %q: the server reports %s, configured %s: %s",
			c.name, key, tenant, attrs.Encryption, want, why)
	}
	d.rows = append(d.rows, demoRow{step, c.name, tenant, key, configured, attrs.Encryption})
	return nil
}

// readBack reads every object the demo wrote and compares it with what
// was written: the server decrypts each with its key.
func (d *demo) readBack(ctx context.Context) error {
	for _, w := range d.written {
		t, err := w.comp.bucket.Tenant(w.tenant)
		if err != nil {
			return err
		}
		r, err := t.Get(ctx, w.name)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("read %s of tenant %q: %w", w.name, w.tenant, err)
		}
		if string(got) != w.body {
			return fmt.Errorf("read %s of tenant %q: got %q, want %q", w.name, w.tenant, got, w.body)
		}
	}
	d.say("\nRead every one of the %d objects back: the server decrypted each, content intact.",
		len(d.written))
	return nil
}

// printTable prints the rows, one object a line.
func (d *demo) printTable() error {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tCOMPONENT\tTENANT\tOBJECT\tSET BY\tSSE\tKMS KEY\tCONTEXT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range d.rows {
		typ := string(r.stored.Type)
		if r.stored.Type == s3sse.TypeNone {
			typ = "none"
		}
		ctx := ""
		if len(r.stored.Context) > 0 {
			b, _ := json.Marshal(r.stored.Context) // keys sorted
			ctx = string(b)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.step, r.component, r.tenant, r.key,
			r.configured, typ, dash(r.stored.KMSKeyID), dash(ctx))
	}
	return tw.Flush()
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, format+"\n", args...)
}

// sayIndented prints text indented by four spaces.
func (d *demo) sayIndented(text string) {
	for _, line := range strings.SplitAfter(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(d.out, "    %s", line)
	}
	fmt.Fprintln(d.out)
}
