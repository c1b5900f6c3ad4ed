// check.mjs: reads trawl's WARC files with webrecorder's warcio (the
// library and its CLI), never with trawl's own code, and checks them
// against the test site they came from (.ci/warc/server) and against
// trawl's records. Run by check.sh:
//
//   node check.mjs --warcio BIN --dir WARCDIR --jsonl FILE --urls FILE [--revisits]
//
// It fails (exit 1) unless:
//   - warcio reads every record of every file, each file starting with a
//     warcinfo record, and the record count of `warcio index` agrees;
//   - every WARC-Block-Digest is the SHA-1 (base32) of the record's block;
//   - every request and response (or revisit) point at each other with
//     WARC-Concurrent-To;
//   - the CDX index (`warcio cdx-index`) lists each URL of the list, and
//     each hop of the redirect chain, exactly once, with its status;
//   - each digest in the CDX equals the SHA-1 of the body fetched again
//     from the server (as sent: not decompressed);
//   - with --revisits, the identical /same/ payloads are one response and
//     revisit records referring to it;
//   - every record of the JSONL output (one per URL, each index once)
//     that has a status points, by warc_file and warc_offset, at the CDX
//     entry of its final URL with that status.
import { createReadStream, readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import http from "node:http";
import path from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i].replace(/^--/, "");
  if (a === "revisits") args.revisits = true;
  else args[a] = process.argv[++i];
}
const require = createRequire(path.join(path.dirname(args.warcio), "..", "warcio", "package.json"));
const { WARCParser } = await import(require.resolve("warcio"));

const failures = [];
const fail = (msg) => {
  failures.push(msg);
  if (failures.length <= 20) console.error("FAIL: " + msg);
};

const base32 = (buf) => {
  const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0, out = "";
  for (const b of buf) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alpha[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alpha[(value << (5 - bits)) & 31];
  return out;
};
const sha1b32 = (buf) => base32(createHash("sha1").update(buf).digest());

const files = readdirSync(args.dir).filter((f) => f.endsWith(".warc.gz")).sort();
if (files.length === 0) fail(`no .warc.gz files in ${args.dir}`);

// 1. Every record, with the library: block digests, links, warcinfo first.
const byID = new Map();
let total = 0;
const counts = {};
for (const name of files) {
  const parser = new WARCParser(createReadStream(path.join(args.dir, name)), { parseHttp: false });
  let first = true;
  for await (const rec of parser) {
    const block = await rec.readFully(false);
    const h = rec.warcHeaders.headers;
    const type = h.get("WARC-Type");
    total++;
    counts[type] = (counts[type] || 0) + 1;
    if (first && type !== "warcinfo") fail(`${name} starts with a ${type} record, not warcinfo`);
    first = false;
    const want = (h.get("WARC-Block-Digest") || "").replace(/^sha1:/, "");
    if (sha1b32(block) !== want) fail(`${name} ${type} ${h.get("WARC-Target-URI")}: block digest ${want}, block hashes to ${sha1b32(block)}`);
    if (Number(h.get("Content-Length")) !== block.length) fail(`${name}: Content-Length ${h.get("Content-Length")} but a block of ${block.length}`);
    byID.set(h.get("WARC-Record-ID"), { type, to: h.get("WARC-Concurrent-To"), headers: h, file: name });
  }
}
for (const [id, r] of byID) {
  if (r.type === "warcinfo") continue;
  const other = byID.get(r.to);
  if (!other || other.to !== id) fail(`${r.type} ${id} (${r.headers.get("WARC-Target-URI")}) is not linked both ways to ${r.to}`);
  else if (r.type === "request" && !["response", "revisit"].includes(other.type)) fail(`request ${id} is concurrent to a ${other.type}`);
}
const listed = execFileSync(args.warcio, ["index", ...files.map((f) => path.join(args.dir, f))], { maxBuffer: 1 << 28 })
  .toString().trim().split("\n").filter(Boolean).length;
if (listed !== total) fail(`warcio index lists ${listed} records, the parser read ${total}`);
console.log(`warcio read ${total} records in ${files.length} file(s): ${JSON.stringify(counts)}`);

// 2. The CDX index.
const cdx = execFileSync(args.warcio, ["cdx-index", "--format", "json", ...files.map((f) => path.join(args.dir, f))], { maxBuffer: 1 << 28 })
  .toString().trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const byURL = new Map();
const at = new Map();
for (const e of cdx) {
  if (!byURL.has(e.url)) byURL.set(e.url, []);
  byURL.get(e.url).push(e);
  at.set(`${e.filename}@${e.offset}`, e);
}
const urls = readFileSync(args.urls, "utf8").trim().split("\n");
const origin = new URL(urls[0]).origin;
const expect = new Map();
for (const u of urls) expect.set(u, new URL(u).pathname === "/missing" ? 404 : 200);
expect.set(origin + "/hop/1", 302);
expect.set(origin + "/hop/2", 301);
expect.set(origin + "/hop/3", 307);
expect.set(origin + "/final", 200);
for (const [u, status] of expect) {
  const es = byURL.get(u) || [];
  if (es.length !== 1) fail(`${u}: ${es.length} captures in the CDX, want exactly 1`);
  else if (Number(es[0].status) !== status) fail(`${u}: status ${es[0].status} in the CDX, want ${status}`);
}
for (const u of byURL.keys()) if (!expect.has(u)) fail(`the CDX lists ${u}, which was never asked for`);
console.log(`cdx: ${cdx.length} entries, ${expect.size} URLs each exactly once with the right status`);

// 3. Payload digests against the bodies fetched again.
const fetchRaw = (u) => new Promise((resolve, reject) => {
  const req = http.get(u, { headers: { "Accept-Encoding": "gzip" } }, (res) => {
    const parts = [];
    res.on("data", (d) => parts.push(d));
    res.on("end", () => resolve(Buffer.concat(parts)));
    res.on("error", reject);
  });
  req.setTimeout(30000, () => req.destroy(new Error("timed out")));
  req.on("error", reject);
});
const entries = cdx.slice();
let checked = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  for (let e; (e = entries.shift()); ) {
    const body = await fetchRaw(e.url);
    if (sha1b32(body) !== e.digest) fail(`${e.url}: payload digest ${e.digest}, the body fetched again hashes to ${sha1b32(body)}`);
    checked++;
  }
}));
console.log(`payload digests: ${checked} of ${cdx.length} match the bodies fetched again`);

