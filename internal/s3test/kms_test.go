package s3test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func startTestKMS(t *testing.T, keys ...string) *KMS {
	t.Helper()
	k, err := startKMS(keys)
	require.NoError(t, err, "start KMS stand-in with keys %v", keys)
	t.Cleanup(func() { _ = k.close() })
	return k
}

// kesClient is an HTTPS client that authenticates to the stand-in the way
// MinIO's KES client does: a self-signed certificate for the API key's
// Ed25519 key.
func kesClient(t *testing.T, apiKey string) *http.Client {
	t.Helper()

	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(apiKey, "kes:v1:"))
	require.NoError(t, err, "decode API key")
	require.Len(t, raw, 1+ed25519.SeedSize, "API key length")
	priv := ed25519.NewKeyFromSeed(raw[1:])

	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kes client"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, priv.Public(), priv)
	require.NoError(t, err, "create client certificate")

	ca, err := testAuthority()
	require.NoError(t, err)
	tr := newClientTransport(ca.pool, false)
	tr.TLSClientConfig.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// otherAPIKey returns a well-formed API key the stand-in does not know.
func otherAPIKey(t *testing.T) string {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	_, err := rand.Read(seed)
	require.NoError(t, err)
	return "kes:v1:" + base64.StdEncoding.EncodeToString(append([]byte{0}, seed...))
}

type kesResponse struct {
	status      int
	contentType string
	body        map[string]any
}

func kesDo(t *testing.T, c *http.Client, method, url string, body any) kesResponse {
	t.Helper()
	var payload []byte
	if body != nil {
		var err error
		payload, err = json.Marshal(body)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(payload))
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err, "%s %s", method, url)
	defer resp.Body.Close()

	out := kesResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	_ = json.NewDecoder(resp.Body).Decode(&out.body)
	return out
}

// The stand-in must answer errors exactly as KES does: MinIO's client
// compares status and message to recognise them, and only then reports
// kms:KeyNotFound or kms:NotAuthorized.
func TestKMSAnswersLikeKES(t *testing.T) {
	kms := startTestKMS(t, "key-a", "key-b")
	require.NoError(t, kms.AddKey("disabled"))
	require.NoError(t, kms.DisableKey("disabled"))
	client := kesClient(t, kms.apiKey)
	ctxA := []byte(`{"bucket":"bucket/a"}`)

	tests := []struct {
		name        string
		client      *http.Client // nil: the client holding the stand-in's API key
		method, api string
		body        any
		wantStatus  int
		wantMessage string // for errors: KES's message, which MinIO matches exactly
		wantFields  []string
	}{
		{
			name: "generate under a known key", method: http.MethodPost,
			api: "/v1/key/generate/key-a", body: map[string][]byte{"context": ctxA},
			wantStatus: http.StatusOK, wantFields: []string{"plaintext", "ciphertext"},
		},
		{
			name: "generate under an unknown key", method: http.MethodPost,
			api: "/v1/key/generate/nope", body: map[string][]byte{"context": ctxA},
			wantStatus: http.StatusNotFound, wantMessage: "key does not exist",
		},
		{
			name: "generate under a disabled key", method: http.MethodPost,
			api: "/v1/key/generate/disabled", body: map[string][]byte{},
			wantStatus: http.StatusForbidden, wantMessage: "not authorized: insufficient permissions",
		},
		{
			name: "create an existing key", method: http.MethodPost, api: "/v1/key/create/key-a",
			wantStatus: http.StatusBadRequest, wantMessage: "key already exists",
		},
		{
			name: "describe a key", method: http.MethodGet, api: "/v1/key/describe/key-b",
			wantStatus: http.StatusOK, wantFields: []string{"name", "algorithm", "created_at"},
		},
		{
			name: "hmac with a key", method: http.MethodPut, api: "/v1/key/hmac/key-b",
			body:       map[string][]byte{"message": []byte("root access key")},
			wantStatus: http.StatusOK, wantFields: []string{"hmac"},
		},
		{
			name: "a client with another API key", client: kesClient(t, otherAPIKey(t)),
			method: http.MethodPost, api: "/v1/key/generate/key-a", body: map[string][]byte{},
			wantStatus: http.StatusForbidden, wantMessage: "not authorized: insufficient permissions",
		},
		{
			name: "an endpoint MinIO does not call", method: http.MethodGet, api: "/v1/metrics",
			wantStatus: http.StatusNotImplemented,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			if c == nil {
				c = client
			}
			got := kesDo(t, c, tt.method, kms.Endpoint()+tt.api, tt.body)
			require.Equal(t, tt.wantStatus, got.status, "%s %s: status", tt.method, tt.api)
			if tt.wantMessage != "" {
				require.Equal(t, "application/json", got.contentType, "%s %s", tt.method, tt.api)
				require.Equal(t, tt.wantMessage, got.body["message"], "%s %s", tt.method, tt.api)
			}
			for _, f := range tt.wantFields {
				require.Contains(t, got.body, f, "%s %s: response %v", tt.method, tt.api, got.body)
			}
		})
	}
}

