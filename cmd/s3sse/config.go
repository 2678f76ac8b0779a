package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse"
	"github.com/s3sse/s3sse/internal/s3client"
)

// component is one Cortex storage component: the YAML section of its
// storage block and the prefix of its flags.
type component struct {
	name    string // value of -component, and the flag prefix without its dot
	section string // top-level YAML key of a Cortex config file
}

var components = []component{
	{name: "blocks-storage", section: "blocks_storage"},
	{name: "ruler-storage", section: "ruler_storage"},
	{name: "alertmanager-storage", section: "alertmanager_storage"},
}

func componentNames() []string {
	names := make([]string, len(components))
	for i, c := range components {
		names[i] = c.name
	}
	return names
}

// s3Config is a component's s3 block, shared with the wiring example so
// that both read a config file the same way. Keys the tool does not use
// (list_objects_version, send_content_md5 and so on) are left to the host.
type s3Config struct {
	s3client.Config `yaml:",inline"`
}

// newClient returns a minio-go client for the s3 block, its transport
// passed through wrap when wrap is not nil. It sends nothing. Its errors
// are in the configuration, so they are usage errors.
func (c *s3Config) newClient(
	wrap func(http.RoundTripper) http.RoundTripper) (*minio.Client, error) {
	client, err := c.NewClientWrapped(wrap)
	if err != nil {
		return nil, usageError{err}
	}
	return client, nil
}

// options are the flags every command takes: where the configuration is.
type options struct {
	configFile      string
	expandEnv       bool
	component       string
	runtimeFiles    string
	storage         map[string]*s3Config // by component name
	componentConfig *s3Config            // the chosen component's, set by parseFlags

	// fileProblems are invalid values of the config file that do not keep
	// it from loading, such as a misspelt key in the sse block.
	fileProblems []error
}

func (o *options) registerFlags(f *flag.FlagSet) {
	f.StringVar(&o.configFile, "config.file", "",
		"YAML file with the S3 configuration: a Cortex config file (the -component's "+
			"section is read), a storage block holding s3:, an s3 block holding sse:, or a "+
			"bare sse block. Flags given on the command line take precedence over it.")
	f.BoolVar(&o.expandEnv, "config.expand-env", false,
		"Replace ${VAR} and ${VAR:default} in the config file with environment variables "+
			"before parsing it.")
	f.StringVar(&o.component, "component", components[0].name,
		"Storage component whose s3 block and flags apply: "+strings.Join(componentNames(), ", ")+".")
	f.StringVar(&o.runtimeFiles, "runtime-config.file", "",
		"Comma-separated runtime config files holding per-tenant overrides. Later files "+
			"override earlier ones, as in Cortex.")

	o.storage = map[string]*s3Config{}
	for _, c := range components {
		cfg := &s3Config{}
		cfg.RegisterFlagsWithPrefix(c.name+".", f)
		o.storage[c.name] = cfg
	}
}

// runtimeConfigFiles is the list -runtime-config.file names.
func (o *options) runtimeConfigFiles() []string {
	var files []string
	for _, f := range strings.Split(o.runtimeFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			files = append(files, f)
		}
	}
	return files
}

// parseFlags parses args twice, as Cortex does: once to find the config
// file, whose values then replace the flag defaults, and again so that the
// flags given on the command line win over the file. Every error but
// flag.ErrHelp is a usageError.
func (o *options) parseFlags(f *flag.FlagSet, args []string) error {
	if err := parseArgs(f, args); err != nil {
		return err
	}
	idx := slices.IndexFunc(components, func(c component) bool { return c.name == o.component })
	if idx < 0 {
		return usageError{fmt.Errorf("-component %q: unknown component; valid: %s",
			o.component, strings.Join(componentNames(), ", "))}
	}
	comp := components[idx]
	o.componentConfig = o.storage[comp.name]

	if o.configFile == "" {
		return nil
	}
	if err := o.loadConfigFile(o.configFile, o.expandEnv, comp, o.componentConfig); err != nil {
		return usageError{err}
	}
	return parseArgs(f, args)
}

func parseArgs(f *flag.FlagSet, args []string) error {
	err := f.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return usageError{fmt.Errorf("%w (run '%s -help' for the flags)", err, f.Name())}
	case f.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q; every option is a flag", f.Arg(0))}
	}
	return nil
}

