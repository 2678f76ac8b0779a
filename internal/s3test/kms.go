package s3test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// KMSOp names a key operation MinIO asked the KMS stand-in for.
type KMSOp string

// The operations the stand-in records. MinIO calls Generate for every
// object it encrypts with SSE-S3 or SSE-KMS (and for every readiness probe),
// and Decrypt for every read of such an object.
const (
	OpGenerate KMSOp = "generate" // new data key under a KMS key, bound to a context
	OpDecrypt  KMSOp = "decrypt"  // unseal a data key; the context must match
	OpEncrypt  KMSOp = "encrypt"  // seal caller-given plaintext
	OpHMAC     KMSOp = "hmac"     // keyed hash; MinIO uses it to derive root credentials
	OpCreate   KMSOp = "create"   // create a key; MinIO creates its default key if missing
	OpImport   KMSOp = "import"   // create a key from given material
	OpDescribe KMSOp = "describe" // key metadata; MinIO polls its default key every 10s
	OpDelete   KMSOp = "delete"   // delete a key
)

// Requests for any other KES API are answered 501 Not Implemented and
// recorded with Op set to their method and path, such as "GET /v1/metrics",
// so a test can see that MinIO asked for something the stand-in lacks.

// KMSCall is one key operation the stand-in served (or refused).
type KMSCall struct {
	// Op is the operation.
	Op KMSOp
	// Key is the KMS key name, as MinIO sent it.
	Key string
	// Context is the encryption context bound to the data key, decoded from
	// the JSON MinIO sent: nil when none was sent, empty when MinIO sent {}.
	// For an object MinIO adds {"<bucket>": "<bucket>/<object>"} to any
	// context the client gave.
	Context map[string]string
	// Status is the HTTP status the stand-in answered: 200, or the status
	// of the KES error (404 key not found, 403 key disabled, 400 and so on).
	Status int
	// Time is when the stand-in received the call.
	Time time.Time
}

// KMS errors, written the way KES writes them so MinIO's KES client maps
// them to its own: a missing key becomes kms:KeyNotFound (404), a refused
// one kms:NotAuthorized (403).
var (
	errKESNotAllowed  = kesError{http.StatusForbidden, "not authorized: insufficient permissions"}
	errKESKeyNotFound = kesError{http.StatusNotFound, "key does not exist"}
	errKESKeyExists   = kesError{http.StatusBadRequest, "key already exists"}
	errKESDecrypt     = kesError{
		http.StatusBadRequest, "decryption failed: ciphertext is not authentic",
	}
)

type kesError struct {
	status  int
	message string
}

func (e kesError) Error() string { return e.message }

// KMS is a key server that speaks the part of the KES protocol MinIO uses
// (MINIO_KMS_KES_ENDPOINT), for tests that need several distinct KMS keys
// or need to see which key and context MinIO used for an object.
//
// Data keys are real: they are random, sealed with AES-256-GCM under the
// named key with the encryption context as associated data, so a wrong key
// or context cannot unseal them. Keys live in memory only. The stand-in
// authenticates its client by the API key it generated, over TLS with a
// certificate from the harness's authority.
//
// Keys can be added, disabled and removed while MinIO runs. A disabled key
// refuses every operation with KES's "not authorized" error, which MinIO
// reports as 403 kms:NotAuthorized; a removed key gives 404 kms:KeyNotFound.
//
// A KMS is safe for concurrent use.
type KMS struct {
	listener net.Listener
	server   *http.Server
	caPEM    []byte
	apiKey   string // kes:v1:<base64>, a secret: never logged
	identity string // hex SHA-256 of the client's public key
	started  time.Time

	mu    sync.Mutex
	keys  map[string]*kmsKey
	calls []KMSCall
}

type kmsKey struct {
	material []byte
	aead     cipher.AEAD
	created  time.Time
	disabled bool
}

