package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/s3sse/s3sse/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// tableRow is one line of the demo's table, as printed.
type tableRow struct {
	step                                                int
	component, tenant, object, setBy, sse, key, context string
}

// parseTable reads the table from the demo's output. Columns are found by
// the header's offsets, since "sse block" holds a space.
func parseTable(t *testing.T, out string) []tableRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "STEP  ") {
			start = i
			break
		}
	}
	require.NotEqual(t, -1, start, "no table in the demo's output:\n%s", out)

	header := lines[start]
	names := []string{"STEP", "COMPONENT", "TENANT", "OBJECT", "SET BY", "SSE", "KMS KEY", "CONTEXT"}
	offsets := make([]int, len(names))
	for i, n := range names {
		offsets[i] = strings.Index(header, n)
		if i > 0 {
			// Each name is looked for after the previous column.
			offsets[i] = offsets[i-1] + strings.Index(header[offsets[i-1]:], n)
		}
	}

	var rows []tableRow
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		cell := func(i int) string {
			end := len(l)
			if i+1 < len(offsets) {
				end = min(offsets[i+1], len(l))
			}
			return strings.TrimSpace(l[offsets[i]:end])
		}
		step, err := strconv.Atoi(cell(0))
		require.NoError(t, err, "table line %q", l)
		rows = append(rows, tableRow{step, cell(1), cell(2), cell(3), cell(4), cell(5), cell(6), cell(7)})
	}
	return rows
}

// checkTable checks every row the demo must print: each tenant's encryption
// as the server reported it, and the key move of step 2. keys are the
// default key and charlie's two keys, as the server names them in ARNs.
func checkTable(t *testing.T, rows []tableRow, keys []string) {
	t.Helper()
	arn := func(k string) string { return "arn:aws:kms:" + k }
	const charlieCtx = `{"env":"demo","tenant":"charlie"}`
	want := []tableRow{
		// The default: each component's own sse block.
		{1, "blocks", "alpha", "alpha/block-1/meta.json", "sse block", "SSE-KMS", arn(keys[0]), "-"},
		{1, "ruler", "alpha", "alpha/rules/demo.yaml", "sse block", "SSE-S3", "-", "-"},
		{1, "alertmanager", "alpha", "alpha/alertmanager/fullstate", "sse block", "none", "-", "-"},
		// SSE-S3 override, in every component.
		{1, "blocks", "bravo", "bravo/block-1/meta.json", "override", "SSE-S3", "-", "-"},
		{1, "ruler", "bravo", "bravo/rules/demo.yaml", "override", "SSE-S3", "-", "-"},
		{1, "alertmanager", "bravo", "bravo/alertmanager/fullstate", "override", "SSE-S3", "-", "-"},
		// SSE-KMS override with its own key and context.
		{1, "blocks", "charlie", "charlie/block-1/meta.json", "override", "SSE-KMS", arn(keys[1]), charlieCtx},
		{1, "ruler", "charlie", "charlie/rules/demo.yaml", "override", "SSE-KMS", arn(keys[1]), charlieCtx},
		{1, "alertmanager", "charlie", "charlie/alertmanager/fullstate", "override", "SSE-KMS",
			arn(keys[1]), charlieCtx},
		// The key move, without a restart.
		{2, "blocks", "charlie", "charlie/block-2/meta.json", "override", "SSE-KMS", arn(keys[2]), charlieCtx},
		// The rejected override: the sse block stays in force for delta.
		{3, "blocks", "delta", "delta/block-3/meta.json", "sse block", "SSE-KMS", arn(keys[0]), "-"},
		// The fixed override.
		{4, "blocks", "delta", "delta/block-4/meta.json", "override", "SSE-KMS", arn(keys[0]),
			`{"shard":"7","tenant":"delta"}`},
	}
	require.Equal(t, want, rows, "the demo's table")
}

// demoOutput is what a run printed: stdout and the log on stderr.
type demoOutput struct {
	mu             sync.Mutex
	stdout, stderr strings.Builder
}

func (o *demoOutput) writers() (io.Writer, io.Writer) {
	return lockedWriter{&o.mu, &o.stdout}, lockedWriter{&o.mu, &o.stderr}
}

