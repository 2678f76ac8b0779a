package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
)

// Config is the host's configuration file: the three storage components
// that write tenants' objects, and the runtime config file of per-tenant
// overrides they share. Keys and flags are Cortex's.
type Config struct {
	BlocksStorage       StorageConfig             `yaml:"blocks_storage"`
	RulerStorage        StorageConfig             `yaml:"ruler_storage"`
	AlertmanagerStorage StorageConfig             `yaml:"alertmanager_storage"`
	RuntimeConfig       s3sse.RuntimeConfigConfig `yaml:"runtime_config"`
}

// StorageConfig is one component's storage section.
type StorageConfig struct {
	// Backend is the object store. Only s3 is wired in this example.
	// Default s3.
	Backend string `yaml:"backend"`
	// S3 is the S3 block, with the sse block inside it.
	S3 S3Config `yaml:"s3"`

	flagPrefix string
}

// component names one storage component the way operators meet it: its
// name, its YAML section and its flag prefix.
type component struct {
	name       string // as logs and the demo's table print it
	yamlKey    string
	flagPrefix string
}

var (
	blocksStorage       = component{"blocks", "blocks_storage", "blocks-storage."}
	rulerStorage        = component{"ruler", "ruler_storage", "ruler-storage."}
	alertmanagerStorage = component{"alertmanager", "alertmanager_storage", "alertmanager-storage."}

	// components are the storage components, in the order they are wired.
	components = []component{blocksStorage, rulerStorage, alertmanagerStorage}
)

// storage returns the component's section of c.
func (c *Config) storage(comp component) *StorageConfig {
	switch comp {
	case blocksStorage:
		return &c.BlocksStorage
	case rulerStorage:
		return &c.RulerStorage
	case alertmanagerStorage:
		return &c.AlertmanagerStorage
	}
	panic("unknown component " + comp.name)
}

// RegisterFlags registers every flag of the file on f and sets every field
// to its default.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	for _, comp := range components {
		s := c.storage(comp)
		s.flagPrefix = comp.flagPrefix
		f.StringVar(&s.Backend, comp.flagPrefix+"backend", "s3",
			"Object store backend of the component. Only s3 is wired in this example.")
		s.S3.RegisterFlagsWithPrefix(comp.flagPrefix, f)
	}
	c.RuntimeConfig.RegisterFlagsWithPrefix("runtime-config.", f)
}

// Validate checks every section. The error names the YAML key and the flag.
func (c *Config) Validate() error {
	var errs []error
	for _, comp := range components {
		s := c.storage(comp)
		if s.Backend != "s3" {
			errs = append(errs, fmt.Errorf("%s.backend (flag -%sbackend) %q: only s3 is wired "+
				"in this example", comp.yamlKey, comp.flagPrefix, s.Backend))
			continue
		}
		if err := s.S3.Validate(comp.yamlKey + ".s3"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.RuntimeConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// YAML is the configuration as a YAML document, secrets masked: what a
// host shows at its /config endpoint.
func (c *Config) YAML() (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	return buf.String(), nil
}

// decodeConfigFile decodes a YAML file into c, over the defaults the flags
// set. Unknown keys are errors, so that a misspelt key is not ignored.
func decodeConfigFile(c *Config, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	defer f.Close()

	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err != io.EOF {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	return nil
}
