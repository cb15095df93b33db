// CPU-time rates (process.cpuUsage) of the rounds bench/store.ts times by wall clock: less sensitive
// to a loaded machine. Interleaved, medians of 7. Run from the repo root: npx tsx /tmp/c/cpubench.ts
import { randomFillSync } from "node:crypto";
import { ArrayGuestMemory, PAGE_SIZE } from "../../../hypervisor/guest-memory.ts";
import { TMEM_ABI_VERSION, TMEM_GET_PAGE, TMEM_NEW_POOL, TMEM_PROBE, TMEM_PUT_PAGE } from "../../../hypervisor/tmem/abi.ts";
import { encodeEax, TmemHypercallHandler, type TrapRegisters } from "../../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { compressPage, decompressPage } from "../../../hypervisor/tmem/codec.ts";
const PAGES = 4096, SRC = 256, DST = SRC + PAGES, BYTES = (DST + PAGES) * PAGE_SIZE;
function half(): ArrayGuestMemory { const m = new ArrayGuestMemory(BYTES); randomFillSync(m.bytes); for (let p = SRC; p < SRC + PAGES; p++) new Uint32Array(m.bytes.buffer, p * PAGE_SIZE + PAGE_SIZE / 2, PAGE_SIZE / 8).fill(p * 0x9e3779b9); return m; }
function storeRound(kind: "whole" | "compressed"): () => void {
  const memory = kind === "compressed" ? half() : (() => { const m = new ArrayGuestMemory(BYTES); randomFillSync(m.bytes); return m; })();
  const store = new TmemStore(kind === "whole" ? { budgetFrames: PAGES, compression: false, dedup: "off" } : { budgetFrames: PAGES });
  const client = store.createClient("b"); const h = new TmemHypercallHandler(store, client, memory);
  const r: TrapRegisters = { eax: encodeEax(TMEM_PROBE), ebx: TMEM_ABI_VERSION, ecx: 0, edx: 0, esi: 0, edi: 0 }; h.handle(r); r.eax = encodeEax(TMEM_NEW_POOL); h.handle(r);
  const put = encodeEax(TMEM_PUT_PAGE, 0), get = encodeEax(TMEM_GET_PAGE, 0); let o = 0;
  return () => { o++; for (let i = 0; i < PAGES; i++) { r.eax = put; r.ebx = o; r.ecx = 0; r.esi = i; r.edi = SRC + i; h.handle(r); } for (let i = 0; i < PAGES; i++) { r.eax = get; r.ebx = o; r.ecx = 0; r.esi = i; r.edi = DST + i; h.handle(r); } };
}
function lz4Round(): () => void { const m = half(); const src = Buffer.from(m.bytes.buffer); const packed: Uint8Array[] = [];
  return () => { for (let i = 0; i < PAGES; i++) packed[i] = compressPage(src.subarray((SRC + i) * PAGE_SIZE, (SRC + i + 1) * PAGE_SIZE)); for (let i = 0; i < PAGES; i++) decompressPage(packed[i]!, m.bytes.subarray((DST + i) * PAGE_SIZE, (DST + i + 1) * PAGE_SIZE)); }; }
function copyRound(): () => void { const m = new Uint8Array(BYTES); randomFillSync(m); const slab = new Uint8Array(PAGES * PAGE_SIZE);
  return () => { for (let i = 0; i < PAGES; i++) slab.set(m.subarray((SRC + i) * PAGE_SIZE, (SRC + i + 1) * PAGE_SIZE), i * PAGE_SIZE); for (let i = 0; i < PAGES; i++) m.set(slab.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), (DST + i) * PAGE_SIZE); }; }
function cpuRate(round: () => void): number { round(); let n = 0; const c0 = process.cpuUsage(); let c; do { round(); n++; c = process.cpuUsage(c0); } while (c.user + c.system < 300_000); return (n * 2 * PAGES) / ((c.user + c.system) / 1e6); }
const rounds = { copy: copyRound(), whole: storeRound("whole"), compressed: storeRound("compressed"), lz4: lz4Round() };
const s: Record<string, number[]> = { copy: [], whole: [], compressed: [], lz4: [] };
for (let k = 0; k < 7; k++) for (const [n, r] of Object.entries(rounds)) s[n]!.push(cpuRate(r));
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const n of Object.keys(s)) console.log(n.padEnd(11), Math.round(med(s[n]!)), "page ops per CPU-s");
console.log("whole/copy", (med(s.whole!) / med(s.copy!)).toFixed(3), "compressed/copy", (med(s.compressed!) / med(s.copy!)).toFixed(4), "lz4/copy", (med(s.lz4!) / med(s.copy!)).toFixed(4), "compressed/lz4", (med(s.compressed!) / med(s.lz4!)).toFixed(3));
