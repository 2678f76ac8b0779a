package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/s3sse/s3sse"
)

const checkSynopsis = `Validates the sse block of the -component's s3 block (from -config.file and
flags) and the per-tenant overrides of every -runtime-config.file, reading the
SSE-C key files but sending nothing to S3. Prints the effective encryption of the
sse block and of every tenant with an override, and every invalid value found,
naming its file, tenant, key, value and the rule it breaks.

Exit code 0: everything is valid (warnings may be printed); 1: invalid values
were found; 2: bad flags or an unreadable file.`

// check validates the configuration and prints the effective encryption.
func (a *app) check(args []string) (int, error) {
	f := a.newFlagSet("check", checkSynopsis)
	var opts options
	opts.registerFlags(f)
	output := f.String("output", "text", "Output format: text or json.")
	if err := parse(f, &opts, args); err != nil {
		return exitUsage, err
	}
	if *output != "text" && *output != "json" {
		return exitUsage, usageError{fmt.Errorf("-output %q: valid: text, json", *output)}
	}

	p := loadPolicy(&opts)
	var err error
	if *output == "json" {
		err = writeCheckJSON(a.stdout, p)
	} else {
		err = a.writeCheckText(p)
	}
	if err != nil {
		return exitError, fmt.Errorf("write output: %w", err)
	}
	if len(p.problems) > 0 {
		return exitNonCompliant, nil
	}
	return exitOK, nil
}

func (a *app) writeCheckText(p *policy) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tTYPE\tKMS KEY ID\tCONTEXT\tCUSTOMER KEY\tSOURCE")
	for _, e := range append([]*entry{p.defaults}, p.tenants...) {
		name := e.tenant
		if name == "" {
			name = "(default)"
		}
		typ, keyID, context, customer := "INVALID", "-", "-", "-"
		if e.enc != nil {
			typ = string(e.enc.Type())
			if typ == "" {
				typ = "none"
			}
			keyID = orDash(e.enc.KMSKeyID())
			context = orDash(e.enc.ContextJSON())
			customer = e.customerKeyText()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, typ, keyID, context, customer,
			strings.Join(e.sources, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, w := range p.warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	for _, err := range p.problems {
		fmt.Fprintf(a.stderr, "problem: %s\n", problemText(err))
	}
	if n := len(p.problems); n > 0 {
		fmt.Fprintf(a.stderr, "%d problem%s found\n", n, plural(n))
	}
	return nil
}

// customerKeyText names the SSE-C key files and the current key's MD5,
// which identifies it as S3 reports it without revealing it.
func (e *entry) customerKeyText() string {
	var parts []string
	if e.keyFile != "" {
		s := e.keyFile
		if md5 := e.enc.CustomerKeyMD5(); md5 != "" {
			s += " (md5 " + md5 + ")"
		} else {
			s += " (reads only)"
		}
		parts = append(parts, s)
	}
	if n := len(e.prevFiles); n > 0 {
		parts = append(parts, fmt.Sprintf("previous: %s", strings.Join(e.prevFiles, ",")))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func problemText(err error) string {
	return strings.TrimPrefix(err.Error(), "s3sse: ")
}

// encryptionJSON is one row of check's JSON output.
type encryptionJSON struct {
	// Tenant is empty for the sse block.
	Tenant string `json:"tenant,omitempty"`
	// Valid is false when a value is invalid; the problems say which.
	Valid bool `json:"valid"`
	// Type is the SSE type as configured: "" sends no SSE header.
	Type                 s3sse.SSEType     `json:"type"`
	KMSKeyID             string            `json:"kms_key_id,omitempty"`
	KMSEncryptionContext map[string]string `json:"kms_encryption_context,omitempty"`
	CustomerKeyFile      string            `json:"customer_key_file,omitempty"`
	CustomerKeyMD5       string            `json:"customer_key_md5,omitempty"`
	PreviousKeyFiles     []string          `json:"customer_previous_key_files,omitempty"`
	// Sources are the files (or the flags) the values come from.
	Sources []string `json:"sources"`
}

// problemJSON is one invalid value. Value is never secret: keys live in
// files, which are named, never read out.
type problemJSON struct {
	File    string `json:"file,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	Key     string `json:"key,omitempty"`
	Flag    string `json:"flag,omitempty"`
	Value   string `json:"value,omitempty"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

type checkJSON struct {
	Valid    bool             `json:"valid"`
	Default  encryptionJSON   `json:"default"`
	Tenants  []encryptionJSON `json:"tenants"`
	Warnings []string         `json:"warnings"`
	Problems []problemJSON    `json:"problems"`
}

func writeCheckJSON(w io.Writer, p *policy) error {
	out := checkJSON{
		Valid:    len(p.problems) == 0,
		Default:  p.defaults.json(),
		Tenants:  []encryptionJSON{},
		Warnings: append([]string{}, p.warnings...),
		Problems: []problemJSON{},
	}
	for _, e := range p.tenants {
		out.Tenants = append(out.Tenants, e.json())
	}
	for _, err := range p.problems {
		out.Problems = append(out.Problems, newProblemJSON(err))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (e *entry) json() encryptionJSON {
	j := encryptionJSON{
		Tenant:           e.tenant,
		Valid:            e.enc != nil,
		CustomerKeyFile:  e.keyFile,
		PreviousKeyFiles: e.prevFiles,
		Sources:          e.sources,
	}
	if e.enc != nil {
		j.Type = e.enc.Type()
		j.KMSKeyID = e.enc.KMSKeyID()
		j.KMSEncryptionContext = e.enc.Context()
		j.CustomerKeyMD5 = e.enc.CustomerKeyMD5()
	}
	if j.Sources == nil {
		j.Sources = []string{}
	}
	return j
}

func newProblemJSON(err error) problemJSON {
	var ce *s3sse.ConfigError
	if !errors.As(err, &ce) {
		return problemJSON{Rule: problemText(err), Message: problemText(err)}
	}
	return problemJSON{
		File:    ce.File,
		Tenant:  ce.Tenant,
		Key:     ce.Key,
		Flag:    ce.Flag,
		Value:   ce.Value,
		Rule:    ce.Reason,
		Message: problemText(err),
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
