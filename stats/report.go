package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// Report is the end-of-run summary written by --stats-file (JSON) and
// --metrics-file (Prometheus text format), for monitoring that looks at
// files rather than at trawl's output.
type Report struct {
	Snapshot
	// Started and Finished bound the run.
	Started  time.Time
	Finished time.Time
	// ExitCode is trawl's exit status for this run.
	ExitCode int
	// Outcome says in a word how the run ended: ok, failures, interrupted,
	// incomplete or error.
	Outcome string
	// Output is the records file ("-" for standard output).
	Output string
}

// jsonCounts are the figures of a set of records.
type jsonCounts struct {
	URLs          int64            `json:"urls"`
	OK            int64            `json:"ok"`
	Failed        int64            `json:"failed"`
	NotModified   int64            `json:"not_modified"`
	RobotsRefused int64            `json:"robots_refused"`
	StatusClasses map[string]int64 `json:"status_classes"`
	ErrorKinds    map[string]int64 `json:"error_kinds"`
}

func countsOf(t Totals) jsonCounts {
	classes := make(map[string]int64)
	for _, c := range StatusClasses() {
		classes[c] = t.ByClass[c]
	}
	kinds := make(map[string]int64)
	for _, k := range record.Kinds() {
		kinds[string(k)] = t.ByKind[k]
	}
	return jsonCounts{URLs: t.Records, OK: t.OK, Failed: t.Failed, NotModified: t.NotModified, RobotsRefused: t.Refused,
		StatusClasses: classes, ErrorKinds: kinds}
}

// jsonReport fixes the JSON layout, which scripts depend on. Version 2:
// the top-level counts describe the whole output, records kept from
// earlier runs (--resume) included; this_run has this run's alone.
// not_modified (304s to --since, among ok) and robots_refused (neither ok
// nor failed) were added within version 2.
type jsonReport struct {
	Version       int              `json:"version"`
	Started       time.Time        `json:"started"`
	Finished      time.Time        `json:"finished"`
	DurationSec   float64          `json:"duration_seconds"`
	Outcome       string           `json:"outcome"`
	ExitCode      int              `json:"exit_code"`
	Output        string           `json:"output"`
	URLs          int64            `json:"urls"`
	OK            int64            `json:"ok"`
	Failed        int64            `json:"failed"`
	NotModified   int64            `json:"not_modified"`
	RobotsRefused int64            `json:"robots_refused"`
	Resumed       int64            `json:"resumed"`
	StatusClasses map[string]int64 `json:"status_classes"`
	ErrorKinds    map[string]int64 `json:"error_kinds"`
	ThisRun       jsonCounts       `json:"this_run"`
	Retries       int64            `json:"retries"`
	Bytes         int64            `json:"bytes"`
	URLsPerSecond float64          `json:"urls_per_second"`
	LatencyMillis map[string]any   `json:"latency_ms"`
	PerHostCap    jsonHostCap      `json:"per_host_cap"`
}

// jsonHostCap says how much the per-host cap held the run back; limited is
// true when the summary said so.
type jsonHostCap struct {
	PerHost     int     `json:"per_host"`
	Workers     int     `json:"workers"`
	HeldSeconds float64 `json:"held_seconds"`
	IdleWorkers float64 `json:"idle_workers"`
	Limited     bool    `json:"limited"`
}

