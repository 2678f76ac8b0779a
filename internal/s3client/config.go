// Package s3client is the s3 block of a Cortex-style storage component:
// its YAML keys and flags, its validation, and the minio-go client it
// builds. The operator tool (cmd/s3sse) and the wiring example
// (examples/multitenant) share it, so that a config file one of them reads
// means the same to the other.
//
// The library itself owns only the sse block inside it (s3sse.Config); how
// a host reaches its bucket stays in the host, which is why this package is
// internal rather than part of s3sse's API.
package s3client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3sse/s3sse"
)

// Config is the s3 block of a storage component, with Cortex's YAML keys
// and flag names, and the library's sse block inside it.
//
// RegisterFlagsWithPrefix sets the defaults; YAML decoded afterwards
// replaces the keys it names. A Config is a plain value: do not change it
// while another goroutine reads it.
type Config struct {
	// Endpoint is the S3 server as host[:port]. An http:// or https://
	// scheme may be given, and then decides over Insecure. Required.
	Endpoint string `yaml:"endpoint"`
	// Region is the bucket's region. Empty lets the client ask the server.
	Region string `yaml:"region"`
	// BucketName is the bucket the component writes to. Required.
	BucketName string `yaml:"bucket_name"`
	// AccessKeyID is the access key. Empty, with no secret either, takes
	// credentials from the environment, ~/.aws/credentials or the
	// instance's IAM role (see NewClient).
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey is the secret key. It never prints. Default unset.
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// Insecure uses plain HTTP rather than HTTPS. Default false.
	Insecure bool `yaml:"insecure"`
	// SignatureVersion is how requests are signed: v4 (the default) or v2.
	SignatureVersion string `yaml:"signature_version"`
	// BucketLookupType is how the bucket is addressed: auto (the default),
	// virtual-hosted or path.
	BucketLookupType string `yaml:"bucket_lookup_type"`

	// SSE is the component's default server-side encryption, which a
	// tenant's override in the runtime config replaces.
	SSE s3sse.Config `yaml:"sse"`

	// HTTP is the client's transport.
	HTTP HTTPConfig `yaml:"http"`

	flagPrefix string
}

// HTTPConfig is the http block of the s3 block: timeouts and TLS of the
// client's transport. The keys are Cortex's, plus tls_ca_path, which Cortex's
// s3 block lacks and Mimir's and Loki's spell this way.
type HTTPConfig struct {
	// IdleConnTimeout closes connections idle this long. Default 90s; 0
	// keeps them open.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// ResponseHeaderTimeout bounds the wait for a response's headers.
	// Default 2m; 0 waits forever.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// InsecureSkipVerify accepts any certificate and host name. Default
	// false; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// TLSHandshakeTimeout bounds a TLS handshake. Default 10s; 0 waits
	// forever.
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	// TLSCAPath is a PEM file of certificate authorities to trust besides
	// the system's, for an S3 server with a private or self-signed
	// certificate. Default empty.
	TLSCAPath string `yaml:"tls_ca_path"`
}

// Default values the flags set.
const (
	DefaultSignatureVersion = "v4"
	DefaultBucketLookupType = "auto"
)

// signatureVersions and bucketLookupTypes are the values the keys accept,
// in the order errors list them.
var (
	signatureVersions = []string{"v4", "v2"}
	bucketLookupTypes = []string{"auto", "virtual-hosted", "path"}
)

