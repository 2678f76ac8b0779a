package s3sse

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStoredEncryptionOfReadsTheResponseHeaders(t *testing.T) {
	ctx := base64.StdEncoding.EncodeToString([]byte(`{"tenant":"a"}`))
	for _, tc := range []struct {
		name    string
		headers map[string]string // response headers of a HEAD
		want    StoredEncryption
	}{
		{"none", nil, StoredEncryption{}},
		{"SSE-S3", map[string]string{"X-Amz-Server-Side-Encryption": "AES256"},
			StoredEncryption{Type: TypeSSES3}},
		{"SSE-KMS", map[string]string{
			"X-Amz-Server-Side-Encryption":                "aws:kms",
			"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "arn:aws:kms:key-a",
			"X-Amz-Server-Side-Encryption-Context":        ctx,
		}, StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:key-a",
			Context: map[string]string{"tenant": "a"}}},
		{"DSSE-KMS", map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms:dsse"},
			StoredEncryption{Type: TypeDSSEKMS}},
		{"SSE-C", map[string]string{
			"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
			"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   "bWQ1",
		}, StoredEncryption{Type: TypeSSEC, CustomerKeyMD5: "bWQ1"}},
		{"context that is not base64 JSON is dropped", map[string]string{
			"X-Amz-Server-Side-Encryption":         "aws:kms",
			"X-Amz-Server-Side-Encryption-Context": "%%%",
		}, StoredEncryption{Type: TypeSSEKMS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			require.Equal(t, tc.want, StoredEncryptionOf(h), "headers %v", tc.headers)
		})
	}
}

func TestStoredEncryptionSatisfies(t *testing.T) {
	key := newCustomerKey([customerKeyLen]byte{1, 2, 3}, "current.key")
	other := newCustomerKey([customerKeyLen]byte{4, 5, 6}, "other.key")
	none := &Encryption{}
	sseS3 := &Encryption{typ: TypeSSES3}
	kmsA := &Encryption{typ: TypeSSEKMS, keyID: "key-a",
		context: map[string]string{"tenant": "a"}, contextJSON: []byte(`{"tenant":"a"}`)}
	kmsManaged := &Encryption{typ: TypeSSEKMS}
	sseC := &Encryption{typ: TypeSSEC, readKeys: []*customerKey{key}}

	for _, tc := range []struct {
		name   string
		stored StoredEncryption
		want   *Encryption
		ok     bool
	}{
		{"no policy takes the bucket default", StoredEncryption{Type: TypeSSES3}, none, true},
		{"no policy takes unencrypted", StoredEncryption{}, none, true},
		{"no policy refuses SSE-C", StoredEncryption{Type: TypeSSEC, CustomerKeyMD5: key.md5}, none, false},
		{"SSE-S3 wanted, none stored", StoredEncryption{}, sseS3, false},
		{"SSE-S3", StoredEncryption{Type: TypeSSES3}, sseS3, true},
		{"MinIO ARN of the key", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:key-a",
			Context: map[string]string{"tenant": "a"}}, kmsA, true},
		{"AWS ARN of the key", StoredEncryption{Type: TypeSSEKMS,
			KMSKeyID: "arn:aws:kms:eu-west-1:111122223333:key/key-a",
			Context:  map[string]string{"tenant": "a"}}, kmsA, true},
		{"another key", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:key-b",
			Context: map[string]string{"tenant": "a"}}, kmsA, false},
		{"a key whose name ends like it", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:other-key-a",
			Context: map[string]string{"tenant": "a"}}, kmsA, false},
		{"another context", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:key-a",
			Context: map[string]string{"tenant": "b"}}, kmsA, false},
		{"no context", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:key-a"}, kmsA, false},
		{"managed key takes any key", StoredEncryption{Type: TypeSSEKMS, KMSKeyID: "arn:aws:kms:x"},
			kmsManaged, true},
		{"SSE-C under the current key", StoredEncryption{Type: TypeSSEC, CustomerKeyMD5: key.md5}, sseC, true},
		{"SSE-C under another key", StoredEncryption{Type: TypeSSEC, CustomerKeyMD5: other.md5}, sseC, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := tc.stored.Satisfies(tc.want)
			require.Equal(t, tc.ok, ok, "stored %s, want %s: reason %q", tc.stored, tc.want, reason)
			require.Equal(t, ok, reason == "", "a reason is given exactly when it does not satisfy")
		})
	}
}
