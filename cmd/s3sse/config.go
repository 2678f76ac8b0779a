package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
)

// component is one Cortex storage component: the YAML section of its
// storage block and the prefix of its flags.
type component struct {
	name    string // value of -component, and the flag prefix without its dot
	section string // top-level YAML key of a Cortex config file
}

var components = []component{
	{name: "blocks-storage", section: "blocks_storage"},
	{name: "ruler-storage", section: "ruler_storage"},
	{name: "alertmanager-storage", section: "alertmanager_storage"},
}

func componentNames() []string {
	names := make([]string, len(components))
	for i, c := range components {
		names[i] = c.name
	}
	return names
}

// s3Config is the part of a component's s3 block the tool needs: where the
// bucket is, how to reach it, and its sse block. Keys the tool does not use
// (list_objects_version, send_content_md5 and so on) are left to the host.
type s3Config struct {
	Endpoint         string       `yaml:"endpoint"`
	Region           string       `yaml:"region"`
	BucketName       string       `yaml:"bucket_name"`
	AccessKeyID      string       `yaml:"access_key_id"`
	SecretAccessKey  secret       `yaml:"secret_access_key"`
	Insecure         bool         `yaml:"insecure"`
	SignatureVersion string       `yaml:"signature_version"`
	BucketLookupType string       `yaml:"bucket_lookup_type"`
	HTTP             s3HTTPConfig `yaml:"http"`
	SSE              s3sse.Config `yaml:"sse"`

	prefix string
}

type s3HTTPConfig struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	TLSCAPath          string `yaml:"tls_ca_path"`
}

func (c *s3Config) registerFlags(prefix string, f *flag.FlagSet) {
	c.prefix = prefix
	f.StringVar(&c.Endpoint, prefix+"s3.endpoint", "",
		"S3 endpoint as host[:port], such as s3.eu-west-1.amazonaws.com. A scheme "+
			"(http:// or https://) may be given and then decides over -"+prefix+"s3.insecure.")
	f.StringVar(&c.Region, prefix+"s3.region", "", "S3 region. Empty lets the client find it.")
	f.StringVar(&c.BucketName, prefix+"s3.bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.AccessKeyID, prefix+"s3.access-key-id", "",
		"S3 access key id. Empty takes credentials from AWS_ACCESS_KEY_ID and "+
			"AWS_SECRET_ACCESS_KEY, MINIO_ROOT_USER and MINIO_ROOT_PASSWORD, "+
			"~/.aws/credentials or the instance's IAM role, in that order.")
	f.Var(&c.SecretAccessKey, prefix+"s3.secret-access-key",
		"S3 secret access key. It is never printed. Prefer the config file with "+
			"-config.expand-env, or the environment, to the command line.")
	f.BoolVar(&c.Insecure, prefix+"s3.insecure", false, "Use plain HTTP rather than HTTPS.")
	f.StringVar(&c.SignatureVersion, prefix+"s3.signature-version", "v4",
		"Request signature version: v4 or v2.")
	f.StringVar(&c.BucketLookupType, prefix+"s3.bucket-lookup-type", "auto",
		"Bucket addressing: auto, virtual-hosted or path.")
	f.BoolVar(&c.HTTP.InsecureSkipVerify, prefix+"s3.http.insecure-skip-verify", false,
		"Do not verify the server's certificate. For tests only.")
	f.StringVar(&c.HTTP.TLSCAPath, prefix+"s3.http.tls-ca-path", "",
		"PEM file of certificate authorities to trust besides the system's, for an "+
			"endpoint with a private or self-signed certificate.")
	c.SSE.RegisterFlagsWithPrefix(prefix, f)
}

// secret is a string that never prints: flag defaults, %v and YAML dumps
// show a mask instead.
type secret string

func (s *secret) Set(v string) error { *s = secret(v); return nil }

func (s *secret) String() string {
	if s == nil || *s == "" {
		return ""
	}
	return "********"
}

func (s secret) GoString() string { return `"********"` }

func (s secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return "********", nil
}

// options are the flags every command takes: where the configuration is.
type options struct {
	configFile      string
	expandEnv       bool
	component       string
	runtimeFiles    string
	storage         map[string]*s3Config // by component name
	componentConfig *s3Config            // the chosen component's, set by parseFlags

	// fileProblems are invalid values of the config file that do not keep
	// it from loading, such as a misspelt key in the sse block.
	fileProblems []error
}

