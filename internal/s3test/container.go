package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcminio "github.com/testcontainers/testcontainers-go/modules/minio"
	"github.com/testcontainers/testcontainers-go/wait"
)

// defaultMinIOImage is the MinIO image for containers: the last release
// MinIO published as an image, close to the pinned binary's source.
const defaultMinIOImage = "minio/minio:RELEASE.2025-09-07T16-13-09Z"

// containerCertsDir is where the image's MinIO finds its TLS certificate.
const containerCertsDir = "/s3sse/certs"

func containerImage(getenv func(string) string) string {
	if img := getenv(EnvMinIOImage); img != "" {
		return img
	}
	return defaultMinIOImage
}

// dockerHealth reports why no Docker engine is usable, or nil.
func dockerHealth(ctx context.Context) error {
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := provider.Health(ctx); err != nil {
		return fmt.Errorf("docker health: %w", err)
	}
	return nil
}

// startContainer starts MinIO from image in Docker. The container uses
// MinIO's single built-in KMS key, named DefaultKMSKey: the KES stand-in
// runs in the test process, which a container cannot reach without more
// machinery.
//
// TODO: testcontainers.WithHostPortAccess could expose the stand-in to the
// container (with host.testcontainers.internal in its certificate); until
// then tests needing several keys skip on Docker-only machines.
func startContainer(ctx context.Context, image string, opts Options) (_ *Server, err error) {
	ca, err := testAuthority()
	if err != nil {
		return nil, err
	}
	daemonHost, err := dockerDaemonHost(ctx)
	if err != nil {
		return nil, err
	}
	// Binding a fixed host port, rather than letting Docker pick one on
	// every start, keeps the endpoint (and so existing clients) valid
	// across Restart.
	hostPort, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}

	s := &Server{
		source:    "MinIO container " + image,
		endpoint:  daemonHost + ":" + strconv.Itoa(hostPort),
		secure:    !opts.PlainHTTP,
		region:    "us-east-1",
		accessKey: "s3test-" + randomHex(4),
		secretKey: randomHex(20),
		rootCAs:   ca.pool,
		log:       newServerLog(),
	}
	s.log.redact(s.secretKey)
	s.transport = s.NewTransport()

	env := map[string]string{
		"MINIO_BROWSER":             "off",
		"MINIO_KMS_AUTO_ENCRYPTION": "off",
	}
	if !opts.NoKMS {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate KMS key: %w", err)
		}
		secret := base64.StdEncoding.EncodeToString(key)
		env["MINIO_KMS_SECRET_KEY"] = DefaultKMSKey + ":" + secret
		s.log.redact(secret)
		s.kmsMode, s.kmsKeys = KMSSingleKey, []string{DefaultKMSKey}
	}

	ready := wait.ForHTTP("/minio/health/ready").
		WithPort("9000/tcp").
		WithStartupTimeout(2 * time.Minute)
	customizers := []testcontainers.ContainerCustomizer{
		tcminio.WithUsername(s.accessKey),
		tcminio.WithPassword(s.secretKey),
		testcontainers.WithEnv(env),
		testcontainers.WithCmd("server", "/data", "--certs-dir", containerCertsDir),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("9000/tcp"): {{
					HostIP:   netip.IPv4Unspecified(),
					HostPort: strconv.Itoa(hostPort),
				}},
			}
		}),
		testcontainers.WithLogConsumers(logConsumer{s.log}),
	}
	if s.secure {
		cert, err := ca.issue(daemonHost)
		if err != nil {
			return nil, err
		}
		customizers = append(customizers, testcontainers.WithFiles(
			testcontainers.ContainerFile{
				Reader:            bytes.NewReader(cert.certPEM),
				ContainerFilePath: containerCertsDir + "/public.crt",
				FileMode:          0o644,
			},
			testcontainers.ContainerFile{
				Reader:            bytes.NewReader(cert.keyPEM),
				ContainerFilePath: containerCertsDir + "/private.key",
				FileMode:          0o644, // the image's MinIO may not run as root
			},
		))
		ready = ready.WithTLS(true, &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.pool})
	}
	// Replaces the module's liveness check: ready is what tests need.
	customizers = append(customizers, testcontainers.WithWaitStrategy(ready))

	ctr, err := tcminio.Run(ctx, image, customizers...)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("start MinIO container %s: %w\nMinIO output:\n%s",
			image, err, s.log.String())
	}
	s.backend = &containerBackend{ctr: ctr, log: s.log}
	return s, nil
}

// dockerDaemonHost returns the host name or address where containers'
// published ports are reached: localhost for a local engine.
func dockerDaemonHost(ctx context.Context) (string, error) {
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()

	host, err := provider.DaemonHost(ctx)
	if err != nil {
		return "", fmt.Errorf("docker daemon host: %w", err)
	}
	return host, nil
}

// containerBackend controls a MinIO container.
type containerBackend struct {
	ctr *tcminio.MinioContainer
	log *serverLog

	mu      sync.Mutex
	stopped bool
}

// kill stops the container without a grace period: Docker sends SIGTERM
// and SIGKILL at once, so MinIO cannot finish requests in flight.
func (b *containerBackend) kill() error {
	b.mu.Lock()
	defer b.mu.Unlock()

	noGrace := time.Duration(0)
	if err := b.ctr.Stop(context.Background(), &noGrace); err != nil {
		return fmt.Errorf("kill MinIO container: %w", err)
	}
	b.stopped = true
	return nil
}

func (b *containerBackend) stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()

	grace := stopGrace
	if err := b.ctr.Stop(context.Background(), &grace); err != nil {
		return fmt.Errorf("stop MinIO container: %w", err)
	}
	b.stopped = true
	return nil
}

// restart starts the container again; its data and port binding survive
// a stop, and Start waits for readiness as the first start did.
func (b *containerBackend) restart(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()

	if !b.stopped {
		grace := stopGrace
		if err := b.ctr.Stop(ctx, &grace); err != nil {
			return fmt.Errorf("stop MinIO container: %w", err)
		}
	}
	if err := b.ctr.Start(ctx); err != nil {
		return fmt.Errorf("restart MinIO container: %w", err)
	}
	b.stopped = false
	return nil
}

func (b *containerBackend) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.stopped && b.ctr.IsRunning()
}

func (b *containerBackend) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()

	if err := testcontainers.TerminateContainer(b.ctr); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("remove MinIO container: %w", err)
	}
	return nil
}

// logConsumer copies a container's output into the server's log.
type logConsumer struct{ log *serverLog }

func (c logConsumer) Accept(l testcontainers.Log) {
	stream := "stdout"
	if l.LogType == testcontainers.StderrLog {
		stream = "stderr"
	}
	_, _ = c.log.stream(stream).Write(l.Content)
}