// usageError is an error in how the command was called, as opposed to in
// what it found.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// loadConfigFile decodes the component's s3 block from file into cfg,
// keeping the values of keys the file does not name. Which of the layouts
// the file has is decided by its top-level keys.
func (o *options) loadConfigFile(file string, expandEnv bool, comp component, cfg *s3Config) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	if expandEnv {
		text = expandEnvRefs(text)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: expected a mapping at the top level",
			file, root.Line)
	}

	where := comp.section + ".s3"
	var s3Node *yaml.Node
	switch {
	case isCortexConfig(root):
		s3Node = mappingValue(mappingValue(root, comp.section), "s3")
		if s3Node == nil {
			return nil // the component is configured by flags alone
		}
	case mappingValue(root, "s3") != nil:
		s3Node, where = mappingValue(root, "s3"), "s3"
	case mappingValue(root, "sse") != nil:
		s3Node, where = root, "the s3 block"
	case mappingValue(root, "type") != nil:
		return o.decodeSSEBlock(file, root, "the sse block", &cfg.SSE)
	default:
		var sections []string
		for _, c := range components {
			sections = append(sections, c.section)
		}
		return fmt.Errorf("config file %s: found none of the keys %s, s3, sse or type at "+
			"the top level; for -component %s it must be a Cortex config file with a %s "+
			"section, a storage block, an s3 block or an sse block",
			file, strings.Join(sections, ", "), comp.name, comp.section)
	}

	if s3Node.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: %s must be a mapping", file, s3Node.Line, where)
	}
	// The sse block is decoded on its own, strictly; the rest of the s3
	// block belongs to the host, whose keys the tool need not know.
	rest := *s3Node
	rest.Content = nil
	var sse *yaml.Node
	for i := 0; i+1 < len(s3Node.Content); i += 2 {
		if s3Node.Content[i].Value == "sse" {
			sse = s3Node.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, s3Node.Content[i], s3Node.Content[i+1])
	}
	if err := rest.Decode(cfg); err != nil {
		return fmt.Errorf("config file %s: %s: %w", file, where, err)
	}
	if sse != nil {
		return o.decodeSSEBlock(file, sse, where+".sse", &cfg.SSE)
	}
	return nil
}

// decodeSSEBlock decodes an sse block strictly: a misspelt key would
// otherwise be dropped silently, and the objects written without the key
// id or context the operator meant. Unknown keys are recorded as problems
// of the configuration, which check lists with the others; the known keys
// are still decoded.
func (o *options) decodeSSEBlock(file string, node *yaml.Node, where string,
	out *s3sse.Config) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: %s must be a mapping", file, node.Line, where)
	}
	known := yamlKeys(reflect.TypeFor[s3sse.Config]())
	valid := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if slices.Contains(known, key.Value) {
			valid.Content = append(valid.Content, key, value)
			continue
		}
		o.fileProblems = append(o.fileProblems, &s3sse.ConfigError{
			File:  file,
			Key:   "sse." + key.Value,
			Value: nodeText(value),
			Reason: fmt.Sprintf("line %d: unknown key in %s; valid: %s", key.Line, where,
				strings.Join(known, ", ")),
			Err: s3sse.ErrInvalidConfig,
		})
	}
	if err := valid.Decode(out); err != nil {
		return fmt.Errorf("config file %s: %s: %w", file, where, err)
	}
	return nil
}

// yamlKeys lists the YAML keys a struct type decodes.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// isCortexConfig reports whether the top level of a file has a section
// of any storage component, as a Cortex config file has.
func isCortexConfig(root *yaml.Node) bool {
	return slices.ContainsFunc(components, func(c component) bool {
		return mappingValue(root, c.section) != nil
	})
}

// mappingValue returns the value of key in a mapping node, nil if absent.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}`)

// expandEnvRefs replaces ${VAR} with the variable's value, and ${VAR:def}
// with def when VAR is unset, as Cortex's -config.expand-env does.
func expandEnvRefs(text []byte) []byte {
	return envRef.ReplaceAllFunc(text, func(ref []byte) []byte {
		m := envRef.FindSubmatch(ref)
		if v, ok := os.LookupEnv(string(m[1])); ok {
			return []byte(v)
		}
		return bytes.Clone(m[2])
	})
}
