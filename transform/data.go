package transform

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/itchyny/gojq"
)

// maxResults bounds how many values one jq program or regex may produce for
// one record, so that `range(1e9)` or `regex=.` over a large body ends in a
// clear error instead of exhausting memory.
const maxResults = 100_000

func jsonValue(_ context.Context, in *Input) (any, error) {
	return in.JSON()
}

// newJQ compiles a jq program once per run; a syntax error is a usage error.
func newJQ(arg string, opts Options) (Transform, error) {
	q, err := gojq.Parse(arg)
	if err != nil {
		return nil, fmt.Errorf("bad jq program %q: %w", arg, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("bad jq program %q: %w", arg, err)
	}
	return Func(func(ctx context.Context, in *Input) (any, error) {
		v, err := in.JSON()
		if err != nil {
			return nil, err
		}
		if opts.ExecTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, opts.ExecTimeout)
			defer cancel()
		}
		var results []any
		iter := code.RunWithContext(ctx, v)
		for {
			r, ok := iter.Next()
			if !ok {
				break
			}
			if err, isErr := r.(error); isErr {
				var halt *gojq.HaltError
				if errors.As(err, &halt) && halt.Value() == nil {
					break
				}
				if errors.Is(err, context.DeadlineExceeded) {
					return nil, fmt.Errorf("jq program ran longer than %s (--exec-timeout)", opts.ExecTimeout)
				}
				return nil, fmt.Errorf("jq: %w", err)
			}
			if len(results) == maxResults {
				return nil, fmt.Errorf("jq program produced more than %d results", maxResults)
			}
			results = append(results, r)
		}
		switch len(results) {
		case 0:
			return nil, nil
		case 1:
			return results[0], nil
		}
		return results, nil
	}), nil
}

// newRegex compiles an RE2 pattern once per run. Its output lists every
// match, or the first capture group of every match when the pattern has one.
func newRegex(arg string, _ Options) (Transform, error) {
	re, err := regexp.Compile(arg)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression %q: %w", arg, err)
	}
	group := 0
	if re.NumSubexp() > 0 {
		group = 1
	}
	return Func(func(_ context.Context, in *Input) (any, error) {
		s, err := in.TextInput()
		if err != nil {
			return nil, err
		}
		out := []string{}
		for _, m := range re.FindAllStringSubmatchIndex(s, maxResults+1) {
			if len(out) == maxResults {
				return nil, fmt.Errorf("more than %d matches", maxResults)
			}
			if m[2*group] >= 0 {
				out = append(out, s[m[2*group]:m[2*group+1]])
			}
		}
		return out, nil
	}), nil
}

func lines(_ context.Context, in *Input) (any, error) {
	s, err := in.TextInput()
	if err != nil {
		return nil, err
	}
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n, nil
}

func words(_ context.Context, in *Input) (any, error) {
	s, err := in.TextInput()
	if err != nil {
		return nil, err
	}
	return len(strings.Fields(s)), nil
}