// RegisterFlagsWithPrefix registers the block's flags under prefix, which
// ends with a dot ("blocks-storage."): -<prefix>s3.endpoint and so on, and
// the library's -<prefix>s3.sse.* flags. It sets every field to its
// default. Errors of Validate and NewClient name these flags.
func (c *Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	c.SecretAccessKey = Secret{}
	p := prefix + "s3."

	f.StringVar(&c.Endpoint, p+"endpoint", "",
		"S3 endpoint as host[:port], such as s3.eu-west-1.amazonaws.com. A scheme "+
			"(http:// or https://) may be given and then decides over -"+p+"insecure.")
	f.StringVar(&c.Region, p+"region", "",
		"S3 region. Empty lets the client ask the server for the bucket's region.")
	f.StringVar(&c.BucketName, p+"bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.AccessKeyID, p+"access-key-id", "",
		"S3 access key id. Empty takes credentials from AWS_ACCESS_KEY_ID and "+
			"AWS_SECRET_ACCESS_KEY, MINIO_ROOT_USER and MINIO_ROOT_PASSWORD, "+
			"~/.aws/credentials or the instance's IAM role, in that order.")
	f.Var(&c.SecretAccessKey, p+"secret-access-key",
		"S3 secret access key. It is never printed. Prefer the config file (with "+
			"-config.expand-env where the host has it) to the command line.")
	f.BoolVar(&c.Insecure, p+"insecure", false,
		"Use plain HTTP rather than HTTPS for the S3 endpoint.")
	f.StringVar(&c.SignatureVersion, p+"signature-version", DefaultSignatureVersion,
		"Request signature version: "+strings.Join(signatureVersions, " or ")+".")
	f.StringVar(&c.BucketLookupType, p+"bucket-lookup-type", DefaultBucketLookupType,
		"Bucket addressing: "+strings.Join(bucketLookupTypes, ", ")+".")

	c.SSE.RegisterFlagsWithPrefix(prefix, f)

	f.DurationVar(&c.HTTP.IdleConnTimeout, p+"http.idle-conn-timeout", 90*time.Second,
		"How long an idle connection to S3 stays open. 0 keeps it open.")
	f.DurationVar(&c.HTTP.ResponseHeaderTimeout, p+"http.response-header-timeout", 2*time.Minute,
		"How long to wait for the response headers of an S3 request. 0 waits forever.")
	f.BoolVar(&c.HTTP.InsecureSkipVerify, p+"http.insecure-skip-verify", false,
		"Accept any certificate and host name from the S3 endpoint. For tests only.")
	// Cortex spells this one without http., unlike its neighbours.
	f.DurationVar(&c.HTTP.TLSHandshakeTimeout, p+"tls-handshake-timeout", 10*time.Second,
		"How long a TLS handshake with S3 may take. 0 waits forever.")
	f.StringVar(&c.HTTP.TLSCAPath, p+"http.tls-ca-path", "",
		"PEM file of certificate authorities to trust besides the system's, for an "+
			"S3 endpoint with a private or self-signed certificate.")
}

// Validate checks the block, the sse block included. yamlPath is where the
// block sits in the YAML file, such as blocks_storage.s3; empty means the
// path Cortex gives the flag prefix ("blocks-storage." gives
// blocks_storage.s3). Errors name the YAML key, the flag and the value.
func (c *Config) Validate(yamlPath string) error {
	if yamlPath == "" {
		yamlPath = c.defaultYAMLPath()
	}
	if _, err := c.clientSettings(yamlPath); err != nil {
		return err
	}
	if err := c.SSE.Validate(); err != nil {
		return fmt.Errorf("%s: %w", yamlPath, err)
	}
	return nil
}

// NewClient returns a minio-go client for the block. It checks the keys the
// client needs (not the sse block: see Validate) and reads the CA file, if
// any; it sends no request.
//
// Without an access key or secret key, credentials come from, in order:
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD, ~/.aws/credentials, the instance's IAM role; with
// none of them, requests are anonymous.
func (c *Config) NewClient() (*minio.Client, error) {
	return c.NewClientWrapped(nil)
}

// NewClientWrapped is NewClient with the client's transport passed through
// wrap, such as to count or delay requests. A nil wrap leaves it as it is.
func (c *Config) NewClientWrapped(
	wrap func(http.RoundTripper) http.RoundTripper) (*minio.Client, error) {
	s, err := c.clientSettings(c.defaultYAMLPath())
	if err != nil {
		return nil, err
	}

	transport, err := minio.DefaultTransport(s.secure)
	if err != nil {
		return nil, fmt.Errorf("build HTTP transport: %w", err)
	}
	transport.IdleConnTimeout = c.HTTP.IdleConnTimeout
	transport.ResponseHeaderTimeout = c.HTTP.ResponseHeaderTimeout
	transport.TLSHandshakeTimeout = c.HTTP.TLSHandshakeTimeout
	if s.secure {
		tlsConfig, err := c.tlsConfig(c.defaultYAMLPath())
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = tlsConfig
	}

	var rt http.RoundTripper = transport
	if wrap != nil {
		rt = wrap(transport)
	}
	client, err := minio.New(s.host, &minio.Options{
		Creds:        c.credentials(s.signature),
		Secure:       s.secure,
		Region:       c.Region,
		Transport:    rt,
		BucketLookup: s.bucketLookup,
	})
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w",
			c.name(c.defaultYAMLPath(), "endpoint", "endpoint"), c.Endpoint, err)
	}
	return client, nil
}

// clientSettings are the block's keys as minio-go takes them.
type clientSettings struct {
	host         string // host[:port], the scheme taken off
	secure       bool
	signature    credentials.SignatureType
	bucketLookup minio.BucketLookupType
}

