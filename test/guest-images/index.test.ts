import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureImages, loadGuestImages, sweepWorkDirs, type ImageSet } from "../../guest-images/index.ts";
import { acquireLock } from "../../guest-images/lock.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

describe("ensureImages: user errors", () => {
  it("says which cache directory it cannot use and what to do, instead of throwing ENOTDIR", async () => {
    const err = await ensureImages({ cacheDir: "/proc/version/tmemu" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).message).toMatch(/^cannot use the cache directory \/proc\/version\/tmemu: /);
    expect((err as TmemuError).hint).toMatch(/TMEMU_CACHE_DIR/);
  });
});

describe("loadGuestImages", () => {
  it("reports an image that went missing from the cache as IMAGE_MISSING with a hint", () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-images-"));
    const set = { kernelDir: dir, initrdPath: join(dir, "initrd.cpio"), biosPath: join(dir, "bios.bin"), vgaBiosPath: join(dir, "vga.bin") } as ImageSet;
    let err: unknown;
    try {
      loadGuestImages(set);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).code).toBe("IMAGE_MISSING");
    expect((err as TmemuError).message).toBe(`cannot read the guest image ${join(dir, "bzImage")}: ENOENT`);
  });
});

describe("ensureImages: --patches", () => {
  it("refuses a patch file given where a folder is expected, before downloading or building anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-patches-"));
    const file = join(dir, "0001-x.patch");
    writeFileSync(file, "");
    const cache = join(dir, "cache");
    const err = await ensureImages({ cacheDir: cache, patchesDir: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).code).toBe("BAD_INPUT");
    expect((err as TmemuError).message).toBe(`--patches ${file} is a file, not a folder`);
    expect(existsSync(cache)).toBe(false);
  });

  it("refuses a folder that does not exist, in the same way", async () => {
    const err = await ensureImages({ cacheDir: join(tmpdir(), "tmemu-never"), patchesDir: "/nonexistent/patches" }).catch((e: unknown) => e);
    expect((err as TmemuError).message).toBe("patch directory /nonexistent/patches does not exist");
  });
});

describe("sweepWorkDirs", () => {
  it("deletes build trees nobody is building, keeps the one being built and the one named, ignores other names", async () => {
    const root = mkdtempSync(join(tmpdir(), "tmemu-sweep-"));
    for (const d of ["kernel-aaa1", "kernel-bbb2", "initrd-ccc3", "kernel-ddd4", "notes"]) mkdirSync(join(root, "work", d), { recursive: true });
    mkdirSync(join(root, "locks"));
    const busy = await acquireLock(join(root, "locks", "kernel-bbb2.lock"));
    try {
      const swept = await sweepWorkDirs(root, "kernel-ddd4");
      expect(swept.sort()).toEqual(["initrd-ccc3", "kernel-aaa1"]);
      const left = readdirSync(join(root, "work")).filter((n) => !n.includes(".trash-"));
      expect(left.sort()).toEqual(["kernel-bbb2", "kernel-ddd4", "notes"]);
    } finally {
      await busy.release();
    }
  });
});
