package s3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

const (
	headerSSE        = "X-Amz-Server-Side-Encryption"
	headerSSEKeyID   = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	headerSSEContext = "X-Amz-Server-Side-Encryption-Context"
)

func put(t *testing.T, c *minio.Client, bucket, object string, sse encrypt.ServerSide) error {
	t.Helper()
	body := []byte("payload of " + object)
	_, err := c.PutObject(context.Background(), bucket, object, bytes.NewReader(body),
		int64(len(body)), minio.PutObjectOptions{ServerSideEncryption: sse})
	return err
}

func read(t *testing.T, c *minio.Client, bucket, object string, sse encrypt.ServerSide) (
	string, error,
) {
	t.Helper()
	obj, err := c.GetObject(context.Background(), bucket, object,
		minio.GetObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return "", err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	return string(b), err
}

func requireS3Error(t *testing.T, err error, wantStatus int, wantCode string, doing string) {
	t.Helper()
	require.Error(t, err, "%s: want %d %s", doing, wantStatus, wantCode)
	resp := minio.ToErrorResponse(err)
	require.Equal(t, wantStatus, resp.StatusCode, "%s: status; error %v", doing, err)
	require.Equal(t, wantCode, resp.Code, "%s: code; error %v", doing, err)
}

func TestSharedServerStarts(t *testing.T) {
	start := time.Now()
	srv := Shared(t)
	t.Logf("shared server from %s at %s, %s (ready or reused in %v)",
		srv.Source(), srv.URL(), srv.KMSMode(), time.Since(start).Round(time.Millisecond))

	require.True(t, srv.Secure(), "shared server serves TLS")
	require.True(t, strings.HasPrefix(srv.URL(), "https://"), "URL %s", srv.URL())
	_, err := srv.Client(t).ListBuckets(context.Background())
	require.NoError(t, err, "list buckets on %s", srv.URL())

	// Only a client trusting the harness's authority gets through.
	_, err = http.Get(srv.URL() + "/minio/health/live")
	require.Error(t, err, "plain client must not trust the test certificate")
	resp, err := (&http.Client{Transport: srv.NewTransport()}).Get(srv.URL() + "/minio/health/live")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.Error(t, srv.Kill(), "Kill on the shared server")
	require.Error(t, srv.Restart(), "Restart on the shared server")
	require.Error(t, srv.Stop(), "Stop on the shared server")
}

// What MinIO stores, and which KMS key and context it used, for each kind
// of upload: the proof tests of s3sse rely on.
func TestSharedServerEncryptsUnderTheRequestedKey(t *testing.T) {
	srv := Shared(t)
	kms := srv.RequireKMS(t)
	keys := srv.RequireKMSKeys(t, 3)
	bucket := srv.NewBucket(t)
	client := srv.Client(t)

	tests := []struct {
		object      string
		sse         func() (encrypt.ServerSide, error)
		wantSSE     string            // X-Amz-Server-Side-Encryption as StatObject reports it
		wantKeyID   string            // KMS key id header; "" when none is reported
		wantKMSKey  string            // key the stand-in saw for the object's data key
		wantContext map[string]string // client context the stand-in saw, besides MinIO's own
	}{
		{
			object: "no-sse",
			sse:    func() (encrypt.ServerSide, error) { return nil, nil },
		},
		{
			object:     "sse-s3",
			sse:        func() (encrypt.ServerSide, error) { return encrypt.NewSSE(), nil },
			wantSSE:    "AES256",
			wantKMSKey: keys[0],
		},
		{
			object: "sse-kms-key-a",
			sse: func() (encrypt.ServerSide, error) {
				return encrypt.NewSSEKMS(keys[1], map[string]string{"tenant": "team-a"})
			},
			wantSSE:     "aws:kms",
			wantKeyID:   "arn:aws:kms:" + keys[1],
			wantKMSKey:  keys[1],
			wantContext: map[string]string{"tenant": "team-a"},
		},
		{
			object: "sse-kms-key-b",
			sse: func() (encrypt.ServerSide, error) {
				return encrypt.NewSSEKMS(keys[2], map[string]string{"tenant": "team-b"})
			},
			wantSSE:     "aws:kms",
			wantKeyID:   "arn:aws:kms:" + keys[2],
			wantKMSKey:  keys[2],
			wantContext: map[string]string{"tenant": "team-b"},
		},
		{
			object: "sse-kms-no-context",
			sse: func() (encrypt.ServerSide, error) {
				return encrypt.NewSSEKMS(keys[1], nil)
			},
			wantSSE:    "aws:kms",
			wantKeyID:  "arn:aws:kms:" + keys[1],
			wantKMSKey: keys[1],
		},
	}
	for _, tt := range tests {
		t.Run(tt.object, func(t *testing.T) {
			sse, err := tt.sse()
			require.NoError(t, err)
			require.NoError(t, put(t, client, bucket, tt.object, sse), "upload %s", tt.object)

			info, err := client.StatObject(context.Background(), bucket, tt.object,
				minio.StatObjectOptions{})
			require.NoError(t, err, "stat %s", tt.object)
			require.Equal(t, tt.wantSSE, info.Metadata.Get(headerSSE), "SSE of %s", tt.object)
			require.Equal(t, tt.wantKeyID, info.Metadata.Get(headerSSEKeyID),
				"key id of %s", tt.object)

			calls := kms.ObjectCalls(bucket, tt.object)
			if tt.wantKMSKey == "" {
				require.Empty(t, calls, "KMS calls for unencrypted %s", tt.object)
				return
			}
			require.NotEmpty(t, calls, "KMS calls for %s", tt.object)
			gen := calls[0]
			require.Equal(t, OpGenerate, gen.Op, "first KMS call for %s", tt.object)
			require.Equal(t, tt.wantKMSKey, gen.Key, "KMS key of %s", tt.object)
			wantContext := map[string]string{bucket: bucket + "/" + tt.object}
			for k, v := range tt.wantContext {
				wantContext[k] = v
			}
			require.Equal(t, wantContext, gen.Context, "KMS context of %s", tt.object)

			// Reading it back unseals the data key under the same key and
			// context, which only a real encryption round trip can do.
			got, err := read(t, client, bucket, tt.object, nil)
			require.NoError(t, err, "read %s", tt.object)
			require.Equal(t, "payload of "+tt.object, got)
			calls = kms.ObjectCalls(bucket, tt.object)
			last := calls[len(calls)-1]
			require.Equal(t, OpDecrypt, last.Op, "last KMS call for %s after a read", tt.object)
			require.Equal(t, tt.wantKMSKey, last.Key, "KMS key used to read %s", tt.object)
			require.Equal(t, http.StatusOK, last.Status)
		})
	}
}

func TestUnknownKMSKeyIsKeyNotFound(t *testing.T) {
	srv := Shared(t)
	if srv.KMSMode() == KMSExternal {
		t.Skipf("an external KMS's answer for unknown keys is not known; %s has %s",
			srv.Source(), srv.KMSMode())
	}
	bucket := srv.NewBucket(t)
	client := srv.Client(t)

	sse, err := encrypt.NewSSEKMS("s3sse-no-such-key", nil)
	require.NoError(t, err)
	err = put(t, client, bucket, "obj", sse)
	requireS3Error(t, err, http.StatusNotFound, "kms:KeyNotFound", "upload under an unknown key")

	_, err = client.StatObject(context.Background(), bucket, "obj", minio.StatObjectOptions{})
	requireS3Error(t, err, http.StatusNotFound, "NoSuchKey", "stat after the failed upload")
}

// A key disabled while MinIO runs must refuse writes under it and reads of
// objects sealed with it, and work again once enabled: how tests simulate
// a revoked tenant key.
func TestDisabledKMSKeyIsRefused(t *testing.T) {
	srv := Shared(t)
	kms := srv.RequireKMS(t)
	key := "s3test-" + strings.ToLower(randomHex(4))
	require.NoError(t, kms.AddKey(key), "add key %s while MinIO runs", key)
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	sse, err := encrypt.NewSSEKMS(key, nil)
	require.NoError(t, err)

	require.NoError(t, put(t, client, bucket, "before", sse), "upload under new key %s", key)

	require.NoError(t, kms.DisableKey(key))
	err = put(t, client, bucket, "during", sse)
	requireS3Error(t, err, http.StatusForbidden, "kms:NotAuthorized", "upload under disabled key")
	_, err = read(t, client, bucket, "before", nil)
	requireS3Error(t, err, http.StatusForbidden, "kms:NotAuthorized", "read under disabled key")

	require.NoError(t, kms.EnableKey(key))
	got, err := read(t, client, bucket, "before", nil)
	require.NoError(t, err, "read once the key is enabled again")
	require.Equal(t, "payload of before", got)
}

func TestSSECRoundTripsOverTLS(t *testing.T) {
	srv := Shared(t)
	if !srv.Secure() {
		t.Skipf("SSE-C needs TLS; %s is plain HTTP", srv.URL())
	}
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	key, err := encrypt.NewSSEC(bytes.Repeat([]byte{0xA1}, 32))
	require.NoError(t, err)
	otherKey, err := encrypt.NewSSEC(bytes.Repeat([]byte{0xB2}, 32))
	require.NoError(t, err)

	require.NoError(t, put(t, client, bucket, "obj", key), "upload with SSE-C")

	got, err := read(t, client, bucket, "obj", key)
	require.NoError(t, err, "read with the same key")
	require.Equal(t, "payload of obj", got)

	_, err = client.StatObject(context.Background(), bucket, "obj",
		minio.StatObjectOptions{ServerSideEncryption: key})
	require.NoError(t, err, "stat with the same key")

	_, err = read(t, client, bucket, "obj", nil)
	requireS3Error(t, err, http.StatusBadRequest, "InvalidRequest", "read without the key")
	_, err = read(t, client, bucket, "obj", otherKey)
	requireS3Error(t, err, http.StatusForbidden, "AccessDenied", "read with another key")
}

func TestDedicatedServerWithoutKMSRefusesSSE(t *testing.T) {
	srv := StartDedicated(t, Options{NoKMS: true})
	require.Equal(t, KMSNone, srv.KMSMode())
	require.Nil(t, srv.KMS())
	bucket := srv.NewBucket(t)
	client := srv.Client(t)

	kmsSSE, err := encrypt.NewSSEKMS(DefaultKMSKey, nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		sse  encrypt.ServerSide
	}{
		{name: "SSE-S3", sse: encrypt.NewSSE()},
		{name: "SSE-KMS", sse: kmsSSE},
	}
	for _, tt := range tests {
		err := put(t, client, bucket, tt.name, tt.sse)
		requireS3Error(t, err, http.StatusNotImplemented, "NotImplemented", tt.name+" upload")
	}
	require.NoError(t, put(t, client, bucket, "plain", nil), "upload without SSE")
}

func TestDedicatedPlainHTTPServer(t *testing.T) {
	srv := StartDedicated(t, Options{PlainHTTP: true, KMSKeys: []string{"only-key"}})
	require.False(t, srv.Secure())
	require.True(t, strings.HasPrefix(srv.URL(), "http://"), "URL %s", srv.URL())
	require.Equal(t, "only-key", srv.DefaultKMSKey())
	bucket := srv.NewBucket(t)
	client := srv.Client(t)

	require.NoError(t, put(t, client, bucket, "obj", encrypt.NewSSE()), "SSE-S3 upload")
	calls := srv.KMS().ObjectCalls(bucket, "obj")
	require.NotEmpty(t, calls)
	require.Equal(t, "only-key", calls[0].Key, "SSE-S3 uses the default key")
}

// A killed server comes back on the same address with its data and keys,
// and clients made before the kill work again without being remade.
func TestDedicatedServerKillAndRestart(t *testing.T) {
	srv := StartDedicated(t, Options{})
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	keys := srv.RequireKMSKeys(t, 2)
	sse, err := encrypt.NewSSEKMS(keys[1], map[string]string{"tenant": "a"})
	require.NoError(t, err)
	require.NoError(t, put(t, client, bucket, "before", sse))
	endpoint := srv.Endpoint()

	start := time.Now()
	require.NoError(t, srv.Kill())
	t.Logf("killed in %v", time.Since(start).Round(time.Millisecond))
	// A client that does not retry, so the test does not wait out backoff.
	opts := srv.ClientOptions()
	opts.MaxRetries = 1
	once, err := minio.New(srv.Endpoint(), opts)
	require.NoError(t, err)
	_, err = once.StatObject(context.Background(), bucket, "before", minio.StatObjectOptions{})
	require.Error(t, err, "stat while the server is down")

	start = time.Now()
	require.NoError(t, srv.Restart())
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))
	require.Equal(t, endpoint, srv.Endpoint(), "endpoint after restart")

	got, err := read(t, client, bucket, "before", nil)
	require.NoError(t, err, "read an object written before the kill")
	require.Equal(t, "payload of before", got)
	require.NoError(t, put(t, client, bucket, "after", sse), "upload after the restart")

	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Stop(), "stopping a stopped server")
	require.NoError(t, srv.Restart(), "restart after a graceful stop")
	_, err = read(t, client, bucket, "after", nil)
	require.NoError(t, err, "read after the second restart")

	// Start, writes, reads, a crash and two restarts: MinIO must not have
	// needed any KES API the stand-in lacks.
	for _, call := range srv.KMS().Calls() {
		require.NotEqual(t, http.StatusNotImplemented, call.Status,
			"MinIO called %s, which the stand-in does not implement", call.Op)
	}
}

// Launch is for programs outside tests: the caller closes the server, and
// closing leaves nothing running and nothing on disk.
func TestLaunchAndClose(t *testing.T) {
	srv, err := Launch(context.Background(), Options{})
	if errors.Is(err, ErrNoServer) {
		skipNoServer(t, err.Error())
	}
	require.NoError(t, err, "launch a server")
	dir := srv.dir

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(srv.CACertPEM()), "CACertPEM holds a certificate")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL() + "/minio/health/live")
	require.NoError(t, err, "reach %s trusting only CACertPEM", srv.URL())
	resp.Body.Close()
	tr.CloseIdleConnections()

	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "second Close")
	_, err = net.DialTimeout("tcp", srv.Endpoint(), time.Second)
	require.Error(t, err, "MinIO still listens at %s after Close", srv.Endpoint())
	if dir != "" {
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist, "server dir %s after Close", dir)
	}

	require.Error(t, Shared(t).Close(), "Close on the shared server")
}
