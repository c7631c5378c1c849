#!/usr/bin/env node
// taskchat benchmark load generator: real Socket.IO v4 clients (WebSocket or long-polling)
// against one server, then one JSON result.
//
//   node loadgen.js --url http://127.0.0.1:9700 --ns /tasks --users 1000 --tasks 100 \
//        --secret S --mode closed --window 100 --duration 20 --server-pid PID --out r.json
//
// Phases: connect N clients (bounded concurrency) -> each joins its task ((u-1) % K) + 1
// with an ack -> idle (RSS per connection) -> send phase (closed loop: at most --window
// unacked in all; open loop: --rate messages per second in all; senders round-robin) ->
// drain (until every acked message reached every member, at most --drain seconds).
// Every loop is bounded in count (--max-messages) and time (--duration, --drain, --deadline).
//
// The protocol is the intersection of the Python product's and the Node original's:
// join_task(taskId, ack) with a bare id; send_message({taskId, message, clientId}, ack);
// ack.ok says success; new_message {message: {message: <text>}} at every member. The text
// is `b:<sender>:<seq>:<sendEpochMs>`, so a receiver needs nothing but the text.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { performance } = require('perf_hooks');
const { io } = require('socket.io-client');

// ---- arguments ---------------------------------------------------------------------
const DEFAULTS = {
  url: 'http://127.0.0.1:9553', ns: '/tasks', users: 1000, tasks: 100, secret: '', alg: 'HS256',
  concurrency: 50, 'connect-timeout': 20, 'ack-timeout': 30, 'polling-fraction': 0,
  mode: 'closed', window: 100, rate: 200, senders: 0, duration: 20, 'max-messages': 200000,
  drain: 10, idle: 2, 'server-pid': 0, 'db-pid': 0, out: '', label: '', deadline: 0,
  'user-offset': 0,
};
const opts = { ...DEFAULTS };
for (let i = 2; i < process.argv.length; i += 1) {
  const a = process.argv[i];
  if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
  const key = a.slice(2);
  if (!(key in DEFAULTS)) throw new Error(`unknown option ${a}`);
  const v = process.argv[i + 1];
  i += 1;
  opts[key] = typeof DEFAULTS[key] === 'number' ? Number(v) : v;
}
if (!opts.secret) throw new Error('--secret is required');
const N = opts.users;
const K = opts.tasks;
const nowMs = () => performance.timeOrigin + performance.now(); // epoch ms, sub-ms resolution
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[loadgen ${opts.label}] ${a.join(' ')}\n`);

// ---- tokens: HS256/384/512, the claims both servers accept ------------------------------
const b64u = (buf) => Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
function mint(userId) {
  const iat = Math.floor(Date.now() / 1000);
  const header = b64u(JSON.stringify({ alg: opts.alg, typ: 'JWT' }));
  const payload = b64u(JSON.stringify({
    sub: String(userId), type: 'access', jti: crypto.randomUUID(), iat, nbf: iat, exp: iat + 4 * 3600,
  }));
  const sig = b64u(crypto.createHmac(HASH[opts.alg], opts.secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${sig}`;
}

// ---- /proc: CPU and RSS of a process tree ---------------------------------------------
const CLK_TCK = 100; // Linux USER_HZ
function procTree(rootPid) {
  if (!rootPid) return [];
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
    } catch { /* gone */ }
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i += 1) {
    for (const [pid, ppid] of parent) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}
function treeStats(rootPid) {
  let cpu = 0;
  let rssKb = 0;
  const pids = procTree(rootPid);
  for (const pid of pids) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) rssKb += Number(m[1]);
    } catch { /* gone */ }
  }
  return { cpu, rssKb, procs: pids.length };
}

// ---- statistics ------------------------------------------------------------------------
function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i] * 100) / 100;
}
function summary(values) {
  const s = Float64Array.from(values).sort();
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.length ? Math.round(s[s.length - 1] * 100) / 100 : null };
}
const bump = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };

