package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/s3sse/s3sse"
)

// How often progress is shown: the bar is redrawn, or a line printed.
var (
	barInterval  = 200 * time.Millisecond
	lineInterval = 30 * time.Second
)

const barWidth = 24

// printer writes the results of a walk to stdout and its progress to
// stderr. One lock orders every write, so that the progress bar is cleared
// before a result is printed and lines never interleave.
type printer struct {
	app     *app
	opts    walkOptions
	command string
	json    *json.Encoder

	mu       sync.Mutex
	progress string // bar, lines or off
	barShown bool
	tenants  int
	walk     *walk
	done     chan struct{}
	stopped  sync.WaitGroup
}

func newPrinter(a *app, opts walkOptions) *printer {
	p := &printer{app: a, opts: opts, command: "audit", progress: opts.progress}
	if opts.reencrypt {
		p.command = "reencrypt"
	}
	if opts.output == "json" {
		p.json = json.NewEncoder(a.stdout)
	}
	if p.progress == "auto" {
		p.progress = "lines"
		if a.isTerminal(a.stderr) {
			p.progress = "bar"
		}
	}
	return p
}

// isTerminal reports whether w is a terminal, by the app's seam or else by
// whether it is a character device. Pipes and files are not.
func (a *app) isTerminal(w io.Writer) bool {
	if a.terminal != nil {
		return a.terminal(w)
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// start begins showing progress for the walk.
func (p *printer) start(w *walk) {
	p.walk = w
	if p.progress == "off" {
		return
	}
	interval := lineInterval
	if p.progress == "bar" {
		interval = barInterval
	}
	p.done = make(chan struct{})
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				p.showProgress()
			}
		}
	}()
}

// stop stops the progress and clears the bar.
func (p *printer) stop() {
	if p.done == nil {
		return
	}
	close(p.done)
	p.stopped.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBarLocked()
}

func (p *printer) showProgress() {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.walk
	listed, checked := w.listed.Load(), w.checked.Load()
	done := w.tenantsDone.Load()
	counts := fmt.Sprintf("%d/%d objects, %d/%d tenants, %d non-compliant", checked, listed,
		done, p.tenants, w.nonCompl.Load())
	if p.opts.apply {
		counts += fmt.Sprintf(", %d re-encrypted", w.rewritten.Load())
	}

	if p.progress == "lines" {
		fmt.Fprintf(p.app.stderr, "%s: %s\n", p.command, counts)
		return
	}
	filled := 0
	if listed > 0 {
		filled = int(int64(barWidth) * checked / listed)
	}
	// The total grows while tenants are still being listed.
	more := ""
	if done < int64(p.tenants) {
		more = "+"
	}
	fmt.Fprintf(p.app.stderr, "\r\x1b[K[%s%s] %s%s", strings.Repeat("#", filled),
		strings.Repeat(".", barWidth-filled), counts, more)
	p.barShown = true
}

func (p *printer) clearBarLocked() {
	if p.barShown {
		fmt.Fprint(p.app.stderr, "\r\x1b[K")
		p.barShown = false
	}
}

func (p *printer) tenantsKnown(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tenants = n
}

// errorf reports an error that is not about one object.
func (p *printer) errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearBarLocked()
	fmt.Fprintf(p.app.stderr, "s3sse %s: error: %s\n", p.command, fmt.Sprintf(format, args...))
}

// tenantDone reports a tenant whose objects are all done, as a progress
// line when progress is shown as lines.
func (p *printer) tenantDone(w *walk, t *tenantWalk) {
	t.mu.Lock()
	s, err := t.stats, t.err
	t.mu.Unlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.clearBarLocked()
		fmt.Fprintf(p.app.stderr, "s3sse %s: error: tenant %q: %v\n", p.command, t.id, err)
	}
	if p.progress != "lines" {
		return
	}
	line := fmt.Sprintf("%s: tenant %s: %d objects (%s), %d non-compliant", p.command, t.id,
		s.objects, humanBytes(s.bytes), s.nonCompliant)
	if p.opts.apply {
		line += fmt.Sprintf(", %d re-encrypted", s.reencrypted)
	}
	fmt.Fprintf(p.app.stderr, "%s [%d/%d tenants]\n", line, w.tenantsDone.Load(), p.tenants)
}

// object reports an object that is not compliant, or what became of it.
func (p *printer) object(j job, o *outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json != nil {
		_ = p.json.Encode(newObjectJSON(j, o))
		return
	}
	p.clearBarLocked()

	var detail string
	switch o.status {
	case statusReencrypted:
		detail = fmt.Sprintf("%s -> %s", o.stored, *o.now)
	case statusError, statusFailed:
		detail = o.err.Error()
	case statusCannotReencrypt, statusNonCompliant, statusWouldReencrypt, statusSkipped:
		detail = o.reason
	}
	fmt.Fprintf(p.app.stdout, "%-16s %s (%s): %s\n", strings.ToUpper(o.status), j.key,
		humanBytes(o.size), detail)
}