// JSON renders the report as an indented JSON document.
func (r Report) JSON() ([]byte, error) {
	whole := countsOf(r.Whole())
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out, err := json.MarshalIndent(jsonReport{
		Version:       2,
		Started:       r.Started.UTC(),
		Finished:      r.Finished.UTC(),
		DurationSec:   r.Finished.Sub(r.Started).Seconds(),
		Outcome:       r.Outcome,
		ExitCode:      r.ExitCode,
		Output:        r.Output,
		URLs:          whole.URLs,
		OK:            whole.OK,
		Failed:        whole.Failed,
		NotModified:   whole.NotModified,
		RobotsRefused: whole.RobotsRefused,
		Resumed:       r.Earlier.Records,
		StatusClasses: whole.StatusClasses,
		ErrorKinds:    whole.ErrorKinds,
		ThisRun: countsOf(Totals{Records: r.Records, OK: r.OK, Failed: r.Failed, NotModified: r.NotModified, Refused: r.Refused,
			ByKind: r.ByKind, ByClass: r.ByClass}),
		Retries:       r.Retries,
		Bytes:         r.Bytes,
		URLsPerSecond: r.Rate(),
		LatencyMillis: map[string]any{"p50": ms(r.P50), "p95": ms(r.P95), "p99": ms(r.P99)},
		PerHostCap: jsonHostCap{
			PerHost: r.HostCap.PerHost, Workers: r.HostCap.Workers, HeldSeconds: r.HostCap.Held.Seconds(),
			IdleWorkers: math.Round(r.HostCap.IdleWorkers()*10) / 10, Limited: r.HostCap.Limited(),
		},
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Prometheus renders the report in the Prometheus text exposition format,
// for node_exporter's textfile collector. Every metric is a gauge about the
// last run.
func (r Report) Prometheus() []byte {
	var b strings.Builder
	metric := func(name, help string, samples map[string]float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		keys := make([]string, 0, len(samples))
		for k := range samples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s%s %s\n", name, k, formatFloat(samples[k]))
		}
	}
	one := func(v float64) map[string]float64 { return map[string]float64{"": v} }
	success := 0.0
	if r.ExitCode == 0 {
		success = 1
	}
	metric("trawl_last_run_timestamp_seconds", "When the last run finished, as a Unix time.", one(float64(r.Finished.UnixMilli())/1000))
	metric("trawl_last_run_success", "1 if the last run exited 0, else 0.", one(success))
	metric("trawl_last_run_exit_code", "Exit status of the last run.", one(float64(r.ExitCode)))
	metric("trawl_last_run_duration_seconds", "Wall time of the last run.", one(r.Finished.Sub(r.Started).Seconds()))
	whole := r.Whole()
	metric("trawl_last_run_urls", "Records in the last run's output by result (refused: by robots.txt), those kept from earlier runs (--resume) included.", map[string]float64{
		`{result="ok"}`: float64(whole.OK), `{result="failed"}`: float64(whole.Failed), `{result="refused"}`: float64(whole.Refused),
	})
	metric("trawl_last_run_this_run_urls", "Records the last run itself wrote, by result (refused: by robots.txt).", map[string]float64{
		`{result="ok"}`: float64(r.OK), `{result="failed"}`: float64(r.Failed), `{result="refused"}`: float64(r.Refused),
	})
	metric("trawl_last_run_not_modified_urls", "Records of the last run's output whose URL answered 304 Not Modified to --since (counted among ok).", one(float64(whole.NotModified)))
	metric("trawl_last_run_resumed_urls", "URLs an earlier run had already done.", one(float64(r.Earlier.Records)))
	classes := map[string]float64{}
	for _, c := range StatusClasses() {
		classes[fmt.Sprintf(`{class=%q}`, c)] = float64(whole.ByClass[c])
	}
	metric("trawl_last_run_responses", "Records of the last run's output by HTTP status class (none: no response).", classes)
	kinds := map[string]float64{}
	for _, k := range record.Kinds() {
		kinds[fmt.Sprintf(`{kind=%q}`, k)] = float64(whole.ByKind[k])
	}
	metric("trawl_last_run_errors", "Failed records of the last run's output by error kind.", kinds)
	metric("trawl_last_run_retries", "Retries sent in the last run.", one(float64(r.Retries)))
	metric("trawl_last_run_bytes", "Body bytes received in the last run.", one(float64(r.Bytes)))
	metric("trawl_last_run_latency_seconds", "Per-URL latency quantiles of the last run.", map[string]float64{
		`{quantile="0.5"}`: r.P50.Seconds(), `{quantile="0.95"}`: r.P95.Seconds(), `{quantile="0.99"}`: r.P99.Seconds(),
	})
	return []byte(b.String())
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
