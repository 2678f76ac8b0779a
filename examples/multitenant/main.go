// Command multitenant wires s3sse the way a multi-tenant system such as
// Cortex wires its storage: three components (blocks storage, ruler,
// alertmanager), each with its own YAML section, flag prefix, S3 block and
// sse block, all sharing one runtime config file of per-tenant overrides
// that is reloaded while the process runs.
//
// Usage:
//
//	multitenant -demo [flags]
//	multitenant -config.file=FILE [flags] -print-config
//	multitenant -config.file=FILE [flags] put COMPONENT TENANT OBJECT FILE
//	multitenant -config.file=FILE [flags] stat COMPONENT TENANT OBJECT
//
// -demo runs a walkthrough: it starts a local MinIO with a KMS holding
// several keys (unless pointed at an S3 endpoint), writes a config file and
// a runtime config file, uploads objects for a handful of tenants, edits
// the runtime config while it runs, prints what the server reports for
// every object, and removes everything it started and wrote. `make demo`
// runs it.
//
// Flags given on the command line win over the config file, as in Cortex.
// The secret access key never prints: -print-config shows it as ********.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

func main() {
	// Ctrl-C, SIGTERM, a closed terminal (SIGHUP) and a closed output pipe
	// (SIGPIPE, as with `| head`) cancel ctx; run then stops what it started
	// and removes its files before returning. Without SIGPIPE here, the first
	// write to a closed pipe would kill the process with no cleanup at all.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM,
		syscall.SIGHUP, syscall.SIGPIPE)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "multitenant:", err)
		os.Exit(1)
	}
}

// commandLine is the flags that are not part of the configuration file.
type commandLine struct {
	configFile  string
	printConfig bool
	demo        demoFlags
}

func (c *commandLine) registerFlags(f *flag.FlagSet) {
	f.StringVar(&c.configFile, "config.file", "", "YAML configuration file.")
	f.BoolVar(&c.printConfig, "print-config", false,
		"Print the configuration in force, secrets masked, and exit.")
	c.demo.registerFlags(f)
}

// parseArgs registers every flag, parses args, decodes the config file if
// one is named, and parses args again so that flags given explicitly win
// over the file. It returns the configuration, the other flags, the
// positional arguments, and the names of the flags set explicitly.
func parseArgs(args []string, stderr io.Writer) (
	*Config, *commandLine, []string, map[string]bool, error) {
	cfg := &Config{}
	cl := &commandLine{}
	fs := flag.NewFlagSet("multitenant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterFlags(fs)
	cl.registerFlags(fs)

	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, nil, err
	}
	if cl.configFile != "" {
		if err := decodeConfigFile(cfg, cl.configFile); err != nil {
			return nil, nil, nil, nil, err
		}
		if err := fs.Parse(args); err != nil {
			return nil, nil, nil, nil, err
		}
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return cfg, cl, fs.Args(), set, nil
}

// run is the program: main with its inputs and outputs as arguments, so
// that tests run it whole.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, cl, rest, set, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	logger := level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(stderr)), level.AllowInfo())

	if cl.demo.enabled {
		return runDemo(ctx, args, cfg, cl, set, stdout, logger)
	}
	if cl.configFile == "" && len(set) == 0 {
		return errors.New("nothing to do: run with -demo, or with -config.file and a command; " +
			"see -help")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cl.printConfig {
		dump, err := cfg.YAML()
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, dump)
		return err
	}
	return runCommand(ctx, cfg, rest, stdout, logger)
}

// runCommand runs put or stat.
func runCommand(ctx context.Context, cfg *Config, args []string, stdout io.Writer,
	logger log.Logger) error {
	if len(args) == 0 {
		return errors.New("no command: want put COMPONENT TENANT OBJECT FILE, " +
			"or stat COMPONENT TENANT OBJECT")
	}
	cmd, args := args[0], args[1:]
	want := map[string]int{"put": 4, "stat": 3}[cmd]
	if want == 0 {
		return fmt.Errorf("unknown command %q: want put or stat", cmd)
	}
	if len(args) != want {
		return fmt.Errorf("%s takes %d arguments (COMPONENT TENANT OBJECT%s), got %d: %s",
			cmd, want, map[string]string{"put": " FILE", "stat": ""}[cmd], len(args),
			strings.Join(args, " "))
	}

	st, err := newStorage(ctx, cfg, prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	defer st.Stop()
	comp, err := st.component(args[0])
	if err != nil {
		return err
	}
	tenant, err := comp.bucket.Tenant(args[1])
	if err != nil {
		return err
	}

	if cmd == "put" {
		f, err := os.Open(args[3])
		if err != nil {
			return err
		}
		defer f.Close()
		if err := tenant.Upload(ctx, args[2], f); err != nil {
			return err
		}
	}
	attrs, err := tenant.Attributes(ctx, args[2])
	if err != nil {
		return err
	}
	key, _ := tenant.Key(args[2])
	_, err = fmt.Fprintf(stdout, "%s/%s: %d bytes, %s\n", comp.bucket.Name(), key, attrs.Size,
		attrs.Encryption)
	return err
}
