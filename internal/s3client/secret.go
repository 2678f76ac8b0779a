package s3client

import (
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Mask is what a set Secret prints as, whatever prints it.
const Mask = "********"

// Secret is a configuration value that must never be printed, such as an
// S3 secret access key. It is set from YAML or a flag like a string, and
// prints as Mask through String, every fmt verb, and YAML and JSON dumps;
// an unset Secret prints as an empty string, so a dump still shows whether
// it is set. Reveal returns the value, for the one place that needs it.
// The zero value is unset. A Secret is immutable once set and safe for
// concurrent use; copies share the value.
type Secret struct {
	// reveal holds the value behind a function: fmt prints a function as an
	// address, so even a Secret reached through another value's unexported
	// field, where fmt cannot call Format, does not print the value.
	reveal func() string
}

// NewSecret returns a Secret holding value; an empty value gives an unset
// Secret.
func NewSecret(value string) Secret {
	if value == "" {
		return Secret{}
	}
	return Secret{reveal: func() string { return value }}
}

// Reveal returns the value. Pass it only to what needs the secret itself,
// such as the S3 client's credentials.
func (s Secret) Reveal() string {
	if s.reveal == nil {
		return ""
	}
	return s.reveal()
}

// IsSet reports whether the value is not empty.
func (s Secret) IsSet() bool { return s.reveal != nil }

// String returns Mask, or "" when the Secret is unset.
func (s Secret) String() string {
	if s.reveal == nil {
		return ""
	}
	return Mask
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("Secret(%q)", s.String()) }

// Format keeps every verb, %x and %q included, from printing the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// MarshalYAML writes the mask, so that a dump of the configuration holds
// no secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText writes the mask, for JSON and other text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML reads the value from a YAML string; null leaves it unset.
func (s *Secret) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: must be a string", node.Line)
	}
	if node.ShortTag() == "!!null" {
		*s = Secret{}
		return nil
	}
	*s = NewSecret(node.Value)
	return nil
}

// Set makes *Secret a flag.Value.
func (s *Secret) Set(value string) error {
	*s = NewSecret(value)
	return nil
}