func (o *demoOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return "stdout:\n" + o.stdout.String() + "\nstderr:\n" + o.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isolate makes the test's temporary files land in a directory of its
// own, so the test can check that the demo left nothing behind, and hides
// an S3 endpoint from the environment unless keepEndpoint.
func isolate(t *testing.T, keepEndpoint bool) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if !keepEndpoint {
		t.Setenv(s3test.EnvEndpoint, "")
	}
	return tmp
}

// requireEmptyDir fails unless dir holds nothing.
func requireEmptyDir(t *testing.T, dir, doing string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "%s: files left in the temporary directory", doing)
}

// requireClosed fails unless nothing listens at the server URL any more.
func requireClosed(t *testing.T, serverURL, doing string) {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
	}
	require.Error(t, err, "%s: MinIO still listens at %s", doing, u.Host)
}

// startedAt finds the URL of the MinIO the demo started in its output.
var startedAt = regexp.MustCompile(`Started MinIO .* at (https?://\S+) in`)

// skipWithoutMinIO skips (or, under S3SSE_REQUIRE_S3=1, fails) a test whose
// demo could not start MinIO because there is none to start.
func skipWithoutMinIO(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, s3test.ErrNoServer) {
		return
	}
	if os.Getenv(s3test.EnvRequireS3) == "1" {
		t.Fatalf("the demo found no MinIO to start: %v", err)
	}
	t.Skipf("the demo found no MinIO to start: %v", err)
}

func TestDemoStartsMinIOAndLeavesNothing(t *testing.T) {
	tmp := isolate(t, false)
	var out demoOutput
	stdout, stderr := out.writers()

	err := run(context.Background(), []string{"-demo"}, stdout, stderr)
	skipWithoutMinIO(t, err)
	require.NoError(t, err, "demo output:\n%s", &out)

	text := out.String()
	checkTable(t, parseTable(t, text), demoKMSKeys)
	m := startedAt.FindStringSubmatch(text)
	require.NotNil(t, m, "the demo says where it started MinIO:\n%s", text)
	require.Contains(t, text, "Stopped MinIO.")
	requireClosed(t, m[1], "after the demo")
	requireEmptyDir(t, tmp, "after the demo")

	// The log says why the bad edit was refused, naming tenant and key.
	require.Regexp(t, `level=error msg="reject runtime config reload; the last good config `+
		`stays in force" .*tenant=delta key=s3_sse_kms_encryption_context`, text)
	require.Contains(t, text, `key \"shard\": value must be a string, found a number`)
	// The secret access key is masked in the dump, and nowhere in clear.
	require.Contains(t, text, "secret_access_key: '********'")
}

