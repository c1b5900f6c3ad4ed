package stats

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/record"
)

// TestNotModifiedAndRefused: 304s to --since are successes counted apart,
// and their carried-over bytes were not received; robots.txt refusals are
// neither ok nor failed, so --max-failures never sees them; the summary,
// the stats file and the metrics file all say both.
func TestNotModifiedAndRefused(t *testing.T) {
	st := New(time.Now())
	for range 3 {
		st.Observe(&record.Record{Status: 304, NotModified: true, Bytes: 1000, Attempts: 1, Duration: time.Millisecond})
	}
	st.Observe(&record.Record{Status: 200, Bytes: 10, Attempts: 1, Duration: time.Millisecond})
	for range 2 {
		r := &record.Record{}
		r.Fail(record.KindRobots, errors.New("robots.txt disallows it"))
		st.Fetched(r)
		st.Observe(r)
	}
	r := &record.Record{Status: 404, Attempts: 1}
	r.Fail(record.KindHTTPStatus, errors.New("HTTP 404"))
	st.Observe(r)

	s := st.Snapshot(time.Now())
	if s.Records != 7 || s.OK != 4 || s.NotModified != 3 || s.Failed != 1 || s.Refused != 2 || s.Bytes != 10 || s.FetchFailed != 0 {
		t.Fatalf("snapshot: records %d ok %d not modified %d failed %d refused %d bytes %d fetch-failed %d",
			s.Records, s.OK, s.NotModified, s.Failed, s.Refused, s.Bytes, s.FetchFailed)
	}
	if w := s.Whole(); w.OK != 4 || w.Failed != 1 || w.Refused != 2 || w.NotModified != 3 {
		t.Fatalf("whole: %+v", w)
	}
	if tol, _ := ParseTolerance("1"); tol.Exceeded(s.Whole().Failed, s.Whole().Records) {
		t.Fatal("--max-failures 1 exceeded by one failure and two refusals")
	}
	sum := s.Summary()
	if !strings.Contains(sum, ": 4 ok (3 not modified), 1 failed (http_status 1), 2 refused by robots.txt\n") {
		t.Fatalf("summary:\n%s", sum)
	}
	rep := Report{Snapshot: s, Started: time.Now(), Finished: time.Now(), Outcome: "ok"}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"not_modified": 3`, `"robots_refused": 2`, `"failed": 1`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("stats file lacks %s:\n%s", want, js)
		}
	}
	prom := string(rep.Prometheus())
	for _, want := range []string{"trawl_last_run_not_modified_urls 3\n", `trawl_last_run_urls{result="refused"} 2` + "\n", `trawl_last_run_urls{result="failed"} 1` + "\n"} {
		if !strings.Contains(prom, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
