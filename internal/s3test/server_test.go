package s3test

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedServerStoresSSEKMSUnderTheNamedKey(t *testing.T) {
	srv := Shared(t)
	kms := srv.RequireKMS(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	ctx := context.Background()

	sse, err := encrypt.NewSSEKMS("s3sse-key-a", map[string]string{"tenant": "a"})
	require.NoError(t, err)
	_, err = client.PutObject(ctx, bucket, "obj", bytes.NewReader([]byte("hi")), 2,
		minio.PutObjectOptions{ServerSideEncryption: sse})
	require.NoError(t, err)

	info, err := client.StatObject(ctx, bucket, "obj", minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:kms:s3sse-key-a",
		info.Metadata.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"))

	calls := kms.ObjectCalls(bucket, "obj")
	require.NotEmpty(t, calls, "KMS calls for %s/obj", bucket)
	require.Equal(t, OpGenerate, calls[0].Op)
	require.Equal(t, "s3sse-key-a", calls[0].Key)
	require.Equal(t, "a", calls[0].Context["tenant"])
}