func TestDemoUsesGivenEndpointAndStartsNothing(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	tmp := isolate(t, true)

	access, secret := srv.Credentials()
	args := []string{"-demo", "-demo.kms-keys=" + strings.Join(keys, ",")}
	buckets := map[string]string{}
	var caFile string
	if pem := srv.CACertPEM(); pem != nil {
		caFile = filepath.Join(t.TempDir(), "ca.crt")
		require.NoError(t, os.WriteFile(caFile, pem, 0o644))
	}
	for _, comp := range components {
		p := "-" + comp.flagPrefix + "s3."
		buckets[comp.name] = srv.NewBucket(t)
		args = append(args,
			p+"endpoint="+srv.Endpoint(),
			p+"bucket-name="+buckets[comp.name],
			p+"region="+srv.Region(),
			p+"access-key-id="+access,
			p+"secret-access-key="+secret,
			p+"insecure="+strconv.FormatBool(!srv.Secure()),
		)
		if caFile != "" {
			args = append(args, p+"http.tls-ca-path="+caFile)
		}
	}

	// The KMS stand-in records the key MinIO sealed each object with.
	var calls map[string][]s3test.KMSCall
	demoHook = func(stage demoStage, d *demo) error {
		if stage != stageUploaded || srv.KMS() == nil {
			return nil
		}
		calls = map[string][]s3test.KMSCall{}
		for _, w := range d.written {
			key, err := w.comp.bucket.Tenant(w.tenant)
			require.NoError(t, err)
			k, _ := key.Key(w.name)
			calls[w.comp.name+" "+k] = srv.KMS().ObjectCalls(w.comp.bucket.Name(), k)
		}
		return nil
	}
	t.Cleanup(func() { demoHook = nil })

	var out demoOutput
	stdout, stderr := out.writers()
	err := run(context.Background(), args, stdout, stderr)
	require.NoError(t, err, "demo output:\n%s", &out)

	text := out.String()
	require.Contains(t, text, "starting nothing")
	require.NotRegexp(t, startedAt, text, "the demo started a server though given one")
	require.NotContains(t, text, secret, "the secret access key was printed")
	checkTable(t, parseTable(t, text), keys)
	requireEmptyDir(t, tmp, "after the demo")

	// The demo deleted what it wrote from the server it was given, and left
	// the buckets it did not create.
	client := srv.Client(t)
	for comp, bucket := range buckets {
		for obj := range client.ListObjects(context.Background(), bucket,
			minio.ListObjectsOptions{Recursive: true}) {
			require.NoError(t, obj.Err)
			t.Errorf("%s: object %s left in bucket %s", comp, obj.Key, bucket)
		}
	}

	if srv.KMS() == nil {
		return
	}
	// What the KMS saw for step 1: every SSE-KMS and SSE-S3 object's data
	// key was generated under the key the table reports (SSE-S3 under the
	// server's default key); the unencrypted object made no KMS call.
	wantKey := map[string]string{
		"blocks alpha/block-1/meta.json":              keys[0],
		"ruler alpha/rules/demo.yaml":                 keys[0],
		"blocks bravo/block-1/meta.json":              keys[0],
		"ruler bravo/rules/demo.yaml":                 keys[0],
		"alertmanager bravo/alertmanager/fullstate":   keys[0],
		"blocks charlie/block-1/meta.json":            keys[1],
		"ruler charlie/rules/demo.yaml":               keys[1],
		"alertmanager charlie/alertmanager/fullstate": keys[1],
	}
	require.Len(t, calls, len(wantKey)+1, "objects written by step 1")
	require.Empty(t, calls["alertmanager alpha/alertmanager/fullstate"],
		"an object sent without an SSE header made KMS calls")
	for obj, key := range wantKey {
		var generated []string
		for _, c := range calls[obj] {
			if c.Op == s3test.OpGenerate {
				generated = append(generated, c.Key)
			}
		}
		require.Equal(t, []string{key}, generated, "KMS keys that sealed %s", obj)
	}
}

func TestDemoUsesEndpointFromEnvironment(t *testing.T) {
	srv := s3test.Shared(t)
	keys := srv.RequireKMSKeys(t, 3)
	tmp := isolate(t, true)

	access, secret := srv.Credentials()
	t.Setenv(s3test.EnvEndpoint, srv.URL())
	t.Setenv(s3test.EnvAccessKey, access)
	t.Setenv(s3test.EnvSecretKey, secret)
	t.Setenv(s3test.EnvRegion, srv.Region())
	t.Setenv(s3test.EnvKMSKeys, strings.Join(keys, ","))
	t.Setenv(s3test.EnvInsecure, "")
	t.Setenv(s3test.EnvCAFile, "")
	if pem := srv.CACertPEM(); pem != nil {
		caFile := filepath.Join(t.TempDir(), "ca.crt")
		require.NoError(t, os.WriteFile(caFile, pem, 0o644))
		t.Setenv(s3test.EnvCAFile, caFile)
	}

	var out demoOutput
	stdout, stderr := out.writers()
	err := run(context.Background(), []string{"-demo"}, stdout, stderr)
	require.NoError(t, err, "demo output:\n%s", &out)

	text := out.String()
	require.Contains(t, text, "Using the S3 endpoint "+srv.URL()+" from "+s3test.EnvEndpoint)
	require.NotRegexp(t, startedAt, text, "the demo started a server though given one")
	require.NotContains(t, text, secret, "the secret access key was printed")
	checkTable(t, parseTable(t, text), keys)
	require.Contains(t, text, "Deleted the 12 objects the demo wrote, and the 3 buckets it created.")
	requireEmptyDir(t, tmp, "after the demo")

	// The buckets the demo created are gone again.
	client := srv.Client(t)
	for _, bucket := range []string{"s3sse-demo-blocks", "s3sse-demo-ruler", "s3sse-demo-alertmanager"} {
		exists, err := client.BucketExists(context.Background(), bucket)
		require.NoError(t, err)
		require.False(t, exists, "bucket %s left on the server", bucket)
	}
}

