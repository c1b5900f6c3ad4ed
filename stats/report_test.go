package stats

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

func sampleReport() Report {
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	s := New(start)
	s.Observe(&record.Record{Status: 200, Attempts: 1, Bytes: 10, Duration: 20 * time.Millisecond})
	gone := &record.Record{Status: 404, Attempts: 1, Duration: 5 * time.Millisecond}
	gone.Fail(record.KindHTTPStatus, errors.New("HTTP 404"))
	s.Observe(gone)
	slow := &record.Record{Attempts: 3, Duration: time.Second}
	slow.Fail(record.KindTimeout, errors.New("slow"))
	s.Observe(slow)
	// An earlier run had left 7 records, one of them failed.
	s.AddEarlier(Earlier{Records: 7, Failed: 1, ByKind: map[record.Kind]int64{record.KindInvalidURL: 1}, ByClass: map[string]int64{"2xx": 6, "none": 1}})
	s.SetHostCap(HostCap{PerHost: 8, Workers: 64, Span: 2 * time.Second, Held: 1500 * time.Millisecond, Idle: 84 * time.Second})
	end := start.Add(2 * time.Second)
	return Report{Snapshot: s.Snapshot(end), Started: start, Finished: end, ExitCode: 3, Outcome: "failures", Output: "out.jsonl"}
}

func TestReportJSON(t *testing.T) {
	b, err := sampleReport().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version       int              `json:"version"`
		Outcome       string           `json:"outcome"`
		ExitCode      int              `json:"exit_code"`
		URLs          int64            `json:"urls"`
		OK            int64            `json:"ok"`
		Failed        int64            `json:"failed"`
		Resumed       int64            `json:"resumed"`
		Duration      float64          `json:"duration_seconds"`
		StatusClasses map[string]int64 `json:"status_classes"`
		ErrorKinds    map[string]int64 `json:"error_kinds"`
		ThisRun       struct {
			URLs       int64            `json:"urls"`
			OK         int64            `json:"ok"`
			Failed     int64            `json:"failed"`
			ErrorKinds map[string]int64 `json:"error_kinds"`
		} `json:"this_run"`
		Retries    int64 `json:"retries"`
		Latency    map[string]float64
		PerHostCap struct {
			PerHost     int     `json:"per_host"`
			Workers     int     `json:"workers"`
			HeldSeconds float64 `json:"held_seconds"`
			IdleWorkers float64 `json:"idle_workers"`
			Limited     bool    `json:"limited"`
		} `json:"per_host_cap"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	// The top level is the whole output: 3 records of this run and 7
	// kept from the earlier one.
	if got.Version != 2 || got.Outcome != "failures" || got.ExitCode != 3 || got.URLs != 10 || got.OK != 7 || got.Failed != 3 ||
		got.Resumed != 7 || got.Duration != 2 || got.Retries != 2 {
		t.Fatalf("report: %+v", got)
	}
	if got.ThisRun.URLs != 3 || got.ThisRun.OK != 1 || got.ThisRun.Failed != 2 || got.ThisRun.ErrorKinds["invalid_url"] != 0 {
		t.Fatalf("this run: %+v", got.ThisRun)
	}
	if got.StatusClasses["2xx"] != 7 || got.StatusClasses["4xx"] != 1 || got.StatusClasses["none"] != 2 || got.StatusClasses["5xx"] != 0 {
		t.Fatalf("classes: %v", got.StatusClasses)
	}
	if got.ErrorKinds["timeout"] != 1 || got.ErrorKinds["http_status"] != 1 || got.ErrorKinds["invalid_url"] != 1 || got.ErrorKinds["dns"] != 0 {
		t.Fatalf("kinds: %v", got.ErrorKinds)
	}
	if c := got.PerHostCap; c.PerHost != 8 || c.Workers != 64 || c.HeldSeconds != 1.5 || c.IdleWorkers != 56 || !c.Limited {
		t.Fatalf("per-host cap: %+v", c)
	}
	if !strings.Contains(string(b), `"started": "2026-11-27T03:00:00Z"`) {
		t.Fatalf("start time missing:\n%s", b)
	}
}

func TestReportPrometheus(t *testing.T) {
	text := string(sampleReport().Prometheus())
	for _, want := range []string{
		"# TYPE trawl_last_run_success gauge\ntrawl_last_run_success 0\n",
		"trawl_last_run_timestamp_seconds 1795748402\n",
		"trawl_last_run_exit_code 3\n",
		`trawl_last_run_urls{result="failed"} 3` + "\n",
		`trawl_last_run_this_run_urls{result="failed"} 2` + "\n",
		"trawl_last_run_resumed_urls 7\n",
		`trawl_last_run_errors{kind="invalid_url"} 1` + "\n",
		`trawl_last_run_responses{class="4xx"} 1` + "\n",
		`trawl_last_run_errors{kind="timeout"} 1` + "\n",
		`trawl_last_run_latency_seconds{quantile="0.99"} 1.0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in\n%s", want, text)
		}
	}
	// Every line is a comment or "name{labels} value", as the format asks.
	line := regexp.MustCompile(`^(# (HELP|TYPE) trawl_[a-z_]+ .+|trawl_[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.e+]+)$`)
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("malformed line %q", l)
		}
	}
}
