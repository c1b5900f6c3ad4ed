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
	end := start.Add(2 * time.Second)
	return Report{Snapshot: s.Snapshot(end), Started: start, Finished: end, ExitCode: 3, Outcome: "failures", Output: "out.jsonl", Resumed: 7}
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
		Retries       int64            `json:"retries"`
		Latency       map[string]float64
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, b)
	}
	if got.Version != 1 || got.Outcome != "failures" || got.ExitCode != 3 || got.URLs != 3 || got.OK != 1 || got.Failed != 2 ||
		got.Resumed != 7 || got.Duration != 2 || got.Retries != 2 {
		t.Fatalf("report: %+v", got)
	}
	if got.StatusClasses["2xx"] != 1 || got.StatusClasses["4xx"] != 1 || got.StatusClasses["none"] != 1 || got.StatusClasses["5xx"] != 0 {
		t.Fatalf("classes: %v", got.StatusClasses)
	}
	if got.ErrorKinds["timeout"] != 1 || got.ErrorKinds["http_status"] != 1 || got.ErrorKinds["dns"] != 0 {
		t.Fatalf("kinds: %v", got.ErrorKinds)
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
		`trawl_last_run_urls{result="failed"} 2` + "\n",
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
