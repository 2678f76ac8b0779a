package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a MinIO process may take to print its
// address and answer ready. It starts in about half a second; the margin
// is for a loaded two-core machine running several test binaries.
const startTimeout = 60 * time.Second

// stopGrace is how long a stopped MinIO gets to exit on SIGTERM before it
// is killed.
const stopGrace = 10 * time.Second

// minioProcess is a MinIO server run from a local binary. The first start
// lets MinIO pick a free port; later starts reuse it, with the same data
// directory and environment, so a restarted server is the same server.
type minioProcess struct {
	bin      string
	dataDir  string
	certsDir string
	env      []string
	secure   bool
	ready    *http.Client
	log      *serverLog

	mu     sync.Mutex
	addr   string // host:port; empty until the first start
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// start runs MinIO and waits until it answers ready. It fails if MinIO is
// already running.
func (p *minioProcess) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.runningLocked() {
		return errors.New("start minio: already running")
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// --certs-dir is always given, if empty, so that certificates in the
	// user's ~/.minio/certs never switch a plain-HTTP server to TLS.
	cmd := exec.Command(p.bin, "server", p.dataDir, "--address", addr, "--certs-dir", p.certsDir)
	cmd.Env = p.env
	setProcessAttrs(cmd)

	apiURL := make(chan string, 1)
	p.log.setObserver(func(line string) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "API:"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				select {
				case apiURL <- fields[0]:
				default:
				}
			}
		}
	})
	defer p.log.setObserver(nil)
	cmd.Stdout = p.log.stream("stdout")
	cmd.Stderr = p.log.stream("stderr")

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio %s: %w", p.bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited

	fail := func(err error) error {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}

	select {
	case raw := <-apiURL:
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return fail(fmt.Errorf("start minio: unexpected API address %q", raw))
		}
		if p.addr != "" && u.Host != p.addr {
			return fail(fmt.Errorf("start minio: listening on %s, want %s", u.Host, p.addr))
		}
		p.addr = u.Host
	case <-exited:
		return fmt.Errorf("start minio: exited before listening: %v", waitErr)
	case <-ctx.Done():
		return fail(fmt.Errorf("start minio: no API address printed within %v", startTimeout))
	}

	if err := p.waitReady(ctx, exited); err != nil {
		if isClosed(exited) {
			return fmt.Errorf("start minio: exited before ready: %v", waitErr)
		}
		return fail(err)
	}
	return nil
}

// waitReady polls MinIO's readiness endpoint, which with a KMS configured
// also proves that MinIO can generate data keys.
func (p *minioProcess) waitReady(ctx context.Context, exited <-chan struct{}) error {
	scheme := "http"
	if p.secure {
		scheme = "https"
	}
	target := scheme + "://" + p.addr + "/minio/health/ready"

	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return fmt.Errorf("wait for minio: %w", err)
		}
		resp, err := p.ready.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}

		select {
		case <-exited:
			return errors.New("wait for minio: exited")
		case <-ctx.Done():
			return fmt.Errorf("wait for minio: %s not ready within %v, last: %s",
				target, startTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL, as a crash or an OOM kill would, and waits for the
// process to be gone. Killing a stopped server is not an error.
func (p *minioProcess) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if !p.runningLocked() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill minio: %w", err)
	}
	<-p.exited
	return nil
}

// stop asks MinIO to shut down and kills it if it has not exited within
// stopGrace. Stopping a stopped server is not an error.
func (p *minioProcess) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if !p.runningLocked() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop minio: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("stop minio: not exited %v after SIGTERM, killed", stopGrace)
}

func (p *minioProcess) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *minioProcess) runningLocked() bool {
	return p.cmd != nil && !isClosed(p.exited)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// minioEnv returns the environment for a MinIO process: the caller's,
// without any MINIO_ variable (one set in a developer's shell, such as
// MINIO_KMS_AUTO_ENCRYPTION, would change what the tests observe), plus
// the given settings.
func minioEnv(settings ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// freeLoopbackPort returns a port nothing listens on at the moment, for
// servers that cannot report the port they chose themselves.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
