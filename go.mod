module github.com/s3sse/s3sse

go 1.26.0

require (
	github.com/go-kit/log v0.2.1
	github.com/minio/minio-go/v7 v7.4.1
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/go-logfmt/logfmt v0.5.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