// ---- clients ---------------------------------------------------------------------------
async function pool(items, concurrency, fn) {
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next; next += 1; await fn(items[i]); } };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

const runTag = crypto.randomBytes(4).toString('hex');
const clients = []; // {idx, userId, taskId, polling, socket, connected, joined, seen:Set}
const connectErrors = {};
const joinErrors = {};
const ackErrors = {};
const serverErrors = {};
const disconnects = {};
const latencies = [];
const deliveries = new Map(); // message key -> deliveries received
let received = 0;
let duplicates = 0;
let foreign = 0;

function isPolling(i) {
  const f = opts['polling-fraction'];
  return f > 0 && Math.floor((i + 1) * f) > Math.floor(i * f);
}

function onNewMessage(client, payload) {
  const t = nowMs();
  const text = payload && payload.message && payload.message.message;
  if (typeof text !== 'string' || !text.startsWith('b:')) { foreign += 1; return; }
  const parts = text.split(':');
  const key = `${parts[1]}:${parts[2]}`;
  if (client.seen.has(key)) { duplicates += 1; return; }
  client.seen.add(key);
  received += 1;
  deliveries.set(key, (deliveries.get(key) || 0) + 1);
  latencies.push(t - Number(parts[3]));
}

function connectOne(c) {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const socket = io(opts.url + opts.ns, {
      forceNew: true, reconnection: false, timeout: opts['connect-timeout'] * 1000,
      transports: c.polling ? ['polling'] : ['websocket'], upgrade: false,
      auth: { token: mint(c.userId) },
    });
    c.socket = socket;
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      c.connected = ok;
      c.connectMs = nowMs() - t0;
      if (!ok) { bump(connectErrors, why); socket.close(); }
      resolve();
    };
    socket.on('connect', () => finish(true));
    socket.on('connect_error', (err) => finish(false, (err && err.message) || 'connect_error'));
    socket.on('new_message', (p) => onNewMessage(c, p));
    socket.on('error', (e) => bump(serverErrors, (e && (e.code || e.message)) || 'error'));
    socket.on('disconnect', (reason) => { if (c.connected && !c.closing) bump(disconnects, reason); });
  });
}

function joinOne(c, joinLat) {
  return new Promise((resolve) => {
    const t0 = nowMs();
    c.socket.timeout(opts['ack-timeout'] * 1000).emit('join_task', c.taskId, (err, ack) => {
      if (finished) return;
      if (err) bump(joinErrors, 'ack_timeout');
      else if (!ack || !ack.ok) bump(joinErrors, errCode(ack));
      else { c.joined = true; joinLat.push(nowMs() - t0); }
      resolve();
    });
  });
}

function errCode(ack) {
  if (!ack) return 'no_ack';
  const e = ack.error;
  if (e && typeof e === 'object') return e.code || e.message || 'error';
  return String(e || 'error');
}