// summary prints the per-tenant summary and the totals.
func (p *printer) summary(w *walk) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json != nil {
		p.summaryJSON(w)
		return
	}
	p.clearBarLocked()
	out := p.app.stdout
	total, tenantErrors := w.totals()

	if len(w.tenants) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		head := "TENANT\tREQUIRED\tOBJECTS\tBYTES\tCOMPLIANT\tNON-COMPLIANT"
		if p.opts.reencrypt {
			head += "\tRE-ENCRYPTED\tSKIPPED\tFAILED"
		}
		fmt.Fprintln(tw, head+"\tERRORS")
		for _, t := range w.tenants {
			t.mu.Lock()
			s, err := t.stats, t.err
			t.mu.Unlock()
			required := describeRequired(t.want)
			row := fmt.Sprintf("%s\t%s\t%d\t%s\t%d\t%d", t.id, required, s.objects,
				humanBytes(s.bytes), s.compliant, s.nonCompliant)
			if p.opts.reencrypt {
				row += fmt.Sprintf("\t%d\t%d\t%d", s.reencrypted, s.skipped, s.failed)
			}
			errs := fmt.Sprint(s.errors)
			if err != nil {
				errs += " (tenant not fully walked)"
			}
			fmt.Fprintln(tw, row+"\t"+errs)
		}
		_ = tw.Flush()

		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		stored := "STORED ENCRYPTION"
		if p.opts.apply {
			stored += " (AS FOUND)"
		}
		fmt.Fprintln(tw, "TENANT\t"+stored+"\tOBJECTS\tBYTES")
		for _, t := range w.tenants {
			for _, c := range t.byEncryption() {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", t.id, c.stored, c.objects, humanBytes(c.bytes))
			}
		}
		_ = tw.Flush()
		fmt.Fprintln(out)
	}

	if w.listErr != nil {
		fmt.Fprintln(out, "Nothing was audited: the bucket could not be listed.")
		return
	}
	fmt.Fprintf(out, "%d tenant%s, %d objects (%s): %d comply, %d do not",
		len(w.tenants), plural(len(w.tenants)), total.objects, humanBytes(total.bytes),
		total.compliant, total.nonCompliant)
	if total.errors > 0 || tenantErrors > 0 {
		fmt.Fprintf(out, ", %d could not be checked", total.errors)
	}
	fmt.Fprintln(out, ".")
	switch n := w.outside.Load(); {
	case n == 1:
		fmt.Fprintln(out, "1 object at the top level of the bucket belongs to no tenant and "+
			"was not audited.")
	case n > 1:
		fmt.Fprintf(out, "%d objects at the top level of the bucket belong to no tenant and "+
			"were not audited.\n", n)
	}

	if p.opts.reencrypt {
		switch {
		case !p.opts.apply && total.remaining > 0:
			fmt.Fprintf(out, "Dry run: %d object%s would be re-encrypted; run again with -apply "+
				"to rewrite them.\n", total.remaining-total.failed, plural(int(total.remaining-total.failed)))
		case p.opts.apply:
			fmt.Fprintf(out, "Re-encrypted %d object%s (%s); %d skipped as changed or deleted "+
				"concurrently; %d failed.\n", total.reencrypted, plural(int(total.reencrypted)),
				humanBytes(total.reencryptedBytes), total.skipped, total.failed)
		}
	}
	if w.interrupted.Load() {
		fmt.Fprintf(out, "Interrupted before the end: run the command again to do what is left.\n")
	}
}

func (t *tenantWalk) byEncryption() []*storedCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	counts := make([]*storedCount, 0, len(t.stats.byEncryption))
	for _, c := range t.stats.byEncryption {
		counts = append(counts, c)
	}
	sort.Slice(counts, func(i, j int) bool {
		return counts[i].stored.String() < counts[j].stored.String()
	})
	return counts
}

// describeRequired is a tenant's policy on one line, its SSE-C key named
// by its MD5 as S3 reports stored objects; "-" when it is not known.
func describeRequired(e *s3sse.Encryption) string {
	switch {
	case e == nil:
		return "-"
	case e.Type() == s3sse.TypeNone:
		return "none"
	case e.Type() == s3sse.TypeSSEC:
		return "SSE-C key-md5=" + e.CustomerKeyMD5()
	}
	return e.String()
}

// sseJSON is an encryption as the JSON output writes it, whether stored or
// required.
type sseJSON struct {
	// Type is "" for no SSE.
	Type                 s3sse.SSEType     `json:"type"`
	KMSKeyID             string            `json:"kms_key_id,omitempty"`
	KMSEncryptionContext map[string]string `json:"kms_encryption_context,omitempty"`
	CustomerKeyMD5       string            `json:"customer_key_md5,omitempty"`
}

func storedJSON(s s3sse.StoredEncryption) *sseJSON {
	return &sseJSON{Type: s.Type, KMSKeyID: s.KMSKeyID, KMSEncryptionContext: s.Context,
		CustomerKeyMD5: s.CustomerKeyMD5}
}

