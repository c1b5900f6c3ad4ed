package fetch

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"  7 ", 7 * time.Second, true},
		{"-3", 0, false},
		{"abc", 0, false},
		{"1.5", 0, false},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true}, // in the past
		{"99999999999999999999", 0, false},         // does not fit int64
		{"9223372036854775807", time.Duration(1<<63-1) / time.Second * time.Second, true},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	base, max := 100*time.Millisecond, time.Second
	for n := 1; n <= 10; n++ {
		ceiling := min(base<<(n-1), max)
		distinct := map[time.Duration]bool{}
		for range 200 {
			d := backoff(base, max, n)
			if d < 0 || d > ceiling {
				t.Fatalf("retry %d: wait %v outside [0, %v]", n, d, ceiling)
			}
			distinct[d] = true
		}
		if len(distinct) < 10 {
			t.Fatalf("retry %d: only %d distinct waits in 200 draws; jitter missing", n, len(distinct))
		}
	}
	if d := backoff(0, max, 3); d != 0 {
		t.Fatalf("zero base gave %v", d)
	}
}

func TestStatusSet(t *testing.T) {
	s, err := ParseStatusSet("200-299, 304,404")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{199: false, 200: true, 250: true, 299: true, 300: false, 304: true, 404: true, 500: false} {
		if s.Contains(code) != want {
			t.Errorf("Contains(%d) = %v", code, !want)
		}
	}
	for _, bad := range []string{"", "abc", "99", "600", "300-200", "200-", ","} {
		if _, err := ParseStatusSet(bad); err == nil {
			t.Errorf("ParseStatusSet(%q) accepted", bad)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "-1", "315360000", "99999999999999999999", "Fri, 02 Jan 2026 03:04:35 GMT", "Mon, 32 Foo 1999 99:99:99 XYZ", " 7 ", "1.5"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, a negative wait", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v without ok", s, d)
		}
	})
}