// startKMS starts a stand-in on a free loopback port holding keys.
func startKMS(keys []string) (*KMS, error) {
	ca, err := testAuthority()
	if err != nil {
		return nil, err
	}
	cert, err := ca.issue()
	if err != nil {
		return nil, err
	}

	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate KES API key: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode KES API key: %w", err)
	}
	sum := sha256.Sum256(spki)

	k := &KMS{
		caPEM:    ca.certPEM,
		apiKey:   "kes:v1:" + base64.StdEncoding.EncodeToString(append([]byte{0}, seed...)),
		identity: hex.EncodeToString(sum[:]),
		started:  time.Now(),
		keys:     make(map[string]*kmsKey),
	}
	for _, name := range keys {
		if err := k.AddKey(name); err != nil {
			return nil, err
		}
	}

	// KES identifies clients by their certificate's public key, not by a
	// chain, so any certificate is accepted here and checked per request.
	tlsConfig := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert.tls},
		ClientAuth:   tls.RequireAnyClientCert,
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	if err != nil {
		return nil, fmt.Errorf("listen for KES stand-in: %w", err)
	}
	k.listener = ln
	k.server = &http.Server{
		Handler:           k.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		// MinIO closing idle connections shows up as handshake and read
		// errors that say nothing about the test; keep them out of its output.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() { _ = k.server.Serve(ln) }()
	return k, nil
}

// Endpoint returns the stand-in's base URL, https://127.0.0.1:<port>.
func (k *KMS) Endpoint() string { return "https://" + k.listener.Addr().String() }

// close stops the stand-in and drops its connections.
func (k *KMS) close() error { return k.server.Close() }