// 4. Revisits.
if (args.revisits) {
  const same = [...byID.values()].filter((r) => new URL(r.headers.get("WARC-Target-URI") || "http://x/").pathname.startsWith("/same/"));
  const resp = same.filter((r) => r.type === "response");
  const rev = same.filter((r) => r.type === "revisit");
  if (resp.length !== 1 || rev.length !== 9) fail(`/same/: ${resp.length} response and ${rev.length} revisit records, want 1 and 9`);
  for (const r of rev) {
    const h = r.headers;
    const orig = byID.get(h.get("WARC-Refers-To"));
    if (!orig || orig.type !== "response") { fail(`revisit of ${h.get("WARC-Target-URI")} refers to no response`); continue; }
    if (h.get("WARC-Refers-To-Target-URI") !== orig.headers.get("WARC-Target-URI") || h.get("WARC-Refers-To-Date") !== orig.headers.get("WARC-Date"))
      fail(`revisit of ${h.get("WARC-Target-URI")}: Refers-To-Target-URI/Date do not match the response it refers to`);
    if (h.get("WARC-Payload-Digest") !== orig.headers.get("WARC-Payload-Digest")) fail(`revisit of ${h.get("WARC-Target-URI")}: another payload digest`);
    if (!/identical-payload-digest$/.test(h.get("WARC-Profile") || "")) fail(`revisit profile ${h.get("WARC-Profile")}`);
  }
  console.log(`revisits: ${rev.length} revisit records refer to the one /same/ response`);
}

// 5. trawl's records point at their captures.
const lines = readFileSync(args.jsonl, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const seen = new Set();
let pointing = 0;
for (const r of lines) {
  if (seen.has(r.index)) fail(`index ${r.index} has two records`);
  seen.add(r.index);
  if (r.status == null) continue;
  const e = at.get(`${r.warc_file}@${r.warc_offset}`);
  if (!e) { fail(`record ${r.index} (${r.url}) points at ${r.warc_file}@${r.warc_offset}, where the CDX has no entry`); continue; }
  if (e.url !== r.final_url || Number(e.status) !== r.status) fail(`record ${r.index}: ${r.final_url} ${r.status}, but its WARC entry is ${e.url} ${e.status}`);
  pointing++;
}
if (seen.size !== urls.length) fail(`${seen.size} records for ${urls.length} URLs`);
console.log(`records: ${lines.length}, one per URL; ${pointing} point at their final response's CDX entry`);

if (failures.length > 0) {
  console.error(`warc check: ${failures.length} failure(s)`);
  process.exit(1);
}
console.log("warc check: all passed");
