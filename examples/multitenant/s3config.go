package main

import "github.com/s3sse/s3sse/internal/s3client"

// S3Config is the s3 block of a storage component, with Cortex's YAML keys
// and flag names and the library's sse block inside it. It lives in
// internal/s3client, shared with the s3sse operator tool so that the tool
// reads this program's config file as it is. A host keeps its own s3 block:
// s3sse owns only the sse block and what follows from it.
type S3Config = s3client.Config

// HTTPConfig is the http block of the s3 block: timeouts and TLS of the
// client's transport, the CA file (http.tls_ca_path) included.
type HTTPConfig = s3client.HTTPConfig

// Secret is a configuration value that never prints, such as the secret
// access key; Reveal gives the value to the client.
type Secret = s3client.Secret

// NewSecret returns a Secret holding value.
func NewSecret(value string) Secret { return s3client.NewSecret(value) }