// AddKey creates a 256-bit key named name. It fails if the name is empty,
// is not a valid KES key name, or already exists.
func (k *KMS) AddKey(name string) error {
	if err := validKeyName(name); err != nil {
		return err
	}
	material := make([]byte, 32)
	if _, err := rand.Read(material); err != nil {
		return fmt.Errorf("generate KMS key %q: %w", name, err)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	return k.addKeyLocked(name, material)
}

func (k *KMS) addKeyLocked(name string, material []byte) error {
	if _, ok := k.keys[name]; ok {
		return fmt.Errorf("add KMS key %q: %w", name, errKESKeyExists)
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		return fmt.Errorf("add KMS key %q: %w", name, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("add KMS key %q: %w", name, err)
	}
	k.keys[name] = &kmsKey{material: material, aead: aead, created: time.Now().UTC()}
	return nil
}

// DisableKey makes every later operation with the key fail as KES fails
// when its policy denies a key: MinIO answers 403 kms:NotAuthorized for
// writes under the key and reads of objects sealed with it. The key keeps
// its material; EnableKey undoes this. It fails if the key does not exist.
func (k *KMS) DisableKey(name string) error { return k.setDisabled(name, true) }

// EnableKey undoes DisableKey. It fails if the key does not exist.
func (k *KMS) EnableKey(name string) error { return k.setDisabled(name, false) }

func (k *KMS) setDisabled(name string, disabled bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()

	key, ok := k.keys[name]
	if !ok {
		return fmt.Errorf("KMS key %q: %w (keys: %s)", name, errKESKeyNotFound,
			strings.Join(k.keyNamesLocked(), ", "))
	}
	key.disabled = disabled
	return nil
}

// RemoveKey deletes the key and its material: objects sealed under it can
// never be read again, and MinIO answers 404 kms:KeyNotFound for them. It
// fails if the key does not exist.
func (k *KMS) RemoveKey(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()

	if _, ok := k.keys[name]; !ok {
		return fmt.Errorf("KMS key %q: %w", name, errKESKeyNotFound)
	}
	delete(k.keys, name)
	return nil
}

// KeyNames returns the names of the keys the stand-in holds, disabled ones
// included, sorted.
func (k *KMS) KeyNames() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keyNamesLocked()
}

func (k *KMS) keyNamesLocked() []string {
	names := make([]string, 0, len(k.keys))
	for name := range k.keys {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Calls returns a copy of every key operation served so far, oldest first.
func (k *KMS) Calls() []KMSCall {
	k.mu.Lock()
	defer k.mu.Unlock()

	out := make([]KMSCall, len(k.calls))
	for i, c := range k.calls {
		out[i] = c
		out[i].Context = cloneContext(c.Context)
	}
	return out
}

// ObjectCalls returns the key operations MinIO made for one object, oldest
// first: those whose context binds the data key to <bucket>/<object>, as
// MinIO does for every SSE-S3 and SSE-KMS object unless the client's own
// context already has a key named like the bucket.
func (k *KMS) ObjectCalls(bucket, object string) []KMSCall {
	want := bucket + "/" + object
	var out []KMSCall
	for _, c := range k.Calls() {
		if c.Context[bucket] == want {
			out = append(out, c)
		}
	}
	return out
}

func cloneContext(c map[string]string) map[string]string {
	if c == nil {
		return nil
	}
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// minioEnv returns the environment that points MinIO at the stand-in with
// defaultKey as its default key. caFile is where the authority's
// certificate has been written.
func (k *KMS) minioEnv(defaultKey, caFile string) []string {
	return []string{
		"MINIO_KMS_KES_ENDPOINT=" + k.Endpoint(),
		"MINIO_KMS_KES_API_KEY=" + k.apiKey,
		"MINIO_KMS_KES_CAPATH=" + caFile,
		"MINIO_KMS_KES_KEY_NAME=" + defaultKey,
	}
}

// validKeyName applies KES's rule for key names, so a test cannot create a
// key MinIO could never name.
func validKeyName(name string) error {
	if name == "" || len(name) > 80 {
		return fmt.Errorf("invalid KMS key name %q: want 1 to 80 characters", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("invalid KMS key name %q: want letters, digits, '-', '_' or '.'",
				name)
		}
	}
	return nil
}

// The KES API as MinIO's client (github.com/minio/kms-go/kes) calls it.
// Request and response bodies are JSON; []byte fields travel as base64.
func (k *KMS) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", k.handleVersion)
	mux.HandleFunc("GET /v1/ready", k.authenticated(k.handleReady))
	mux.HandleFunc("GET /v1/status", k.authenticated(k.handleStatus))
	mux.HandleFunc("GET /v1/api", k.authenticated(k.handleAPI))
	mux.HandleFunc("POST /v1/key/create/{name}", k.authenticated(k.handleCreate))
	mux.HandleFunc("POST /v1/key/import/{name}", k.authenticated(k.handleImport))
	mux.HandleFunc("GET /v1/key/describe/{name}", k.authenticated(k.handleDescribe))
	mux.HandleFunc("DELETE /v1/key/delete/{name}", k.authenticated(k.handleDelete))
	mux.HandleFunc("POST /v1/key/generate/{name}", k.authenticated(k.handleGenerate))
	mux.HandleFunc("POST /v1/key/encrypt/{name}", k.authenticated(k.handleEncrypt))
	mux.HandleFunc("POST /v1/key/decrypt/{name}", k.authenticated(k.handleDecrypt))
	mux.HandleFunc("PUT /v1/key/hmac/{name}", k.authenticated(k.handleHMAC))
	mux.HandleFunc("GET /v1/key/list", k.authenticated(k.handleList))
	mux.HandleFunc("GET /v1/key/list/{prefix...}", k.authenticated(k.handleList))
	// TODO: /v1/metrics (Prometheus text) is left out; MinIO asks for it only
	// when its own KMS metrics are scraped, and treats 501 as "not supported".
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		err := kesError{http.StatusNotImplemented, "not implemented: " + r.URL.Path}
		k.record(KMSOp(r.Method+" "+r.URL.Path), "", nil, err)
		writeKESError(w, err)
	})
	return mux
}

// authenticated admits only the client holding the stand-in's API key, as
// KES does: by the SHA-256 of the client certificate's public key.
func (k *KMS) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			writeKESError(w, errKESNotAllowed)
			return
		}
		sum := sha256.Sum256(r.TLS.PeerCertificates[0].RawSubjectPublicKeyInfo)
		got := hex.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(got), []byte(k.identity)) != 1 {
			writeKESError(w, errKESNotAllowed)
			return
		}
		next(w, r)
	}
}

func (k *KMS) handleVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{"version": "s3sse-kes-stand-in"})
}

func (k *KMS) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func (k *KMS) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"version":      "s3sse-kes-stand-in",
		"os":           runtime.GOOS,
		"arch":         runtime.GOARCH,
		"uptime":       time.Since(k.started).Round(time.Second).Seconds(),
		"num_cpu":      runtime.NumCPU(),
		"num_cpu_used": runtime.GOMAXPROCS(0),
	})
}