func requiredJSON(e *s3sse.Encryption) *sseJSON {
	if e == nil {
		return nil
	}
	return &sseJSON{Type: e.Type(), KMSKeyID: e.KMSKeyID(), KMSEncryptionContext: e.Context(),
		CustomerKeyMD5: e.CustomerKeyMD5()}
}

type objectJSON struct {
	Record      string   `json:"record"` // "object"
	Tenant      string   `json:"tenant"`
	Object      string   `json:"object"` // the name within the tenant
	Key         string   `json:"key"`    // the key in the bucket
	Size        int64    `json:"size"`
	ETag        string   `json:"etag,omitempty"`
	Status      string   `json:"status"`
	Stored      *sseJSON `json:"stored,omitempty"`
	Required    *sseJSON `json:"required,omitempty"`
	Reencrypted *sseJSON `json:"reencrypted_as,omitempty"`
	Reason      string   `json:"reason,omitempty"`
	Error       string   `json:"error,omitempty"`
}

func newObjectJSON(j job, o *outcome) objectJSON {
	r := objectJSON{Record: "object", Tenant: j.t.id, Object: j.name, Key: j.key, Size: o.size,
		ETag: strings.Trim(o.etag, `"`), Status: o.status, Required: requiredJSON(j.t.want),
		Reason: o.reason}
	if o.status != statusError {
		r.Stored = storedJSON(o.stored)
	}
	if o.now != nil {
		r.Reencrypted = storedJSON(*o.now)
	}
	if o.err != nil {
		r.Error = o.err.Error()
	}
	return r
}

type countJSON struct {
	Encryption *sseJSON `json:"encryption"`
	Objects    int64    `json:"objects"`
	Bytes      int64    `json:"bytes"`
}

type tenantJSON struct {
	Record       string      `json:"record"` // "tenant"
	Tenant       string      `json:"tenant"`
	Required     *sseJSON    `json:"required,omitempty"`
	Objects      int64       `json:"objects"`
	Bytes        int64       `json:"bytes"`
	Compliant    int64       `json:"compliant"`
	NonCompliant int64       `json:"non_compliant"`
	Reencrypted  int64       `json:"reencrypted"`
	Skipped      int64       `json:"skipped"`
	Failed       int64       `json:"failed"`
	Errors       int64       `json:"errors"`
	Remaining    int64       `json:"remaining"`
	ByEncryption []countJSON `json:"by_encryption"`
	Error        string      `json:"error,omitempty"`
}

type summaryJSON struct {
	Record         string `json:"record"` // "summary"
	Command        string `json:"command"`
	Apply          bool   `json:"apply"`
	Compliant      bool   `json:"compliant"`
	Tenants        int    `json:"tenants"`
	Objects        int64  `json:"objects"`
	Bytes          int64  `json:"bytes"`
	NonCompliant   int64  `json:"non_compliant"`
	Reencrypted    int64  `json:"reencrypted"`
	Skipped        int64  `json:"skipped"`
	Failed         int64  `json:"failed"`
	Errors         int64  `json:"errors"`
	Remaining      int64  `json:"remaining"`
	OutsideTenants int64  `json:"outside_tenants"`
	Interrupted    bool   `json:"interrupted"`
	Error          string `json:"error,omitempty"`
	ExitCode       int    `json:"exit_code"`
}

func (p *printer) summaryJSON(w *walk) {
	for _, t := range w.tenants {
		t.mu.Lock()
		s, err := t.stats, t.err
		t.mu.Unlock()
		tj := tenantJSON{Record: "tenant", Tenant: t.id, Required: requiredJSON(t.want),
			Objects: s.objects, Bytes: s.bytes, Compliant: s.compliant,
			NonCompliant: s.nonCompliant, Reencrypted: s.reencrypted, Skipped: s.skipped,
			Failed: s.failed, Errors: s.errors, Remaining: s.remaining,
			ByEncryption: []countJSON{}}
		for _, c := range t.byEncryption() {
			tj.ByEncryption = append(tj.ByEncryption,
				countJSON{Encryption: storedJSON(c.stored), Objects: c.objects, Bytes: c.bytes})
		}
		if err != nil {
			tj.Error = err.Error()
		}
		_ = p.json.Encode(tj)
	}

	total, _ := w.totals()
	code := w.exitCode()
	sj := summaryJSON{Record: "summary", Command: p.command, Apply: p.opts.apply,
		Compliant: code == exitOK, Tenants: len(w.tenants), Objects: total.objects,
		Bytes: total.bytes, NonCompliant: total.nonCompliant, Reencrypted: total.reencrypted,
		Skipped: total.skipped, Failed: total.failed, Errors: total.errors,
		Remaining: total.remaining, OutsideTenants: w.outside.Load(),
		Interrupted: w.interrupted.Load(), ExitCode: code}
	if w.listErr != nil {
		sj.Error = w.listErr.Error()
	}
	_ = p.json.Encode(sj)
}

// humanBytes is a byte count in binary units, as operators read sizes.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
