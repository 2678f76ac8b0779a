package s3test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// mainRunning is set while Main runs the tests, so Shared knows someone
// will shut the shared server down.
var mainRunning atomic.Bool

// used records the sources of the servers tests got, for the marker file.
var used struct {
	mu      sync.Mutex
	sources map[string]bool
}

func serverUsed(s *Server) {
	used.mu.Lock()
	defer used.mu.Unlock()
	if used.sources == nil {
		used.sources = make(map[string]bool)
	}
	used.sources[s.source] = true
}

// Main runs a test package's tests with the harness: call it from
// TestMain as
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
// After the tests it shuts down the shared server and removes its data,
// printing its output first if a test failed. If any test got a real
// server and S3SSE_RAN_MARKER_DIR is set, it writes a file there named
// after the calling package (import path, "/" as "_"), so CI can check
// that the real-server tests did run rather than skip. It exits with the
// tests' exit code.
func Main(m *testing.M) {
	pkg := callerPackage()
	mainRunning.Store(true)

	code := m.Run()

	mainRunning.Store(false)
	if srv := shared.server; srv != nil {
		if code != 0 && srv.log != nil {
			fmt.Fprintf(os.Stderr, "s3test: output of the shared S3 server (%s):\n%s\n",
				srv.source, srv.Log())
		}
		if err := srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "s3test: stop shared S3 server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	if err := writeRanMarker(os.Getenv(EnvRanMarkerDir), pkg, usedSources()); err != nil {
		fmt.Fprintf(os.Stderr, "s3test: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// usedSources returns where the servers tests got came from, sorted.
func usedSources() []string {
	used.mu.Lock()
	defer used.mu.Unlock()
	sources := make([]string, 0, len(used.sources))
	for s := range used.sources {
		sources = append(sources, s)
	}
	slices.Sort(sources)
	return sources
}

// writeRanMarker leaves the marker file for a package whose tests used a
// real server: in dir, named after the package, listing the sources.
// Nothing is written when dir is empty or no server was used.
func writeRanMarker(dir, pkg string, sources []string) error {
	if dir == "" || len(sources) == 0 {
		return nil
	}
	name := strings.ReplaceAll(pkg, "/", "_")
	body := strings.Join(sources, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		return fmt.Errorf("write %s marker: %w", EnvRanMarkerDir, err)
	}
	return nil
}

// callerPackage returns the import path of the package whose TestMain
// called Main.
func callerPackage() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return "unknown"
	}
	return packageOfFunc(runtime.FuncForPC(pc).Name())
}

// packageOfFunc returns the package import path of a function's full name
// (such as github.com/o/r/pkg_test.TestMain), without the _test suffix of
// an external test package.
func packageOfFunc(name string) string {
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		name = name[:slash+1+dot]
	}
	return strings.TrimSuffix(name, "_test")
}