// A sealed data key opens only with the same key and the same context,
// and only while the key is enabled.
func TestKMSSealsDataKeysUnderKeyAndContext(t *testing.T) {
	kms := startTestKMS(t, "key-a", "key-b")
	plaintext := []byte("0123456789abcdef0123456789abcdef")
	ctxA := []byte(`{"bucket":"bucket/a"}`)
	sealed, err := kms.seal("key-a", plaintext, ctxA)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), string(plaintext), "ciphertext holds the plaintext")

	tests := []struct {
		name    string
		prepare func(t *testing.T) // changes the key state before opening
		key     string
		context []byte
		wantErr error // nil: opens to the plaintext
	}{
		{name: "same key and context", key: "key-a", context: ctxA},
		{name: "other context", key: "key-a", context: []byte(`{"bucket":"bucket/b"}`),
			wantErr: errKESDecrypt},
		{name: "no context", key: "key-a", wantErr: errKESDecrypt},
		{name: "other key", key: "key-b", context: ctxA, wantErr: errKESDecrypt},
		{name: "unknown key", key: "key-z", context: ctxA, wantErr: errKESKeyNotFound},
		{
			name:    "disabled key",
			prepare: func(t *testing.T) { require.NoError(t, kms.DisableKey("key-a")) },
			key:     "key-a", context: ctxA, wantErr: errKESNotAllowed,
		},
		{
			name:    "enabled again",
			prepare: func(t *testing.T) { require.NoError(t, kms.EnableKey("key-a")) },
			key:     "key-a", context: ctxA,
		},
		{
			name:    "removed key",
			prepare: func(t *testing.T) { require.NoError(t, kms.RemoveKey("key-a")) },
			key:     "key-a", context: ctxA, wantErr: errKESKeyNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			got, err := kms.open(tt.key, sealed, tt.context)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, "open under %s with context %s", tt.key, tt.context)
				return
			}
			require.NoError(t, err, "open under %s with context %s", tt.key, tt.context)
			require.Equal(t, plaintext, got)
		})
	}
}

func TestKMSKeyManagement(t *testing.T) {
	kms := startTestKMS(t, "key-a")

	require.NoError(t, kms.AddKey("key-b"))
	require.Equal(t, []string{"key-a", "key-b"}, kms.KeyNames())
	require.ErrorIs(t, kms.AddKey("key-a"), errKESKeyExists, "add an existing key")
	require.Error(t, kms.DisableKey("key-z"), "disable an unknown key")
	require.Error(t, kms.RemoveKey("key-z"), "remove an unknown key")

	for _, name := range []string{"", "a/b", "a b", "ä", strings.Repeat("k", 81)} {
		require.Error(t, kms.AddKey(name), "add key named %q", name)
	}
}

// Calls must let a test tell which key and context MinIO used for one
// object among all the others.
func TestKMSRecordsCallsPerObject(t *testing.T) {
	kms := startTestKMS(t, "key-a", "key-b")
	client := kesClient(t, kms.apiKey)
	generate := func(key, context string) {
		t.Helper()
		got := kesDo(t, client, http.MethodPost, kms.Endpoint()+"/v1/key/generate/"+key,
			map[string][]byte{"context": []byte(context)})
		require.NotZero(t, got.status)
	}
	generate("key-a", `{"b":"b/one","tenant":"a"}`)
	generate("key-b", `{"b":"b/two"}`)
	generate("key-z", `{"b":"b/one"}`)

	calls := kms.ObjectCalls("b", "one")
	require.Len(t, calls, 2, "calls for b/one: %+v", calls)
	require.Equal(t, OpGenerate, calls[0].Op)
	require.Equal(t, "key-a", calls[0].Key)
	require.Equal(t, map[string]string{"b": "b/one", "tenant": "a"}, calls[0].Context)
	require.Equal(t, http.StatusOK, calls[0].Status)
	require.Equal(t, "key-z", calls[1].Key)
	require.Equal(t, http.StatusNotFound, calls[1].Status)

	// Calls hands out copies: changing one must not change the record.
	calls[0].Context["tenant"] = "changed"
	require.Equal(t, "a", kms.ObjectCalls("b", "one")[0].Context["tenant"])
}
