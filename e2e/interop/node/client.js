#!/usr/bin/env node
// grpc-js interop client for Hull's CRI v1 server.
//
// Usage: node client.js --socket /run/hull/hull.sock --proto api/cri/api.proto <case> [options]
//
// Runs exactly one case and prints exactly ONE JSON line on stdout.
//   exit 0  the RPC(s) completed (whatever the gRPC status: see "ok"/"code" in the JSON)
//   exit 2  usage error
//   exit 3  harness failure (bad proto, socket missing, could not connect, watchdog)
// Human-readable diagnostics go to stderr.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const CASES = [
  'version', 'status', 'runtimeconfig', 'unimplemented', 'deadline',
  'stream-cancel', 'large', 'concurrent', 'v1alpha2',
];

const USAGE = `usage: node client.js --socket PATH --proto PATH <case> [options]
cases: ${CASES.join(' ')}
options:
  --size N                 large: request version-string bytes (default 4194304)
  --count N                concurrent: number of parallel Version calls (default 200)
  --deadline-ms N          deadline: stream deadline (default 500)
  --cancel-ms N            stream-cancel: cancel after N ms (default 300)
  --timeout-ms N           deadline for every other RPC (default 10000)
  --connect-timeout-ms N   wait this long for the channel to become READY (default 5000)
  --authority STR          override :authority (grpc.default_authority)
`;

// ---------------------------------------------------------------- output

let printed = false;
function emit(obj, exitCode) {
  if (!printed) {
    printed = true;
    process.stdout.write(JSON.stringify(obj) + '\n');
  }
  // Let stdout drain before exiting.
  process.exitCode = exitCode;
  setImmediate(() => process.exit(exitCode));
}

function harnessFail(caseName, stage, message) {
  process.stderr.write(`client.js: ${stage}: ${message}\n`);
  emit({ case: caseName, ok: false, harness_error: `${stage}: ${message}` }, 3);
}

function codeName(code) {
  for (const [k, v] of Object.entries(grpc.status)) if (v === code) return k;
  return String(code);
}

function statusFields(err) {
  // err is a grpc ServiceError or a StatusObject
  const out = { code: err.code, codeName: codeName(err.code), details: err.details || '' };
  const md = err.metadata && err.metadata.getMap ? err.metadata.getMap() : {};
  if (Object.keys(md).length) {
    for (const k of Object.keys(md)) if (Buffer.isBuffer(md[k])) md[k] = md[k].toString('base64');
    out.metadata = md;
  }
  return out;
}

// ---------------------------------------------------------------- args

