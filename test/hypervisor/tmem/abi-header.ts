/**
 * Test utility: reads the C side of the tmem ABI (include/linux/tmem_abi.h) out of the kernel patch
 * series in patches/, and parses its #define lines, so that abi-header.test.ts can hold abi.ts to
 * it (STYLE.md, item 2).
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const HEADER_PATH = "include/linux/tmem_abi.h";

/**
 * The content of `path` as added by a git format-patch `patchText` (a new-file diff: "--- /dev/null",
 * one hunk "@@ -0,0 +1,N @@" of N lines prefixed with '+'), with the '+' stripped; undefined if the
 * patch does not add that file. Throws if the diff for it is malformed.
 */
export function extractAddedFile(patchText: string, path: string): string | undefined {
  const lines = patchText.split("\n");
  const start = lines.findIndex((l) => l === `diff --git a/${path} b/${path}`);
  if (start < 0) return undefined;
  let i = start + 1;
  // Extended header lines up to the hunk: new file mode, index, ---, +++.
  let added = false;
  for (; i < lines.length && !lines[i]!.startsWith("@@"); i++) {
    const line = lines[i]!;
    if (line.startsWith("diff --git ")) return undefined; // no hunk for this file
    if (line === "--- /dev/null") added = true;
  }
  if (!added) return undefined; // the patch modifies the file rather than adding it
  const hunk = /^@@ -0,0 \+1(?:,(\d+))? @@/.exec(lines[i] ?? "");
  if (hunk === null) throw new Error(`${path}: expected a new-file hunk, found "${lines[i] ?? "end of patch"}"`);
  const count = hunk[1] === undefined ? 1 : Number(hunk[1]);
  const body: string[] = [];
  for (i++; body.length < count && i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("\\")) continue; // "\ No newline at end of file"
    if (!line.startsWith("+")) throw new Error(`${path}: line ${body.length + 1} of the hunk does not start with '+'`);
    body.push(line.slice(1));
  }
  if (body.length !== count) throw new Error(`${path}: hunk promises ${count} lines, patch has ${body.length}`);
  return `${body.join("\n")}\n`;
}

/** The first patch in `dir` (by file name, *.patch) that adds `path`, and the added file's text. */
export function findPatchAdding(dir: string, path: string = HEADER_PATH): { patch: string; text: string } | undefined {
  const patches = readdirSync(dir)
    .filter((name) => name.endsWith(".patch"))
    .sort();
  for (const name of patches) {
    const patch = join(dir, name);
    const text = extractAddedFile(readFileSync(patch, "utf8"), path);
    if (text !== undefined) return { patch, text };
  }
  return undefined;
}

/**
 * Every `#define TMEM_<NAME> <integer>` of a C header, by name. The value may be decimal or hex,
 * negative, in parentheses, followed by a comment. A TMEM_ define whose value is anything else (an
 * expression, nothing) throws: the test must not skip a constant it cannot read. Duplicates throw.
 */
export function parseTmemDefines(header: string): Map<string, number> {
  const defines = new Map<string, number>();
  for (const raw of header.split("\n")) {
    const m = /^\s*#\s*define\s+(TMEM_\w+)(.*)$/.exec(raw);
    if (m === null) continue;
    const name = m[1]!;
    const value = m[2]!
      .replace(/\/\*.*?(\*\/|$)/g, "")
      .replace(/\/\/.*$/, "")
      .trim();
    const v = /^\(?\s*(-?)\s*(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\s*\)?$/.exec(value);
    if (v === null) throw new Error(`tmem_abi.h: cannot read the value of ${name}: "${value}"`);
    if (defines.has(name)) throw new Error(`tmem_abi.h: ${name} is defined twice`);
    const magnitude = Number(v[2]!.toLowerCase().startsWith("0x") ? Number.parseInt(v[2]!, 16) : Number.parseInt(v[2]!, 10));
    defines.set(name, v[1] === "-" ? -magnitude : magnitude);
  }
  return defines;
}
