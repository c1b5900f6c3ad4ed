// Package transform computes values from fetched responses. A Transform is
// looked up by name in a Registry, configured with an optional argument, and
// run as part of a Chain that writes each transform's outputs into the
// record under keys the user can choose.
//
// A transform never drops a record: a failure marks the record with
// error_kind "transform" and the record is still written.
package transform

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// Transform computes output values from one record's response.
type Transform interface {
	// Keys names the outputs for a transform stored under key. Most
	// transforms have one output, named key itself.
	Keys(key string) []string
	// Apply computes one value per key, in the order Keys gives. A nil
	// value means "nothing found" and is written as null.
	Apply(ctx context.Context, in *Input) ([]any, error)
}

// Func adapts a function computing a single value into a Transform.
type Func func(ctx context.Context, in *Input) (any, error)

// Keys returns just key.
func (f Func) Keys(key string) []string { return []string{key} }

// Apply calls f.
func (f Func) Apply(ctx context.Context, in *Input) ([]any, error) {
	v, err := f(ctx, in)
	return []any{v}, err
}

// Options are the run-wide settings transforms are built with.
type Options struct {
	// ExecTimeout bounds one run of an exec command or a jq program.
	ExecTimeout time.Duration
	// MaxOutput caps what an exec command may write to its stdout.
	MaxOutput int64
}

// DefaultOptions are the settings used when none are given.
func DefaultOptions() Options {
	return Options{ExecTimeout: 30 * time.Second, MaxOutput: 10 << 20}
}

// ArgPolicy says whether a transform takes an argument.
type ArgPolicy int

// The argument policies.
const (
	NoArg ArgPolicy = iota
	OptionalArg
	RequiredArg
)

// Info describes a registered transform.
type Info struct {
	// Name is what users write after -x.
	Name string
	// Summary is one line of help.
	Summary string
	// Example is a complete -x argument showing typical use.
	Example string
	// Arg says whether NAME=ARG is required, allowed or refused.
	Arg ArgPolicy
	// Reads says what the transform works on, for the listing: "response"
	// or "text" (the previous output when it is a string, else the body).
	Reads string
	// New builds the transform for an argument (empty when none was given).
	// It is called once per run, so expensive preparation (compiling a
	// pattern, a selector, a jq program) belongs here and its errors are
	// reported before anything is fetched.
	New func(arg string, opts Options) (Transform, error)
}

// Registry maps names to transforms.
type Registry struct {
	infos map[string]Info
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{infos: make(map[string]Info)}
}

// Register adds info, refusing a name that is already taken.
func (reg *Registry) Register(info Info) error {
	if info.Name == "" || strings.ContainsAny(info.Name, ":=") {
		return fmt.Errorf("invalid transform name %q", info.Name)
	}
	if _, dup := reg.infos[info.Name]; dup {
		return fmt.Errorf("transform %q registered twice", info.Name)
	}
	reg.infos[info.Name] = info
	return nil
}

// Lookup finds a transform by name.
func (reg *Registry) Lookup(name string) (Info, bool) {
	info, ok := reg.infos[name]
	return info, ok
}

