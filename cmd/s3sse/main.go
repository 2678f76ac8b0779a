// Command s3sse checks the per-tenant server-side encryption of a
// Cortex-style S3 bucket and brings stored objects in line with it.
//
//	s3sse check      validate the sse block and runtime config files, offline
//	s3sse audit      find objects not stored under their tenant's encryption
//	s3sse reencrypt  rewrite those objects in place with a server-side copy
//
// Run `s3sse help` or `s3sse <command> -help` for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes. A CI job or a script tells the outcomes apart by them.
const (
	// exitOK: the configuration is valid, every object complies, or every
	// non-compliant object was re-encrypted.
	exitOK = 0
	// exitNonCompliant: check found invalid values; audit found objects not
	// under their tenant's encryption; reencrypt left some (a dry run, or
	// objects that changed while it ran).
	exitNonCompliant = 1
	// exitUsage: the command could not start: bad flags, an unreadable
	// config file, or (for audit and reencrypt) an invalid configuration.
	exitUsage = 2
	// exitError: S3 answered with errors, so some objects were not checked
	// or not re-encrypted. Re-running is safe.
	exitError = 3
	// exitInterrupted: stopped by a signal before the end. Re-running is
	// safe and does only what is left.
	exitInterrupted = 130
)

const usageText = `s3sse checks per-tenant S3 server-side encryption and brings stored objects
in line with it.

Usage:
  s3sse check     [flags]   validate the sse block and the runtime config files and
                            print each tenant's effective encryption (no S3 access)
  s3sse audit     [flags]   list the objects not stored under the encryption their
                            tenant requires now, with a summary per tenant
  s3sse reencrypt [flags]   rewrite those objects in place under their tenant's
                            encryption; a dry run unless -apply is given

Run 's3sse <command> -help' for the flags of a command.

The tenant of an object is the first segment of its key, as in Cortex's bucket
layout. Configuration follows Cortex: -config.file holds the component's s3 block
(with its sse block), -runtime-config.file the per-tenant overrides, and flags
such as -blocks-storage.s3.endpoint override the file.

Exit codes:
  0    valid; every object complies; everything was re-encrypted
  1    check: invalid values found; audit: non-compliant objects found;
       reencrypt: non-compliant objects remain (dry run, or changed concurrently)
  2    could not start: bad flags, unreadable or invalid configuration
  3    S3 errors: some objects could not be checked or re-encrypted
  130  interrupted; running the command again does only what is left
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code. The first
// SIGINT or SIGTERM stops it starting new work and lets requests in flight
// finish; a second one cancels them.
func run(args []string, stdout, stderr io.Writer) int {
	stopping, cancelStopping := context.WithCancel(context.Background())
	defer cancelStopping()
	hard, cancelHard := context.WithCancel(context.Background())
	defer cancelHard()

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		for n := 0; ; n++ {
			select {
			case <-signals:
			case <-hard.Done():
				return
			}
			if n == 0 {
				fmt.Fprintln(stderr, "\ns3sse: interrupted; finishing requests in flight "+
					"(interrupt again to cancel them)")
				cancelStopping()
				continue
			}
			cancelHard()
			return
		}
	}()

	a := &app{stdout: stdout, stderr: stderr, stopping: stopping}
	return a.run(hard, args)
}

// app is one run of the command. Its hooks let tests act between the steps
// of a re-encryption.
type app struct {
	stdout, stderr io.Writer

	// stopping is cancelled to stop starting new work; the context given to
	// run cancels the work in flight too. Nil means never.
	stopping context.Context

	// terminal reports whether w is a terminal. Nil means: check whether w
	// is an *os.File for a character device.
	terminal func(w io.Writer) bool

	// beforeCopy, when set, is called after an object was audited and
	// before its re-encrypting copy is sent.
	beforeCopy func(tenant, name string)
	// afterCopy, when set, is called after each re-encryption attempt.
	afterCopy func(tenant, name string, err error)
	// wrapTransport, when set, wraps the S3 client's transport, so that a
	// test can act between two requests.
	wrapTransport func(http.RoundTripper) http.RoundTripper
}

func (a *app) run(ctx context.Context, args []string) int {
	if a.stopping == nil {
		a.stopping = ctx
	}
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return exitUsage
	}

	cmd, rest := args[0], args[1:]
	var err error
	code := exitOK
	switch cmd {
	case "check":
		code, err = a.check(rest)
	case "audit":
		code, err = a.audit(ctx, rest, false)
	case "reencrypt":
		code, err = a.audit(ctx, rest, true)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(a.stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(a.stderr, "s3sse: unknown command %q; valid: check, audit, reencrypt, help\n", cmd)
		return exitUsage
	}

	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(a.stderr, "s3sse %s: %v\n", cmd, err)
		var usage usageError
		if errors.As(err, &usage) && code == exitOK {
			return exitUsage
		}
		if code == exitOK {
			return exitError
		}
	}
	return code
}

// newFlagSet returns the flag set of a command. It prints nothing itself:
// parse prints the help when asked and run prints errors once.
func (a *app) newFlagSet(name, synopsis string) *flag.FlagSet {
	f := flag.NewFlagSet("s3sse "+name, flag.ContinueOnError)
	f.SetOutput(io.Discard)
	f.Usage = func() {
		f.SetOutput(a.stdout)
		defer f.SetOutput(io.Discard)
		fmt.Fprintf(a.stdout, "Usage: s3sse %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		f.PrintDefaults()
	}
	return f
}

// parse parses the command's flags and config file. -help prints the help
// and returns flag.ErrHelp; any other error is a usageError.
func parse(f *flag.FlagSet, opts *options, args []string) error {
	err := opts.parseFlags(f, args)
	if errors.Is(err, flag.ErrHelp) {
		f.Usage()
	}
	return err
}
