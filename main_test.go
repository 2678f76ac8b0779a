package s3sse_test

import (
	"testing"

	"github.com/s3sse/s3sse/internal/s3test"
)

// TestMain shares one real MinIO among the package's tests.
func TestMain(m *testing.M) { s3test.Main(m) }
