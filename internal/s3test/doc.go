// Package s3test runs s3sse's tests against a real S3 server: MinIO, with
// a KMS, so SSE-S3 and SSE-KMS really encrypt and a test can check what
// the server stored.
//
// # Getting started
//
// A test package hands its TestMain to Main, and each test takes the
// package's shared server and a bucket of its own:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
//	func TestUpload(t *testing.T) {
//		srv := s3test.Shared(t)
//		bucket := srv.NewBucket(t) // removed, with its objects, when t ends
//		client := srv.Client(t)
//		...
//	}
//
// A test that must crash, restart or reconfigure the server starts its own
// with StartDedicated; it is stopped and removed when the test ends. A
// program that is not a test, such as a demo, uses Launch and closes the
// server itself.
//
// # Where the server comes from
//
// The harness takes the first of these that is available:
//
//  1. A running server named by S3SSE_S3_ENDPOINT (shared server only).
//  2. The MinIO binary named by S3SSE_MINIO_BIN, or else the pinned MinIO
//     that `make minio` builds into .tools/bin/minio under the module root
//     (found by walking up from the working directory to go.mod).
//  3. A MinIO container (testcontainers-go), when a Docker engine answers.
//
// With none of them, tests that ask for a server are skipped with a message
// saying how to get one; with S3SSE_REQUIRE_S3=1 (as `make test` and CI
// set) they fail instead. A source that is named but broken, such as
// S3SSE_MINIO_BIN pointing at nothing, is a failure, not a reason to try
// the next one.
//
// # Environment variables
//
//	S3SSE_S3_ENDPOINT     http://host:port or https://host:port of a running
//	                      S3 server to use as the shared server.
//	S3SSE_S3_ACCESS_KEY   its access key (required with the endpoint).
//	S3SSE_S3_SECRET_KEY   its secret key (required with the endpoint).
//	S3SSE_S3_REGION       region for new buckets; default us-east-1.
//	S3SSE_S3_CA_FILE      PEM file of CA certificates to trust, in addition
//	                      to the system's, for an https endpoint.
//	S3SSE_S3_INSECURE     1 to skip certificate verification of an https
//	                      endpoint; default 0.
//	S3SSE_S3_KMS_KEYS     comma-separated KMS key ids the endpoint's KMS
//	                      holds, its default key first; default none.
//	S3SSE_MINIO_BIN       MinIO binary to run (a path, or a name looked up
//	                      in PATH); default .tools/bin/minio.
//	S3SSE_MINIO_IMAGE     image for the container; default a pinned
//	                      minio/minio release.
//	S3SSE_REQUIRE_S3      1 to fail, not skip, when there is no server.
//	S3SSE_RAN_MARKER_DIR  directory where Main leaves a file for each test
//	                      package that ran against a real server.
//
// # Servers the harness starts
//
// MinIO runs with a fresh data directory, on a free loopback port
// (--address 127.0.0.1:0, the chosen port read from its output), with
// MINIO_BROWSER=off and MINIO_KMS_AUTO_ENCRYPTION=off, so an upload without
// an SSE header stays unencrypted. Its output is kept and printed when a
// test using it fails, credentials and keys removed. Readiness is MinIO's
// /minio/health/ready, which also proves it can reach its KMS.
//
// TLS is the default: the harness creates a certificate authority for the
// test process and issues MinIO a certificate for 127.0.0.1 and localhost.
// Clients from Server.Client trust it; for clients built by hand use
// Server.NewTransport, Server.ClientOptions or Server.RootCAs. SSE-C needs
// TLS: MinIO refuses customer keys over plain HTTP.
//
// # KMS
//
// A MinIO started from the binary uses the harness's KES stand-in (type
// KMS): an HTTPS key server in the test process speaking the part of the
// KES protocol MinIO calls. It holds several named keys (DefaultKMSKeys,
// or Options.KMSKeys), really seals data keys with them, lets a test add,
// disable and remove keys while MinIO runs, and records every key
// operation with the key name and encryption context, so a test can prove
// which key MinIO used for an object (KMS.ObjectCalls). An unknown key id
// gives kms:KeyNotFound (404), a disabled key kms:NotAuthorized (403).
//
// A container cannot reach the stand-in; it uses MinIO's single built-in
// key instead (KMSSingleKey), named DefaultKMSKey. For an endpoint from the
// environment the harness knows only the keys S3SSE_S3_KMS_KEYS lists.
// Tests that need the stand-in or several keys ask for them with
// Server.RequireKMS and Server.RequireKMSKeys, which skip with the reason
// on other servers.
package s3test