func (k *KMS) handleAPI(w http.ResponseWriter, _ *http.Request) {
	type api struct {
		Method  string `json:"method"`
		Path    string `json:"path"`
		MaxBody int64  `json:"max_body"`
		Timeout int64  `json:"timeout"`
	}
	apis := []api{
		{Method: http.MethodGet, Path: "/version"},
		{Method: http.MethodGet, Path: "/v1/ready"},
		{Method: http.MethodGet, Path: "/v1/status"},
		{Method: http.MethodGet, Path: "/v1/api"},
		{Method: http.MethodPost, Path: "/v1/key/create/"},
		{Method: http.MethodPost, Path: "/v1/key/import/", MaxBody: maxKESBody},
		{Method: http.MethodGet, Path: "/v1/key/describe/"},
		{Method: http.MethodDelete, Path: "/v1/key/delete/"},
		{Method: http.MethodPost, Path: "/v1/key/generate/", MaxBody: maxKESBody},
		{Method: http.MethodPost, Path: "/v1/key/encrypt/", MaxBody: maxKESBody},
		{Method: http.MethodPost, Path: "/v1/key/decrypt/", MaxBody: maxKESBody},
		{Method: http.MethodPut, Path: "/v1/key/hmac/", MaxBody: maxKESBody},
		{Method: http.MethodGet, Path: "/v1/key/list/"},
	}
	for i := range apis {
		apis[i].Timeout = 15
	}
	writeJSON(w, apis)
}

