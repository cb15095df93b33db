import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureImages, loadGuestImages, type ImageSet } from "../../guest-images/index.ts";
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