func (o *options) registerFlags(f *flag.FlagSet) {
	f.StringVar(&o.configFile, "config.file", "",
		"YAML file with the S3 configuration: a Cortex config file (the -component's "+
			"section is read), a storage block holding s3:, an s3 block holding sse:, or a "+
			"bare sse block. Flags given on the command line take precedence over it.")
	f.BoolVar(&o.expandEnv, "config.expand-env", false,
		"Replace ${VAR} and ${VAR:default} in the config file with environment variables "+
			"before parsing it.")
	f.StringVar(&o.component, "component", components[0].name,
		"Storage component whose s3 block and flags apply: "+strings.Join(componentNames(), ", ")+".")
	f.StringVar(&o.runtimeFiles, "runtime-config.file", "",
		"Comma-separated runtime config files holding per-tenant overrides. Later files "+
			"override earlier ones, as in Cortex.")

	o.storage = map[string]*s3Config{}
	for _, c := range components {
		cfg := &s3Config{}
		cfg.registerFlags(c.name+".", f)
		o.storage[c.name] = cfg
	}
}

// runtimeConfigFiles is the list -runtime-config.file names.
func (o *options) runtimeConfigFiles() []string {
	var files []string
	for _, f := range strings.Split(o.runtimeFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	return files
}

// parseFlags parses args twice, as Cortex does: once to find the config
// file, whose values then replace the flag defaults, and again so that the
// flags given on the command line win over the file. Every error but
// flag.ErrHelp is a usageError.
func (o *options) parseFlags(f *flag.FlagSet, args []string) error {
	if err := parseArgs(f, args); err != nil {
		return err
	}
	idx := slices.IndexFunc(components, func(c component) bool { return c.name == o.component })
	if idx < 0 {
		return usageError{fmt.Errorf("-component %q: unknown component; valid: %s",
			o.component, strings.Join(componentNames(), ", "))}
	}
	comp := components[idx]
	o.componentConfig = o.storage[comp.name]

	if o.configFile == "" {
		return nil
	}
	if err := o.loadConfigFile(o.configFile, o.expandEnv, comp, o.componentConfig); err != nil {
		return usageError{err}
	}
	return parseArgs(f, args)
}

func parseArgs(f *flag.FlagSet, args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return usageError{fmt.Errorf("%w (run '%s -help' for the flags)", err, f.Name())}
	case f.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q; every option is a flag", f.Arg(0))}
	}
	return nil
}

// usageError is an error in how the command was called, as opposed to in
// what it found.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// loadConfigFile decodes the component's s3 block from file into cfg,
// keeping the values of keys the file does not name. Which of the layouts
// the file has is decided by its top-level keys.
func (o *options) loadConfigFile(file string, expandEnv bool, comp component, cfg *s3Config) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	if expandEnv {
		text = expandEnvRefs(text)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: expected a mapping at the top level",
			file, root.Line)
	}

	where := comp.section + ".s3"
	var s3Node *yaml.Node
	switch {
	case isCortexConfig(root):
		s3Node = mappingValue(mappingValue(root, comp.section), "s3")
		if s3Node == nil {
			return nil // the component is configured by flags alone
		}
	case mappingValue(root, "s3") != nil:
		s3Node, where = mappingValue(root, "s3"), "s3"
	case mappingValue(root, "sse") != nil:
		s3Node, where = root, "the s3 block"
	case mappingValue(root, "type") != nil:
		return o.decodeSSEBlock(file, root, "the sse block", &cfg.SSE)
	default:
		var sections []string
		for _, c := range components {
			sections = append(sections, c.section)
		}
		return fmt.Errorf("config file %s: found none of the keys %s, s3, sse or type at "+
			"the top level; for -component %s it must be a Cortex config file with a %s "+
			"section, a storage block, an s3 block or an sse block",
			file, strings.Join(sections, ", "), comp.name, comp.section)
	}

	if s3Node.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: %s must be a mapping", file, s3Node.Line, where)
	}
	// The sse block is decoded on its own, strictly; the rest of the s3
	// block belongs to the host, whose keys the tool need not know.
	rest := *s3Node
	rest.Content = nil
	var sse *yaml.Node
	for i := 0; i+1 < len(s3Node.Content); i += 2 {
		if s3Node.Content[i].Value == "sse" {
			sse = s3Node.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, s3Node.Content[i], s3Node.Content[i+1])
	}
	if err := rest.Decode(cfg); err != nil {
		return fmt.Errorf("config file %s: %s: %w", file, where, err)
	}
	if sse != nil {
		return o.decodeSSEBlock(file, sse, where+".sse", &cfg.SSE)
	}
	return nil
}