// List returns every registered transform sorted by name.
func (reg *Registry) List() []Info {
	out := make([]Info, 0, len(reg.infos))
	for _, info := range reg.infos {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Spec is one parsed -x argument: [KEY:]NAME[=ARG].
type Spec struct {
	Key    string
	Name   string
	Arg    string
	HasArg bool
}

// ParseSpec parses [KEY:]NAME[=ARG]. The key defaults to the name. Only the
// part before the first '=' is searched for the key separator, so arguments
// may contain ':' and '=' freely.
func ParseSpec(s string) (Spec, error) {
	head, arg, hasArg := strings.Cut(s, "=")
	key, name, hasKey := strings.Cut(head, ":")
	if !hasKey {
		name, key = head, head
	}
	if name == "" {
		return Spec{}, fmt.Errorf("bad transform %q: want NAME, NAME=ARG or KEY:NAME[=ARG]", s)
	}
	if !validKey(key) {
		return Spec{}, fmt.Errorf("bad transform %q: key %q must be letters, digits, '_' or '-'", s, key)
	}
	return Spec{Key: key, Name: name, Arg: arg, HasArg: hasArg}, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Chain applies transforms in order, each writing its own columns.
type Chain struct {
	steps   []step
	columns []string
}

type step struct {
	key   string
	t     Transform
	first int // index of this step's first column
	n     int // number of columns it fills
}

// NewChain builds the transforms named by specs. reserved reports keys the
// record already uses for its fixed fields, which transforms may not take.
func (reg *Registry) NewChain(specs []Spec, reserved func(string) bool, opts Options) (*Chain, error) {
	c := &Chain{}
	owner := make(map[string]string)
	for _, sp := range specs {
		info, ok := reg.Lookup(sp.Name)
		if !ok {
			return nil, fmt.Errorf("unknown transform %q (see 'trawl transforms')", sp.Name)
		}
		switch {
		case info.Arg == NoArg && sp.HasArg:
			return nil, fmt.Errorf("transform %q takes no argument", sp.Name)
		case info.Arg == RequiredArg && !sp.HasArg:
			return nil, fmt.Errorf("transform %q needs an argument, e.g. -x %s", sp.Name, info.Example)
		}
		t, err := info.New(sp.Arg, opts)
		if err != nil {
			return nil, fmt.Errorf("transform %s: %w", sp.Name, err)
		}
		keys := t.Keys(sp.Key)
		for _, k := range keys {
			if reserved != nil && reserved(k) {
				return nil, fmt.Errorf("transform %s cannot write %q: the record already has that field; choose another key with -x KEY:%s", sp.Name, k, sp.Name)
			}
			if prev, dup := owner[k]; dup {
				return nil, fmt.Errorf("transforms %s and %s both write %q; give one its own key with -x KEY:%s", prev, sp.Name, k, sp.Name)
			}
			owner[k] = sp.Name
		}
		c.steps = append(c.steps, step{key: sp.Key, t: t, first: len(c.columns), n: len(keys)})
		c.columns = append(c.columns, keys...)
	}
	return c, nil
}

// Columns returns the output keys of the whole chain, in order.
func (c *Chain) Columns() []string { return c.columns }

// Len returns the number of transforms in the chain.
func (c *Chain) Len() int { return len(c.steps) }

// Runs reports whether the chain applies to r: only to complete responses,
// including those whose status was not accepted (an error page still has a
// title), but not to requests that failed or whose body is incomplete.
func Runs(r *record.Record) bool {
	return r.Status > 0 && (r.Err == nil || r.ErrKind == record.KindHTTPStatus)
}

// Apply runs every transform on r and stores the outputs in r.Values. The
// first failing transform marks the record; later ones still run, so one
// bad extraction does not hide the others.
func (c *Chain) Apply(ctx context.Context, r *record.Record) {
	if len(c.steps) == 0 {
		return
	}
	r.Values = make([]any, len(c.columns))
	if !Runs(r) {
		return
	}
	in := NewInput(r)
	for _, s := range c.steps {
		vals, err := safeApply(ctx, s.t, in)
		if err == nil && len(vals) != s.n {
			err = fmt.Errorf("produced %d values for %d keys", len(vals), s.n)
		}
		if err != nil {
			kind := record.KindTransform
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				kind = record.KindCanceled
			}
			r.Fail(kind, fmt.Errorf("transform %s: %w", s.key, err))
			in.setPrevious(nil, false)
			continue
		}
		copy(r.Values[s.first:s.first+s.n], vals)
		in.setPrevious(vals[0], true)
	}
}

// safeApply turns a panic in a transform into an error on its record: one
// pathological body must not take the whole run down.
func safeApply(ctx context.Context, t Transform, in *Input) (vals []any, err error) {
	defer func() {
		if p := recover(); p != nil {
			vals, err = nil, fmt.Errorf("internal error: %v", p)
		}
	}()
	return t.Apply(ctx, in)
}