function parseArgs(argv) {
  const opts = {
    socket: null, proto: null, case: null,
    size: 4 * 1024 * 1024, count: 200, deadlineMs: 500, cancelMs: 300,
    timeoutMs: 10000, connectTimeoutMs: 5000, authority: null,
  };
  const intOpts = {
    '--size': 'size', '--count': 'count', '--deadline-ms': 'deadlineMs',
    '--cancel-ms': 'cancelMs', '--timeout-ms': 'timeoutMs', '--connect-timeout-ms': 'connectTimeoutMs',
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
    const next = () => {
      if (val !== null) return val;
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '-h' || a === '--help') { process.stderr.write(USAGE); process.exit(0); }
    else if (a === '--socket') opts.socket = next();
    else if (a === '--proto') opts.proto = next();
    else if (a === '--authority') opts.authority = next();
    else if (intOpts[a]) {
      const v = next();
      if (!/^\d+$/.test(v)) throw new Error(`${a} needs a non-negative integer, got ${JSON.stringify(v)}`);
      opts[intOpts[a]] = Number(v);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (opts.case === null) opts.case = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.socket) throw new Error('--socket is required');
  if (!opts.case) throw new Error('a case is required');
  if (!CASES.includes(opts.case)) throw new Error(`unknown case ${JSON.stringify(opts.case)}`);
  if (!opts.proto && opts.case !== 'v1alpha2') throw new Error('--proto is required');
  return opts;
}

// ---------------------------------------------------------------- proto

// Older upstream api.proto revisions import gogo.proto and set gogoproto file
// options; proto-loader cannot resolve that import, and the options do not
// matter on the wire, so strip them into a temp copy when present.
function loadProto(protoPath) {
  let file = path.resolve(protoPath);
  const text = fs.readFileSync(file, 'utf8');
  if (/^\s*import\s+"github\.com\/gogo\//m.test(text)) {
    const cleaned = text
      .split('\n')
      .filter((l) => !/^\s*import\s+"github\.com\/gogo\/protobuf\/gogoproto\/gogo\.proto"\s*;/.test(l))
      .filter((l) => !/^\s*option\s+\(gogoproto\.[^)]*\)\s*=.*;\s*$/.test(l))
      .join('\n');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-interop-'));
    file = path.join(dir, path.basename(file));
    fs.writeFileSync(file, cleaned);
  }
  let def;
  try {
    def = protoLoader.loadSync(file, {
      keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
      includeDirs: [path.dirname(file)],
    });
  } finally {
    if (file !== path.resolve(protoPath)) fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
  const pkg = grpc.loadPackageDefinition(def);
  const v1 = pkg.runtime && pkg.runtime.v1;
  if (!v1 || !v1.RuntimeService) throw new Error(`${protoPath} does not define runtime.v1.RuntimeService`);
  return v1;
}

// Hand-encode/decode of VersionRequest/VersionResponse for the generic client
// (field 1: version; response fields 1..4 are strings).
function encodeVersionRequest(version) {
  const body = Buffer.from(version, 'utf8');
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(body.length), body]);
}
function encodeVarint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

// ---------------------------------------------------------------- main

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`client.js: ${e.message}\n${USAGE}`);
    emit({ ok: false, harness_error: `usage: ${e.message}` }, 2);
    return;
  }
  const C = opts.case;

  // Socket sanity check: a missing socket is a harness failure, not a gRPC status.
  let st;
  try { st = fs.statSync(opts.socket); } catch (e) {
    return harnessFail(C, 'socket', `${opts.socket}: ${e.code || e.message}`);
  }
  if (!st.isSocket()) return harnessFail(C, 'socket', `${opts.socket} is not a unix socket`);

  let v1 = null;
  if (opts.proto) {
    try { v1 = loadProto(opts.proto); } catch (e) { return harnessFail(C, 'proto', e.message); }
  }

  const target = 'unix://' + path.resolve(opts.socket); // unix:///abs/path
  const chanOpts = {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
  };
  if (opts.authority) chanOpts['grpc.default_authority'] = opts.authority;
  const creds = grpc.credentials.createInsecure();
  const client = v1
    ? new v1.RuntimeService(target, creds, chanOpts)
    : new grpc.Client(target, creds, chanOpts);

  // Watchdog: the harness must never hang.
  const watchdogMs = opts.connectTimeoutMs + Math.max(opts.timeoutMs, opts.deadlineMs, opts.cancelMs) * 2 + 10000;
  setTimeout(() => harnessFail(C, 'watchdog', `no result after ${watchdogMs} ms`), watchdogMs).unref();

  client.waitForReady(Date.now() + opts.connectTimeoutMs, (err) => {
    if (err) {
      return harnessFail(C, 'connect', `${target} not READY within ${opts.connectTimeoutMs} ms: ${err.message}` +
        ' (grpc-js needs the socket to accept and the server\'s HTTP/2 SETTINGS frame)');
    }
    let p;
    try { p = runCase(C, client, opts); } catch (e) { p = Promise.reject(e); }
    p.then((res) => { client.close(); emit({ case: C, ...res }, 0); })
      .catch((e) => harnessFail(C, 'run', (e && e.stack) || String(e)));
  });
}

function deadlineIn(ms) { return Date.now() + ms; }

// Unary call -> {ok, code, codeName, details, response?}
function unary(client, method, req, timeoutMs) {
  return new Promise((resolve) => {
    client[method](req, { deadline: deadlineIn(timeoutMs) }, (err, resp) => {
      if (err) resolve({ ok: false, ...statusFields(err) });
      else resolve({ ok: true, code: 0, codeName: 'OK', response: resp });
    });
  });
}

