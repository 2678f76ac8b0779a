package s3sse_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3test"
)

// BenchmarkUpload compares an upload through a tenant's view with a bare
// minio-go PutObject carrying the same SSE, on the same server: the
// difference is what the wrapper costs. Run the two in one go and compare
// them with benchstat; the machine's noise is larger than either's spread.
func BenchmarkUpload(b *testing.B) {
	srv := s3test.Shared(b)
	keys := srv.RequireKMSKeys(b, 2)
	bucket := srv.NewBucket(b)
	client := srv.Client(b)

	benchmarkUploads(b, client, bucket, keys[1])
}

// benchmarkUploads runs the bare and wrapped uploads of 1 KiB, 1 MiB and
// 64 MiB into bucket, both under tenant-a's SSE-KMS with kmsKey.
func benchmarkUploads(b *testing.B, client *minio.Client, bucket, kmsKey string) {
	r, err := s3sse.NewResolver(s3sse.Config{}, newOverrides(map[string]override{
		"tenant-a": {typ: "SSE-KMS", keyID: kmsKey, context: `{"tenant":"a"}`},
	}), nil)
	require.NoError(b, err)
	wrapped, err := s3sse.NewBucket(client, bucket, r, nil)
	require.NoError(b, err)
	tenant, err := wrapped.Tenant("tenant-a")
	require.NoError(b, err)
	sse, err := r.Resolve("tenant-a")
	require.NoError(b, err)

	ctx := context.Background()
	for _, size := range []int{1 << 10, 1 << 20, 64 << 20} {
		body := make([]byte, size)
		b.Run(fmt.Sprintf("size=%s/bare", sizeName(size)), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_, err := client.PutObject(ctx, bucket, "bare", bytes.NewReader(body), int64(size),
					minio.PutObjectOptions{ServerSideEncryption: sse, PartSize: s3sse.DefaultPartSize})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("size=%s/wrapper", sizeName(size)), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := tenant.Upload(ctx, "wrapped", bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkUploadOverhead is BenchmarkUpload against an in-process
// endpoint that reads each request and answers 200, so that the client's
// own cost is not hidden under the disk and the network of a real server.
// It measures only what the wrapper adds; what the server stores is what
// BenchmarkUpload and the tests look at.
func BenchmarkUploadOverhead(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(sink.Close)

	client, err := minio.New(strings.TrimPrefix(sink.URL, "http://"), &minio.Options{
		Creds:  credentials.NewStaticV4("access", "secret-access", ""),
		Region: "us-east-1",
	})
	require.NoError(b, err)
	benchmarkUploads(b, client, "bucket", "key-a")
}