// clientSettings checks every key but the sse block and returns what the
// client is built from. yamlPath is as for Validate, never empty.
func (c *Config) clientSettings(yamlPath string) (clientSettings, error) {
	s := clientSettings{host: c.Endpoint, secure: !c.Insecure}
	name := func(key, flagName string) string { return c.name(yamlPath, key, flagName) }

	if c.Endpoint == "" {
		return s, fmt.Errorf("%s is empty: set the S3 server's host[:port]",
			name("endpoint", "endpoint"))
	}
	if scheme, _, ok := strings.Cut(c.Endpoint, "://"); ok {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (scheme != "http" && scheme != "https") {
			return s, fmt.Errorf("%s %q: want host[:port], or http:// or https:// and "+
				"host[:port]", name("endpoint", "endpoint"), c.Endpoint)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return s, fmt.Errorf("%s %q: want host[:port] without a path; set the bucket "+
				"with %s", name("endpoint", "endpoint"), c.Endpoint,
				name("bucket_name", "bucket-name"))
		}
		s.host, s.secure = u.Host, scheme == "https"
	} else if strings.ContainsAny(c.Endpoint, "/?@") {
		return s, fmt.Errorf("%s %q: want host[:port] without a path; set the bucket with %s",
			name("endpoint", "endpoint"), c.Endpoint, name("bucket_name", "bucket-name"))
	}
	if s.host == "" {
		return s, fmt.Errorf("%s %q: no host in it", name("endpoint", "endpoint"), c.Endpoint)
	}

	if c.BucketName == "" {
		return s, fmt.Errorf("%s is empty: set the bucket to write to",
			name("bucket_name", "bucket-name"))
	}
	if c.AccessKeyID != "" && !c.SecretAccessKey.IsSet() {
		return s, fmt.Errorf("%s is set but %s is not", name("access_key_id", "access-key-id"),
			name("secret_access_key", "secret-access-key"))
	}
	if c.AccessKeyID == "" && c.SecretAccessKey.IsSet() {
		return s, fmt.Errorf("%s is set but %s is not",
			name("secret_access_key", "secret-access-key"), name("access_key_id", "access-key-id"))
	}

	switch c.SignatureVersion {
	case "", "v4":
		s.signature = credentials.SignatureV4
	case "v2":
		s.signature = credentials.SignatureV2
	default:
		return s, fmt.Errorf("%s %q: valid: %s", name("signature_version", "signature-version"),
			c.SignatureVersion, strings.Join(signatureVersions, ", "))
	}

	switch c.BucketLookupType {
	case "", "auto":
		s.bucketLookup = minio.BucketLookupAuto
	case "virtual-hosted":
		s.bucketLookup = minio.BucketLookupDNS
	case "path":
		s.bucketLookup = minio.BucketLookupPath
	default:
		return s, fmt.Errorf("%s %q: valid: %s", name("bucket_lookup_type", "bucket-lookup-type"),
			c.BucketLookupType, strings.Join(bucketLookupTypes, ", "))
	}

	for _, d := range []struct {
		key, flag string
		value     time.Duration
	}{
		{"http.idle_conn_timeout", "http.idle-conn-timeout", c.HTTP.IdleConnTimeout},
		{"http.response_header_timeout", "http.response-header-timeout",
			c.HTTP.ResponseHeaderTimeout},
		{"http.tls_handshake_timeout", "tls-handshake-timeout", c.HTTP.TLSHandshakeTimeout},
	} {
		if d.value < 0 {
			return s, fmt.Errorf("%s %s: must not be negative; 0 means no limit",
				name(d.key, d.flag), d.value)
		}
	}
	return s, nil
}

// credentials are the access key and secret when either is set, and the
// chain of the usual places otherwise.
func (c *Config) credentials(signature credentials.SignatureType) *credentials.Credentials {
	if c.AccessKeyID != "" || c.SecretAccessKey.IsSet() {
		return credentials.NewStatic(c.AccessKeyID, c.SecretAccessKey.Reveal(), "", signature)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
}

// tlsConfig is TLS 1.2 or later, trusting the system's authorities and
// those of the CA file.
func (c *Config) tlsConfig(yamlPath string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.HTTP.InsecureSkipVerify, //nolint:gosec // the operator asked
	}
	if c.HTTP.TLSCAPath == "" {
		return cfg, nil
	}

	name := c.name(yamlPath, "http.tls_ca_path", "http.tls-ca-path")
	pem, err := os.ReadFile(c.HTTP.TLSCAPath)
	if err != nil {
		return nil, fmt.Errorf("%s: read CA file: %w", name, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system pool on this platform: the file alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: %w", name, c.HTTP.TLSCAPath, errNoCertificate)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

var errNoCertificate = errors.New("no PEM certificate in the file")

// name names a key of the block for an error: its YAML path and its flag.
func (c *Config) name(yamlPath, key, flagName string) string {
	return fmt.Sprintf("%s.%s (flag -%ss3.%s)", yamlPath, key, c.flagPrefix, flagName)
}

// defaultYAMLPath is the block's place in a Cortex config file, which
// spells the flag prefix's words with underscores: blocks-storage. is
// blocks_storage.s3.
func (c *Config) defaultYAMLPath() string {
	section := strings.ReplaceAll(strings.TrimSuffix(c.flagPrefix, "."), "-", "_")
	if section == "" {
		return "s3"
	}
	return section + ".s3"
}
