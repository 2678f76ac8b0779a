package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3sse/s3sse"
)

// S3Config is the s3 block of a storage component, with Cortex's YAML keys
// and flag names. The sse block inside it is the library's; the rest is how
// a host reaches its bucket, and stays in the host.
//
// RegisterFlagsWithPrefix sets the defaults; YAML decoded afterwards replaces
// the keys it names. An S3Config is a plain value: do not change it while
// another goroutine reads it.
type S3Config struct {
	// Endpoint is the S3 server's host[:port], without a scheme. Default
	// empty, which the demo takes as "start a local MinIO".
	Endpoint string `yaml:"endpoint"`
	// BucketName is the bucket the component writes to. Required.
	BucketName string `yaml:"bucket_name"`
	// Region is the bucket's region. Empty lets the client ask the server.
	Region string `yaml:"region"`
	// AccessKeyID is the access key. Default empty.
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey is the secret key. It never prints. Default empty.
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// Insecure uses plain HTTP rather than HTTPS. Default false.
	Insecure bool `yaml:"insecure"`

	// SSE is the component's default server-side encryption, which a
	// tenant's override in the runtime config replaces.
	SSE s3sse.Config `yaml:"sse"`

	// HTTP is the client's transport.
	HTTP HTTPConfig `yaml:"http"`

	flagPrefix string
}

// HTTPConfig is the http block of the s3 block: timeouts and TLS of the
// client's transport. Cortex's keys, plus ca_file, which Cortex lacks and
// Loki spells this way.
type HTTPConfig struct {
	// IdleConnTimeout closes connections idle this long. Default 90s.
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
	// CAFile is a PEM file of certificate authorities to trust besides the
	// system's, for an S3 server with a private CA. Default empty.
	CAFile string `yaml:"ca_file"`
}

// RegisterFlagsWithPrefix registers the block's flags under prefix, which
// ends with a dot ("blocks-storage."): -<prefix>s3.endpoint and so on, and
// the library's -<prefix>s3.sse.* flags. It sets every field to its default.
func (c *S3Config) RegisterFlagsWithPrefix(prefix string, f *flag.FlagSet) {
	c.flagPrefix = prefix
	c.SecretAccessKey = Secret{}
	p := prefix + "s3."

	f.StringVar(&c.Endpoint, p+"endpoint", "",
		"S3 endpoint, host[:port] without a scheme. In -demo mode, empty starts a local MinIO.")
	f.StringVar(&c.BucketName, p+"bucket-name", "", "S3 bucket name.")
	f.StringVar(&c.Region, p+"region", "",
		"S3 region. Empty lets the client ask the server for the bucket's region.")
	f.StringVar(&c.AccessKeyID, p+"access-key-id", "", "S3 access key ID.")
	f.Var(&c.SecretAccessKey, p+"secret-access-key",
		"S3 secret access key. It is never printed.")
	f.BoolVar(&c.Insecure, p+"insecure", false,
		"Use plain HTTP rather than HTTPS for the S3 endpoint.")

	c.SSE.RegisterFlagsWithPrefix(prefix, f)

	f.DurationVar(&c.HTTP.IdleConnTimeout, p+"http.idle-conn-timeout", 90*time.Second,
		"How long an idle connection to S3 stays open.")
	f.DurationVar(&c.HTTP.ResponseHeaderTimeout, p+"http.response-header-timeout", 2*time.Minute,
		"How long to wait for the response headers of an S3 request. 0 waits forever.")
	f.BoolVar(&c.HTTP.InsecureSkipVerify, p+"http.insecure-skip-verify", false,
		"Accept any certificate and host name from the S3 endpoint. For tests only.")
	f.DurationVar(&c.HTTP.TLSHandshakeTimeout, p+"tls-handshake-timeout", 10*time.Second,
		"How long a TLS handshake with S3 may take. 0 waits forever.")
	f.StringVar(&c.HTTP.CAFile, p+"http.ca-file", "",
		"PEM file of certificate authorities to trust, besides the system's, for the S3 endpoint.")
}

// Validate checks the block; yamlPath is where it sits in the YAML file,
// such as blocks_storage.s3. Errors name the YAML key and the flag.
func (c *S3Config) Validate(yamlPath string) error {
	name := func(key, flagName string) string {
		return fmt.Sprintf("%s.%s (flag -%ss3.%s)", yamlPath, key, c.flagPrefix, flagName)
	}
	switch {
	case c.Endpoint == "":
		return fmt.Errorf("%s is empty: set the S3 server's host[:port]",
			name("endpoint", "endpoint"))
	case strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/"):
		return fmt.Errorf("%s %q: want host[:port] without a scheme or path; use %s for "+
			"plain HTTP", name("endpoint", "endpoint"), c.Endpoint, name("insecure", "insecure"))
	case c.BucketName == "":
		return fmt.Errorf("%s is empty: set the bucket to write to", name("bucket_name", "bucket-name"))
	case c.AccessKeyID != "" && !c.SecretAccessKey.IsSet():
		return fmt.Errorf("%s is set but %s is not", name("access_key_id", "access-key-id"),
			name("secret_access_key", "secret-access-key"))
	case c.HTTP.IdleConnTimeout < 0 || c.HTTP.ResponseHeaderTimeout < 0 ||
		c.HTTP.TLSHandshakeTimeout < 0:
		return fmt.Errorf("%s.http: timeouts must not be negative", yamlPath)
	}
	if err := c.SSE.Validate(); err != nil {
		return fmt.Errorf("%s: %w", yamlPath, err)
	}
	return nil
}

// NewClient returns a minio-go client for the block. It reads the CA file,
// if any; it sends no request.
func (c *S3Config) NewClient() (*minio.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = c.HTTP.IdleConnTimeout
	tr.ResponseHeaderTimeout = c.HTTP.ResponseHeaderTimeout
	tr.TLSHandshakeTimeout = c.HTTP.TLSHandshakeTimeout
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.HTTP.InsecureSkipVerify, //nolint:gosec // the operator asked for it
	}
	if c.HTTP.CAFile != "" {
		pool, err := caPool(c.HTTP.CAFile)
		if err != nil {
			return nil, fmt.Errorf("flag -%ss3.http.ca-file: %w", c.flagPrefix, err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}

	var creds *credentials.Credentials
	if c.AccessKeyID != "" {
		creds = credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey.Reveal(), "")
	} else {
		creds = credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    !c.Insecure,
		Region:    c.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("create S3 client for %s: %w", c.Endpoint, err)
	}
	return client, nil
}

// caPool is the system's certificate pool plus the certificates in file.
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system pool on this platform: the file alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("read CA file " + file + ": no PEM certificate in it")
	}
	return pool, nil
}