// decodeSSEBlock decodes an sse block strictly: a misspelt key would
// otherwise be dropped silently, and the objects written without the key
// id or context the operator meant. Unknown keys are recorded as problems
// of the configuration, which check lists with the others; the known keys
// are still decoded.
func (o *options) decodeSSEBlock(file string, node *yaml.Node, where string,
	out *s3sse.Config) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: %s must be a mapping", file, node.Line, where)
	}
	known := yamlKeys(reflect.TypeFor[s3sse.Config]())
	valid := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if slices.Contains(known, key.Value) {
			valid.Content = append(valid.Content, key, value)
			continue
		}
		o.fileProblems = append(o.fileProblems, &s3sse.ConfigError{
			File:  file,
			Key:   "sse." + key.Value,
			Value: nodeText(value),
			Reason: fmt.Sprintf("line %d: unknown key in %s; valid: %s", key.Line, where,
				strings.Join(known, ", ")),
			Err: s3sse.ErrInvalidConfig,
		})
	}
	if err := valid.Decode(out); err != nil {
		return fmt.Errorf("config file %s: %s: %w", file, where, err)
	}
	return nil
}

// yamlKeys lists the YAML keys a struct type decodes.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// isCortexConfig reports whether the top level of a file has a section
// of any storage component, as a Cortex config file has.
func isCortexConfig(root *yaml.Node) bool {
	return slices.ContainsFunc(components, func(c component) bool {
		return mappingValue(root, c.section) != nil
	})
}

// mappingValue returns the value of key in a mapping node, nil if absent.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}`)

// expandEnvRefs replaces ${VAR} with the variable's value, and ${VAR:def}
// with def when VAR is unset, as Cortex's -config.expand-env does.
func expandEnvRefs(text []byte) []byte {
	return envRef.ReplaceAllFunc(text, func(ref []byte) []byte {
		m := envRef.FindSubmatch(ref)
		if v, ok := os.LookupEnv(string(m[1])); ok {
			return []byte(v)
		}
		return bytes.Clone(m[2])
	})
}

// newClient returns a minio-go client for the s3 block. It sends nothing.
// wrap, when not nil, wraps its transport.
func (c *s3Config) newClient(
	wrap func(http.RoundTripper) http.RoundTripper) (*minio.Client, error) {
	if c.Endpoint == "" {
		return nil, usageError{fmt.Errorf("-%ss3.endpoint (s3.endpoint in the config file) "+
			"is required", c.prefix)}
	}
	if c.BucketName == "" {
		return nil, usageError{fmt.Errorf("-%ss3.bucket-name (s3.bucket_name in the config "+
			"file) is required", c.prefix)}
	}

	host, secure := c.Endpoint, !c.Insecure
	if u, err := url.Parse(c.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Path != "" && u.Path != "/" {
			return nil, usageError{fmt.Errorf("-%ss3.endpoint %q: a path is not allowed; "+
				"give host[:port] and the bucket with -%ss3.bucket-name",
				c.prefix, c.Endpoint, c.prefix)}
		}
		host, secure = u.Host, u.Scheme == "https"
	}

	var sigType credentials.SignatureType
	switch c.SignatureVersion {
	case "", "v4":
		sigType = credentials.SignatureV4
	case "v2":
		sigType = credentials.SignatureV2
	default:
		return nil, usageError{fmt.Errorf("-%ss3.signature-version %q: valid: v4, v2",
			c.prefix, c.SignatureVersion)}
	}

	lookup := map[string]minio.BucketLookupType{
		"": minio.BucketLookupAuto, "auto": minio.BucketLookupAuto,
		"virtual-hosted": minio.BucketLookupDNS, "path": minio.BucketLookupPath,
	}
	bucketLookup, ok := lookup[c.BucketLookupType]
	if !ok {
		return nil, usageError{fmt.Errorf("-%ss3.bucket-lookup-type %q: valid: auto, "+
			"virtual-hosted, path", c.prefix, c.BucketLookupType)}
	}

	var creds *credentials.Credentials
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		creds = credentials.NewStatic(c.AccessKeyID, string(c.SecretAccessKey), "", sigType)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}

	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("build HTTP transport: %w", err)
	}
	if secure {
		tlsConfig, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = tlsConfig
	}

	var rt http.RoundTripper = transport
	if wrap != nil {
		rt = wrap(transport)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       c.Region,
		Transport:    rt,
		BucketLookup: bucketLookup,
	})
	if err != nil {
		return nil, usageError{fmt.Errorf("-%ss3.endpoint %q: %w", c.prefix, c.Endpoint, err)}
	}
	return client, nil
}

func (c *s3Config) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.HTTP.InsecureSkipVerify, //nolint:gosec // the operator asked
	}
	if c.HTTP.TLSCAPath == "" {
		return cfg, nil
	}

	pem, err := os.ReadFile(c.HTTP.TLSCAPath)
	if err != nil {
		return nil, usageError{fmt.Errorf("-%ss3.http.tls-ca-path: %w", c.prefix, err)}
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usageError{fmt.Errorf("-%ss3.http.tls-ca-path %s: no PEM certificate found",
			c.prefix, c.HTTP.TLSCAPath)}
	}
	cfg.RootCAs = pool
	return cfg, nil
}