func TestDemoCleansUpOnFailure(t *testing.T) {
	errInjected := errors.New("injected failure")
	tests := []struct {
		name    string
		stage   demoStage // where the failure happens
		cancel  bool      // cancel the context, as Ctrl-C does, rather than fail
		wantErr error
	}{
		{name: "failure once started", stage: stageStarted, wantErr: errInjected},
		{name: "failure after uploads", stage: stageUploaded, wantErr: errInjected},
		{name: "Ctrl-C once started", stage: stageStarted, cancel: true, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := isolate(t, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			var serverURL string
			demoHook = func(stage demoStage, d *demo) error {
				if stage != tc.stage {
					return nil
				}
				serverURL = d.server.URL()
				if tc.cancel {
					cancel()
					return nil
				}
				return errInjected
			}
			t.Cleanup(func() { demoHook = nil })

			var out demoOutput
			stdout, stderr := out.writers()
			err := run(ctx, []string{"-demo"}, stdout, stderr)
			skipWithoutMinIO(t, err)
			require.ErrorIs(t, err, tc.wantErr, "demo output:\n%s", &out)
			require.NotEmpty(t, serverURL, "the hook ran")

			text := out.String()
			if tc.cancel {
				require.Contains(t, text, "The demo was interrupted")
			} else {
				require.Contains(t, text, "The demo failed")
			}
			require.Contains(t, text, "Stopped MinIO.")
			requireClosed(t, serverURL, tc.name)
			requireEmptyDir(t, tmp, tc.name)
		})
	}
}

// TestDemoInterrupted runs the built program and interrupts it the ways a
// terminal or a pipeline does, to check the signal wiring of main as well
// as the cleanup.
func TestDemoInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "multitenant")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "build the program")

	tests := []struct {
		name string
		// signal is sent once the demo writes; nil closes its stdout instead.
		signal os.Signal
		// cause is what the program's error says stopped it.
		cause string
	}{
		{name: "Ctrl-C", signal: syscall.SIGINT, cause: "interrupt signal received"},
		{name: "SIGTERM", signal: syscall.SIGTERM, cause: "terminated signal received"},
		{name: "terminal closed", signal: syscall.SIGHUP, cause: "hangup signal received"},
		{name: "output pipe closed, as by | head", cause: "broken pipe signal received"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := isolate(t, false)
			cmd := exec.Command(bin, "-demo")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			// Interrupt once the demo is writing: MinIO runs, the files exist.
			var printed strings.Builder
			var serverURL string
			lines := bufio.NewScanner(stdout)
			for lines.Scan() {
				fmt.Fprintln(&printed, lines.Text())
				if m := startedAt.FindStringSubmatch(lines.Text()); m != nil {
					serverURL = m[1]
				}
				if strings.HasPrefix(lines.Text(), "Step 1.") {
					break
				}
			}
			if serverURL == "" {
				_ = cmd.Wait()
				if strings.Contains(stderr.String(), s3test.ErrNoServer.Error()) {
					skipWithoutMinIO(t, fmt.Errorf("%w: %s", s3test.ErrNoServer, &stderr))
				}
				t.Fatalf("the demo did not start MinIO; output:\n%s\n%s", &printed, &stderr)
			}

			if tc.signal != nil {
				require.NoError(t, cmd.Process.Signal(tc.signal))
				for lines.Scan() {
					fmt.Fprintln(&printed, lines.Text())
				}
				require.Contains(t, printed.String(), "The demo was interrupted")
				require.Contains(t, printed.String(), "Stopped MinIO.")
			} else {
				require.NoError(t, stdout.Close())
			}

			err = cmd.Wait()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the interrupted demo exits with an error; output:"+
				"\n%s\n%s", &printed, &stderr)
			require.Contains(t, stderr.String(), "multitenant: "+tc.cause+"; ")
			requireClosed(t, serverURL, tc.name)
			requireEmptyDir(t, tmp, tc.name)
		})
	}
}
