package warc

import (
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestCombineCRC(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 300000)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, cut := range []int{0, 1, 7, 8, 4096, 65535, 150000, len(buf) - 1, len(buf)} {
		a, b := buf[:cut], buf[cut:]
		got := CombineCRC(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b)))
		if want := crc32.ChecksumIEEE(buf); got != want {
			t.Errorf("cut at %d: %08x, want %08x", cut, got, want)
		}
	}
}

func TestHeaderFields(t *testing.T) {
	x := Exchange{ReqID: NewID(), RespID: NewID(), Date: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), URI: "http://a.test/x y",
		Request: []byte("GET / HTTP/1.1\r\n\r\n"), RespLength: 7, BlockDigest: &[20]byte{1}, PayloadDigest: &[20]byte{2}, Truncated: "length"}
	req, resp := string(x.RequestHeader(nil)), string(x.ResponseHeader(nil))
	for _, want := range []string{"WARC/1.1\r\n", "WARC-Type: request\r\n", "WARC-Concurrent-To: " + x.RespID + "\r\n",
		"WARC-Date: 2026-01-02T03:04:05.000006Z\r\n", "WARC-Target-URI: http://a.test/x%20y\r\n", "Content-Length: 18\r\n\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("request header lacks %q:\n%s", want, req)
		}
	}
	for _, want := range []string{"WARC-Type: response\r\n", "WARC-Concurrent-To: " + x.ReqID + "\r\n", "WARC-Truncated: length\r\n",
		"WARC-Payload-Digest: " + Digest([]byte{2, 19: 0}) + "\r\n", "WARC-Block-Digest: " + Digest([]byte{1, 19: 0}) + "\r\n", "Content-Type: application/http;msgtype=response\r\n"} {
		if !strings.Contains(resp, want) {
			t.Errorf("response header lacks %q:\n%s", want, resp)
		}
	}
	if len(x.ReqID) != len("<urn:uuid:00000000-0000-4000-8000-000000000000>") || x.ReqID[24] != '4' || x.ReqID == x.RespID {
		t.Errorf("IDs %s %s", x.ReqID, x.RespID)
	}
}