func (k *KMS) handleCreate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := k.AddKey(name)
	if errors.Is(err, errKESKeyExists) {
		err = errKESKeyExists
	} else if err != nil {
		err = kesError{http.StatusBadRequest, err.Error()}
	}
	k.record(OpCreate, name, nil, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (k *KMS) handleImport(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Key    []byte `json:"key"`
		Cipher string `json:"cipher"`
	}
	err := readJSON(r, &req)
	if err == nil {
		err = importKey(k, name, req.Key, req.Cipher)
	}
	k.record(OpImport, name, nil, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func importKey(k *KMS, name string, material []byte, algorithm string) error {
	if err := validKeyName(name); err != nil {
		return kesError{http.StatusBadRequest, err.Error()}
	}
	if algorithm != "" && algorithm != "AES256" {
		return kesError{http.StatusBadRequest, "unsupported cipher " + algorithm + ": want AES256"}
	}
	if len(material) != 32 {
		return kesError{http.StatusBadRequest, "invalid key: want 32 bytes"}
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.addKeyLocked(name, bytes.Clone(material)); err != nil {
		if errors.Is(err, errKESKeyExists) {
			return errKESKeyExists
		}
		return kesError{http.StatusBadRequest, err.Error()}
	}
	return nil
}

func (k *KMS) handleDescribe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	key, err := k.usableKey(name)
	k.record(OpDescribe, name, nil, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	writeJSON(w, map[string]any{
		"name":       name,
		"algorithm":  "AES256",
		"created_at": key.created,
		"created_by": k.identity,
	})
}

func (k *KMS) handleDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := k.RemoveKey(name)
	if err != nil {
		err = errKESKeyNotFound
	}
	k.record(OpDelete, name, nil, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (k *KMS) handleGenerate(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Context []byte `json:"context"`
	}
	err := readJSON(r, &req)
	var plaintext, ciphertext []byte
	if err == nil {
		plaintext = make([]byte, 32)
		if _, err = rand.Read(plaintext); err == nil {
			ciphertext, err = k.seal(name, plaintext, req.Context)
		}
	}
	k.record(OpGenerate, name, req.Context, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	writeJSON(w, map[string][]byte{"plaintext": plaintext, "ciphertext": ciphertext})
}

func (k *KMS) handleEncrypt(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Plaintext []byte `json:"plaintext"`
		Context   []byte `json:"context"`
	}
	err := readJSON(r, &req)
	var ciphertext []byte
	if err == nil {
		ciphertext, err = k.seal(name, req.Plaintext, req.Context)
	}
	k.record(OpEncrypt, name, req.Context, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	writeJSON(w, map[string][]byte{"ciphertext": ciphertext})
}

func (k *KMS) handleDecrypt(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Ciphertext []byte `json:"ciphertext"`
		Context    []byte `json:"context"`
	}
	err := readJSON(r, &req)
	var plaintext []byte
	if err == nil {
		plaintext, err = k.open(name, req.Ciphertext, req.Context)
	}
	k.record(OpDecrypt, name, req.Context, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	writeJSON(w, map[string][]byte{"plaintext": plaintext})
}

func (k *KMS) handleHMAC(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Message []byte `json:"message"`
	}
	err := readJSON(r, &req)
	var sum []byte
	if err == nil {
		var key *kmsKey
		if key, err = k.usableKey(name); err == nil {
			mac := hmac.New(sha256.New, key.material)
			mac.Write(req.Message)
			sum = mac.Sum(nil)
		}
	}
	k.record(OpHMAC, name, nil, err)
	if err != nil {
		writeKESError(w, err)
		return
	}
	writeJSON(w, map[string][]byte{"hmac": sum})
}

// handleList lists key names starting with the prefix; a trailing "*" is
// accepted as older clients send a pattern.
func (k *KMS) handleList(w http.ResponseWriter, r *http.Request) {
	prefix := strings.TrimSuffix(r.PathValue("prefix"), "*")
	var names []string
	for _, name := range k.KeyNames() {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	writeJSON(w, map[string]any{"names": names, "continue_at": ""})
}

// usableKey returns the key, or the KES error MinIO must see for it.
func (k *KMS) usableKey(name string) (*kmsKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()

	key, ok := k.keys[name]
	switch {
	case !ok:
		return nil, errKESKeyNotFound
	case key.disabled:
		return nil, errKESNotAllowed
	}
	return key, nil
}

// seal encrypts plaintext under the named key; the context is associated
// data, so only the same context opens it again. Output: nonce | sealed.
func (k *KMS) seal(name string, plaintext, context []byte) ([]byte, error) {
	key, err := k.usableKey(name)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, key.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, kesError{http.StatusInternalServerError, "generate nonce"}
	}
	return key.aead.Seal(nonce, nonce, plaintext, context), nil
}

func (k *KMS) open(name string, ciphertext, context []byte) ([]byte, error) {
	key, err := k.usableKey(name)
	if err != nil {
		return nil, err
	}
	n := key.aead.NonceSize()
	if len(ciphertext) < n {
		return nil, errKESDecrypt
	}
	plaintext, err := key.aead.Open(nil, ciphertext[:n], ciphertext[n:], context)
	if err != nil {
		return nil, errKESDecrypt
	}
	return plaintext, nil
}

func (k *KMS) record(op KMSOp, key string, rawContext []byte, err error) {
	call := KMSCall{Op: op, Key: key, Status: http.StatusOK, Time: time.Now()}
	if len(rawContext) > 0 {
		// MinIO sends a JSON object of strings; anything else is kept under
		// an empty name so a test still sees that a context was sent.
		if json.Unmarshal(rawContext, &call.Context) != nil {
			call.Context = map[string]string{"": string(rawContext)}
		}
	}
	if err != nil {
		call.Status = kesStatus(err)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, call)
}

// maxKESBody bounds request bodies as KES does; MinIO's are tiny.
const maxKESBody = 1 << 20

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKESBody+1))
	if err != nil {
		return kesError{http.StatusBadRequest, "read request body: " + err.Error()}
	}
	if len(body) > maxKESBody {
		return kesError{http.StatusRequestEntityTooLarge, "request body too large"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return kesError{http.StatusBadRequest, "invalid request body: " + err.Error()}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func kesStatus(err error) int {
	var kerr kesError
	if errors.As(err, &kerr) {
		return kerr.status
	}
	return http.StatusInternalServerError
}

// writeKESError answers as KES does; MinIO's client compares the status and
// message exactly to recognise "key does not exist" and "not authorized".
func writeKESError(w http.ResponseWriter, err error) {
	var kerr kesError
	if !errors.As(err, &kerr) {
		kerr = kesError{http.StatusInternalServerError, err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(kerr.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": kerr.message})
}
