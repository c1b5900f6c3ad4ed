package pipeline

import (
	"context"
	"slices"

	"github.com/trawl-dev/trawl/internal/dedupe"
	"github.com/trawl-dev/trawl/record"
)

// joinDuplicates fills in duplicates from their first occurrence just
// before the output. In input order a first occurrence always arrives
// before its duplicates; in completion order a duplicate (which needed no
// request) may come first and is held until its original has passed.
func joinDuplicates(ctx context.Context, in <-chan *record.Record, d *dedupe.Deduper) <-chan *record.Record {
	out := make(chan *record.Record)
	go func() {
		defer close(out)
		send := func(r *record.Record) bool {
			select {
			case out <- r:
				return true
			case <-ctx.Done():
				return false
			}
		}
		held := make(map[int64][]*record.Record)
		for r := range in {
			if r.CopyPending {
				if d.Fill(r) {
					if !send(r) {
						return
					}
				} else {
					held[r.DuplicateOf] = append(held[r.DuplicateOf], r)
				}
				continue
			}
			d.Passed(r)
			if !send(r) {
				return
			}
			for _, h := range held[r.Index] {
				d.Fill(h)
				if !send(h) {
					return
				}
			}
			delete(held, r.Index)
		}
		// Originals that never came were dropped by a stop; their
		// duplicates still get their one record each.
		var rest []*record.Record
		for _, hs := range held {
			rest = append(rest, hs...)
		}
		slices.SortFunc(rest, func(a, b *record.Record) int { return int(a.Index - b.Index) })
		for _, h := range rest {
			dedupe.Abandon(h)
			if !send(h) {
				return
			}
		}
	}()
	return out
}
