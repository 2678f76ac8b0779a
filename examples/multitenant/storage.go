package main

import (
	"context"
	"fmt"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3sse/s3sse"
)

// storage is the host's storage wiring: one runtime config of per-tenant
// overrides, read and reloaded once, shared by every component's resolver;
// and for each component its own sse block, resolver and bucket.
type storage struct {
	runtime    *s3sse.RuntimeConfig
	components []*componentStorage
}

// componentStorage is one component's view of the storage.
type componentStorage struct {
	component
	resolver *s3sse.Resolver
	bucket   *s3sse.Bucket
}

// newStorage wires the configuration. It loads the runtime config, which
// fails start-up if the file is invalid, and reloads it until ctx is done
// or Stop is called. It sends no request to S3.
func newStorage(ctx context.Context, cfg *Config, reg prometheus.Registerer,
	logger log.Logger) (*storage, error) {
	rc, err := s3sse.NewRuntimeConfig(ctx, cfg.RuntimeConfig, reg, logger)
	if err != nil {
		return nil, err
	}
	st := &storage{runtime: rc}

	for _, comp := range components {
		s3cfg := &cfg.storage(comp).S3
		compLogger := log.With(logger, "component", comp.name)

		resolver, err := s3sse.NewResolver(s3cfg.SSE, rc, compLogger)
		if err != nil {
			rc.Stop()
			return nil, fmt.Errorf("%s: %w", comp.yamlKey, err)
		}
		client, err := s3cfg.NewClient()
		if err != nil {
			rc.Stop()
			return nil, fmt.Errorf("%s: %w", comp.yamlKey, err)
		}
		bucket, err := s3sse.NewBucket(client, s3cfg.BucketName, resolver, &s3sse.BucketOptions{
			TenantPrefix: true, // Cortex's layout: <tenant>/<object>
			Logger:       compLogger,
		})
		if err != nil {
			rc.Stop()
			return nil, fmt.Errorf("%s: %w", comp.yamlKey, err)
		}
		st.components = append(st.components, &componentStorage{comp, resolver, bucket})
	}
	return st, nil
}

// component returns the wiring of the component named name.
func (st *storage) component(name string) (*componentStorage, error) {
	for _, c := range st.components {
		if c.name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("unknown component %q; valid: blocks, ruler, alertmanager", name)
}

// Stop ends the runtime config's reloads.
func (st *storage) Stop() { st.runtime.Stop() }
