/**
 * Cache keys: a SHA-256 over every input of a build step, named, so that the same inputs give the
 * same key on any machine and any change to one of them (a patch, the config fragment, the init
 * script, a package version, the build code itself) gives a new key and a rebuild.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export type Inputs = Record<string, string | Uint8Array>;

export function hashInputs(inputs: Inputs): string {
  const h = createHash("sha256");
  for (const name of Object.keys(inputs).sort()) {
    const v = inputs[name] ?? "";
    const bytes = typeof v === "string" ? Buffer.from(v, "utf8") : v;
    h.update(`${name}\0${bytes.length}\0`);
    h.update(bytes);
  }
  return h.digest("hex").slice(0, 24);
}

/** The files of `dir` whose names pass `filter`, as inputs named `<prefix>/<name>`, sorted. */
export function dirInputs(dir: string, prefix: string, filter: (name: string) => boolean): Inputs {
  const out: Inputs = {};
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (filter(name) && statSync(path).isFile()) out[`${prefix}/${name}`] = readFileSync(path);
  }
  return out;
}
