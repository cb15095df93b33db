// Prototype of issue 10's choice (docs/scaling.md "How a hypercall crosses"): put+get round trips
// of 4 KiB pages from worker threads into one toy store (a Map of pages), by four designs:
//   node bench/scaling-prototype.mjs inthread 1     no crossing (the baseline)
//   node bench/scaling-prototype.mjs thread N       (a) a dedicated store worker, blocking Atomics.wait
//   node bench/scaling-prototype.mjs main 1         (a) the store in the main thread, Atomics.waitAsync
//   node bench/scaling-prototype.mjs lock N         (b) SAB hash table + page slab under one spinlock
// SPIN=K: spins before Atomics.wait (default 2000); DUR=MS: time per client (default 1500).
// Prints calls/s per client thread and their sum. Plain JS on purpose: nothing of tmemu is loaded.
import { Worker, isMainThread, workerData, parentPort } from "node:worker_threads";
const PAGE = 4096, SLOT_WORDS = 8; // ctrl words: 0 state, 1 op, 2 key, 3 result
const IDLE = 0, REQ = 1, DONE = 2;
const DURATION = Number(process.env.DUR ?? 1500);
function makeStore() {
  const m = new Map();
  return {
    put(key, src) { let p = m.get(key); if (!p) { p = new Uint8Array(PAGE); m.set(key, p); } p.set(src); return 1; },
    get(key, dst) { const p = m.get(key); if (!p) return 0; dst.set(p); m.delete(key); return 1; },
  };
}
function fill(page, k) { new Int32Array(page.buffer, page.byteOffset, 1024).fill(k); }
function check(page, k) { if (new Int32Array(page.buffer, page.byteOffset, 1024)[1023] !== k) throw new Error("bad page " + k); }
// lock-based SAB store: open addressing table keys -> slab index; spinlock word
const TABLE = 1 << 14, SLAB_PAGES = 4096;
function lockStore(sab) {
  const ctl = new Int32Array(sab, 0, 4 + TABLE * 2 + SLAB_PAGES);
  const tab = 4, free = 4 + TABLE * 2; const slab = new Uint8Array(sab, (4 + TABLE * 2 + SLAB_PAGES) * 4, SLAB_PAGES * PAGE);
  const lock = () => { let s = 0; while (Atomics.compareExchange(ctl, 0, 0, 1) !== 0) { if (++s > 100) { Atomics.wait(ctl, 0, 1, 1); s = 0; } } };
  const unlock = () => { Atomics.store(ctl, 0, 0); Atomics.notify(ctl, 0, 1); };
  const find = (key) => { let h = (Math.imul(key, 0x9e3779b1) >>> 18) & (TABLE - 1); for (;;) { const k = ctl[tab + 2 * h]; if (k === key + 1 || k === 0) return h; h = (h + 1) & (TABLE - 1); } };
  return {
    init() { for (let i = 0; i < SLAB_PAGES; i++) ctl[free + i] = i; ctl[1] = SLAB_PAGES; },
    put(key, src) { lock(); try { const h = find(key); let s; if (ctl[tab + 2 * h] === key + 1 && ctl[tab + 2 * h + 1] >= 0) s = ctl[tab + 2 * h + 1]; else { s = ctl[free + --ctl[1]]; ctl[tab + 2 * h] = key + 1; ctl[tab + 2 * h + 1] = s; } slab.set(src, s * PAGE); return 1; } finally { unlock(); } },
    get(key, dst) { lock(); try { const h = find(key); if (ctl[tab + 2 * h] !== key + 1) return 0; const s = ctl[tab + 2 * h + 1]; if (s < 0) return 0; dst.set(slab.subarray(s * PAGE, s * PAGE + PAGE)); ctl[free + ctl[1]++] = s; ctl[tab + 2 * h + 1] = -1; return 1; } finally { unlock(); } },
  };
}
function clientLoop(call, id) {
  const page = new Uint8Array(PAGE), out = new Uint8Array(PAGE);
  let n = 0; const t0 = performance.now(); let t = t0;
  while (t - t0 < DURATION) {
    for (let i = 0; i < 256; i++) { const key = id * 1000000 + (n & 1023); fill(page, key); call(1, key, page); if (!call(2, key, out)) throw new Error("miss"); check(out, key); n++; }
    t = performance.now();
  }
  return (2 * n) / ((t - t0) / 1000); // calls/s
}
if (!isMainThread) {
  const { mode, id, sab, doorbell } = workerData;
  if (mode === "storethread") {
    // serve all slots
    const store = makeStore(); const bell = new Int32Array(doorbell); const n = workerData.n;
    const slots = sab.map((s) => ({ ctl: new Int32Array(s, 0, SLOT_WORDS), page: new Uint8Array(s, SLOT_WORDS * 4, PAGE) }));
    parentPort.postMessage("ready");
    let seen = Atomics.load(bell, 0), spins = 0;
    for (;;) {
      let any = false;
      for (const s of slots) if (Atomics.load(s.ctl, 0) === REQ) { any = true; const op = s.ctl[1], key = s.ctl[2]; s.ctl[3] = op === 1 ? store.put(key, s.page) : op === 2 ? store.get(key, s.page) : -1; Atomics.store(s.ctl, 0, DONE); Atomics.notify(s.ctl, 0, 1); }
      if (any) { spins = 0; continue; }
      const now = Atomics.load(bell, 0);
      if (now !== seen) { seen = now; continue; }
      if (++spins < (workerData.spin ?? 2000)) continue;
      Atomics.wait(bell, 0, seen, 50); spins = 0;
    }
  }
  let call;
  if (mode === "lock") { const st = lockStore(sab); call = (op, key, page) => (op === 1 ? st.put(key, page) : st.get(key, page)); }
  else {
    const ctl = new Int32Array(sab, 0, SLOT_WORDS), sp = new Uint8Array(sab, SLOT_WORDS * 4, PAGE), bell = new Int32Array(doorbell);
    const spin = workerData.spin ?? 2000;
    call = (op, key, page) => {
      if (op === 1) sp.set(page);
      ctl[1] = op; ctl[2] = key; Atomics.store(ctl, 0, REQ); Atomics.add(bell, 0, 1); Atomics.notify(bell, 0, 1);
      let s = 0; while (Atomics.load(ctl, 0) !== DONE) { if (++s > spin) Atomics.wait(ctl, 0, REQ); }
      const r = ctl[3]; Atomics.store(ctl, 0, IDLE);
      if (op === 2 && r === 1) page.set(sp);
      return r;
    };
  }
  parentPort.postMessage(clientLoop(call, id));
} else {
  const [mode = "thread", nArg = "1"] = process.argv.slice(2); const n = Number(nArg);
  const spin = Number(process.env.SPIN ?? 2000);
  if (mode === "inthread") { const st = makeStore(); const r = clientLoop((op, k, p) => (op === 1 ? st.put(k, p) : st.get(k, p)), 0); console.log(mode, n, Math.round(r)); process.exit(0); }
  const doorbell = new SharedArrayBuffer(4);
  const slots = Array.from({ length: n }, () => new SharedArrayBuffer(SLOT_WORDS * 4 + PAGE));
  let lsab; if (mode === "lock") { lsab = new SharedArrayBuffer((4 + TABLE * 2 + SLAB_PAGES) * 4 + SLAB_PAGES * PAGE); lockStore(lsab).init(); }
  if (mode === "thread") { const st = new Worker(new URL(import.meta.url), { workerData: { mode: "storethread", sab: slots, doorbell, n, spin } }); await new Promise((r) => st.once("message", r)); st.unref(); }
  if (mode === "main") {
    const store = makeStore(); const bell = new Int32Array(doorbell);
    const ss = slots.map((s) => ({ ctl: new Int32Array(s, 0, SLOT_WORDS), page: new Uint8Array(s, SLOT_WORDS * 4, PAGE) }));
    let stop = false;
    (async () => { while (!stop) { let seen = Atomics.load(bell, 0); for (const s of ss) if (Atomics.load(s.ctl, 0) === REQ) { const op = s.ctl[1], key = s.ctl[2]; s.ctl[3] = op === 1 ? store.put(key, s.page) : store.get(key, s.page); Atomics.store(s.ctl, 0, DONE); Atomics.notify(s.ctl, 0, 1); } if (Atomics.load(bell, 0) === seen) { const w = Atomics.waitAsync(bell, 0, seen, 100); if (w.async) await w.value; } } })();
    setTimeout(() => (stop = true), DURATION + 3000).unref();
  }
  const rates = await Promise.all(Array.from({ length: n }, (_, id) => new Promise((res, rej) => { const w = new Worker(new URL(import.meta.url), { workerData: { mode, id, sab: mode === "lock" ? lsab : slots[id], doorbell, spin } }); w.on("message", res); w.on("error", rej); })));
  console.log(mode, n, "spin", spin, rates.map(Math.round), "total", Math.round(rates.reduce((a, b) => a + b, 0)));
  process.exit(0);
}