// ---- main ------------------------------------------------------------------------------
async function main() {
  const started = nowMs();
  const pid = opts['server-pid'];
  const dbPid = opts['db-pid'];
  const deadline = opts.deadline || (opts['connect-timeout'] * 2 + N / 20 + opts.idle + opts.duration + opts.drain + opts['ack-timeout'] + 60);
  setTimeout(() => { log(`deadline of ${deadline}s passed: giving up`); finish(true).finally(() => process.exit(2)); }, deadline * 1000).unref();

  for (let i = 0; i < N; i += 1) {
    const userId = opts['user-offset'] + i + 1;
    clients.push({ idx: i, userId, taskId: ((userId - 1) % K) + 1, polling: isPolling(i), seen: new Set() });
  }
  const before = treeStats(pid);
  const dbBefore = treeStats(dbPid);
  const cpuLoad0 = process.cpuUsage();

  // connect
  process.stdout.write('PHASE connect\n');
  const tc0 = nowMs();
  await pool(clients, opts.concurrency, connectOne);
  const connectS = (nowMs() - tc0) / 1000;
  const connected = clients.filter((c) => c.connected);
  log(`connected ${connected.length}/${N} in ${connectS.toFixed(1)}s`);

  // join
  const joinLat = [];
  const tj0 = nowMs();
  await pool(connected, opts.concurrency, (c) => joinOne(c, joinLat));
  const joinS = (nowMs() - tj0) / 1000;
  const joined = connected.filter((c) => c.joined);
  const membersOf = new Map();
  for (const c of joined) membersOf.set(c.taskId, (membersOf.get(c.taskId) || 0) + 1);
  log(`joined ${joined.length}/${connected.length} in ${joinS.toFixed(1)}s`);

  // idle, then RSS
  await sleep(opts.idle * 1000);
  const idle = treeStats(pid);

  // send
  const result = {
    label: opts.label, url: opts.url, ns: opts.ns, mode: opts.mode, users: N, tasks: K,
    pollingClients: clients.filter((c) => c.polling).length,
  };
  let sent = 0;
  let acked = 0;
  let ackedInWindow = 0;
  let failed = 0;
  let inflight = 0;
  let expected = 0;
  const ackedKeys = [];
  const sentKeys = new Map(); // key -> members expected, while not refused
  const ackLat = [];
  const senders = joined.slice(0, opts.senders > 0 ? opts.senders : joined.length);
  const perSender = new Map();
  let rr = 0;
  let sendS = 0;
  let sendStart = 0;
  let sendEnd = 0;
  const sendBefore = treeStats(pid);
  const dbSendBefore = treeStats(dbPid);

  if (opts.mode !== 'none' && senders.length) {
    process.stdout.write(`PHASE send ${opts.duration}\n`);
    sendStart = nowMs();
    sendEnd = sendStart + opts.duration * 1000;
    let stopped = false;
    let pump = () => {};
    const sendOne = () => {
      const c = senders[rr % senders.length];
      rr += 1;
      const seq = (perSender.get(c.idx) || 0) + 1;
      perSender.set(c.idx, seq);
      const key = `${c.idx}:${seq}`;
      const t0 = nowMs();
      sent += 1;
      inflight += 1;
      sentKeys.set(key, membersOf.get(c.taskId) || 0);
      c.socket.timeout(opts['ack-timeout'] * 1000).emit('send_message', {
        taskId: c.taskId, message: `b:${c.idx}:${seq}:${t0.toFixed(3)}`, clientId: `${runTag}-${c.idx}-${seq}`,
      }, (err, ack) => {
        if (finished) return; // the sockets were closed at the end: not an answer
        inflight -= 1;
        const t1 = nowMs();
        if (err) { failed += 1; bump(ackErrors, 'ack_timeout'); }
        else if (!ack || !ack.ok) { failed += 1; sentKeys.delete(key); bump(ackErrors, errCode(ack)); }
        else {
          acked += 1;
          if (t1 <= sendEnd) ackedInWindow += 1;
          ackLat.push(t1 - t0);
          ackedKeys.push([key, membersOf.get(c.taskId) || 0]);
          expected += membersOf.get(c.taskId) || 0;
        }
        pump();
      });
    };
    if (opts.mode === 'closed') {
      pump = () => {
        while (!stopped && inflight < opts.window && sent < opts['max-messages'] && nowMs() < sendEnd) sendOne();
      };
      pump();
      await sleep(opts.duration * 1000);
      stopped = true;
    } else {
      const timer = setInterval(() => {
        const t = nowMs();
        if (t >= sendEnd) return;
        const target = Math.min(opts['max-messages'], Math.floor(((t - sendStart) / 1000) * opts.rate));
        while (sent < target) sendOne();
      }, 5);
      await sleep(opts.duration * 1000);
      clearInterval(timer);
      stopped = true;
    }
    sendS = (Math.min(nowMs(), sendEnd) - sendStart) / 1000;
    process.stdout.write('PHASE drain\n');
    // drain: the in-flight acks, then the deliveries they promise
    const drainEnd = nowMs() + opts.drain * 1000;
    while (nowMs() < drainEnd && (inflight > 0 || received < expected)) await sleep(50);
  }
  const after = treeStats(pid);
  const dbAfter = treeStats(dbPid);
  const cpuLoad = process.cpuUsage(cpuLoad0);

  // deliveries of acked messages; anything missing is lost
  let deliveredOfAcked = 0;
  for (const [key, members] of ackedKeys) deliveredOfAcked += Math.min(members, deliveries.get(key) || 0);
  const lost = expected - deliveredOfAcked;
  // what was sent and not refused (acked, or no answer yet), against what arrived of it
  let expectedAll = 0;
  let deliveredAll = 0;
  for (const [key, members] of sentKeys) { expectedAll += members; deliveredAll += Math.min(members, deliveries.get(key) || 0); }

  Object.assign(result, {
    connect: {
      ok: connected.length, failed: N - connected.length, seconds: r3(connectS),
      perSecond: r1(connected.length / Math.max(connectS, 1e-6)), errors: connectErrors,
      latencyMs: summary(clients.filter((c) => c.connectMs !== undefined).map((c) => c.connectMs)),
    },
    join: { ok: joined.length, failed: connected.length - joined.length, seconds: r3(joinS), errors: joinErrors, latencyMs: summary(joinLat) },
    send: {
      seconds: r3(sendS), senders: senders.length, sent, acked, ackedInWindow, failed,
      unacked: sent - acked - failed, errors: ackErrors,
      acksPerSecond: sendS ? r1(ackedInWindow / sendS) : null,
      offeredPerSecond: sendS ? r1(sent / sendS) : null, ackLatencyMs: summary(ackLat),
    },
    deliveries: {
      expected, received, receivedOfAcked: deliveredOfAcked, lost, duplicated: duplicates, foreign,
      expectedAll, missing: expectedAll - deliveredAll,
      latencyMs: summary(latencies),
    },
    server: {
      pid, procs: idle.procs,
      rssBeforeKb: before.rssKb, rssIdleKb: idle.rssKb, rssAfterKb: after.rssKb,
      rssPerConnectionKb: joined.length ? r3((idle.rssKb - before.rssKb) / joined.length) : null,
      cpuWholeS: r3(after.cpu - before.cpu), cpuConnectS: r3(sendBefore.cpu - before.cpu),
      cpuSendS: r3(after.cpu - sendBefore.cpu),
      cpuPerMessageMs: acked ? r3((1000 * (after.cpu - before.cpu)) / acked) : null,
      cpuSendPerMessageMs: acked ? r3((1000 * (after.cpu - sendBefore.cpu)) / acked) : null,
      cpuPerConnectMs: connected.length ? r3((1000 * (sendBefore.cpu - before.cpu)) / connected.length) : null,
    },
    db: dbPid ? {
      cpuSendS: r3(dbAfter.cpu - dbSendBefore.cpu),
      cpuSendPerMessageMs: acked ? r3((1000 * (dbAfter.cpu - dbSendBefore.cpu)) / acked) : null,
    } : null,
    unexpectedDisconnects: disconnects, serverErrorEvents: serverErrors,
    loadgen: { cpuS: r3((cpuLoad.user + cpuLoad.system) / 1e6), wallS: r3((nowMs() - started) / 1000), rssKb: Math.round(process.memoryUsage().rss / 1024) },
  });
  await finish(false, result);
}

let finished = false;
let lastResult = null;
async function finish(aborted, result) {
  if (finished) return;
  finished = true;
  const out = result || lastResult || { label: opts.label };
  out.aborted = aborted;
  for (const c of clients) { c.closing = true; if (c.socket) c.socket.close(); }
  const text = JSON.stringify(out);
  if (opts.out) fs.writeFileSync(opts.out, `${text}\n`);
  process.stdout.write(`RESULT ${text}\n`);
}
const r1 = (x) => Math.round(x * 10) / 10;
const r3 = (x) => Math.round(x * 1000) / 1000;

main().then(() => setTimeout(() => process.exit(0), 200)).catch((e) => { log(e.stack || e); process.exit(1); });