// Server-streaming GetContainerEvents; ends by deadline or by cancel after cancelMs.
function eventsStream(client, { deadlineMs, cancelMs }) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const callOpts = deadlineMs ? { deadline: deadlineIn(deadlineMs) } : {};
    const call = client.GetContainerEvents({}, callOpts);
    let events = 0;
    let headers = false;
    call.on('metadata', () => { headers = true; });
    call.on('data', () => { events++; });
    call.on('error', () => { /* reported via 'status' */ });
    call.on('status', (s) => {
      resolve({ ok: s.code === 0, ...statusFields(s), events, headers_received: headers, ms: Date.now() - t0 });
    });
    if (cancelMs) setTimeout(() => call.cancel(), cancelMs);
  });
}

// After a stream ended abnormally, check the same channel still serves calls.
async function followup(client, opts) {
  const r = await unary(client, 'Version', { version: 'v1' }, opts.timeoutMs);
  return r.ok ? { followup_ok: true } : { followup_ok: false, followup_code: r.code, followup_details: r.details };
}

async function runCase(C, client, opts) {
  const t0 = Date.now();
  const ms = () => Date.now() - t0;
  switch (C) {
    case 'version':
      return { ...(await unary(client, 'Version', { version: 'v1' }, opts.timeoutMs)), ms: ms() };
    case 'status':
      return { ...(await unary(client, 'Status', { verbose: true }, opts.timeoutMs)), ms: ms() };
    case 'runtimeconfig':
      return { ...(await unary(client, 'RuntimeConfig', {}, opts.timeoutMs)), ms: ms() };
    case 'unimplemented':
      return { ...(await unary(client, 'CheckpointContainer', {}, opts.timeoutMs)), ms: ms() };
    case 'deadline': {
      const r = await eventsStream(client, { deadlineMs: opts.deadlineMs });
      return { ...r, deadline_ms: opts.deadlineMs, ...(await followup(client, opts)) };
    }
    case 'stream-cancel': {
      const r = await eventsStream(client, { cancelMs: opts.cancelMs });
      return { ...r, cancel_ms: opts.cancelMs, ...(await followup(client, opts)) };
    }
    case 'large': {
      const version = 'a'.repeat(opts.size);
      const r = await unary(client, 'Version', { version }, Math.max(opts.timeoutMs, 30000));
      return { ...r, size: opts.size, ms: ms(), ...(await followup(client, opts)) };
    }
    case 'concurrent': {
      const n = opts.count;
      const results = await Promise.all(
        Array.from({ length: n }, () => unary(client, 'Version', { version: 'v1' }, Math.max(opts.timeoutMs, 30000))));
      const codes = {};
      let succeeded = 0;
      let firstError = null;
      for (const r of results) {
        if (r.ok) succeeded++;
        else {
          codes[r.codeName] = (codes[r.codeName] || 0) + 1;
          if (!firstError) firstError = `${r.codeName}: ${r.details}`;
        }
      }
      const out = { ok: succeeded === n, count: n, succeeded, failed: n - succeeded, ms: ms() };
      if (firstError) { out.codes = codes; out.first_error = firstError; }
      return out;
    }
    case 'v1alpha2': {
      const r = await new Promise((resolve) => {
        client.makeUnaryRequest(
          '/runtime.v1alpha2.RuntimeService/Version',
          (buf) => buf, // serialize: already a Buffer
          (buf) => buf, // deserialize: keep raw bytes
          encodeVersionRequest('v1alpha2'),
          new grpc.Metadata(),
          { deadline: deadlineIn(opts.timeoutMs) },
          (err, resp) => {
            if (err) resolve({ ok: false, ...statusFields(err) });
            else resolve({ ok: true, code: 0, codeName: 'OK', response_base64: resp.toString('base64') });
          });
      });
      return { ...r, mentions_v1alpha2: /v1alpha2/.test(r.details || ''), ms: ms() };
    }
    default:
      throw new Error(`unhandled case ${C}`);
  }
}

main();
