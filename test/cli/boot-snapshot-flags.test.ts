/**
 * tmemu boot's snapshot flags are checked before anything is built or booted (cli/boot.ts), and
 * migrate's addresses parse (cli/migrate.ts).
 */
import { describe, expect, it } from "vitest";
import { bootCommand, type BootFlags } from "../../cli/boot.ts";
import { parseHostPort } from "../../cli/migrate.ts";

const base: BootFlags = { memoryMib: 128, timeoutS: 60, swapMib: 0, cmd: "true" };

async function usage(flags: Partial<BootFlags>): Promise<string> {
  try {
    await bootCommand({ ...base, ...flags });
  } catch (err) {
    expect((err as { code?: string }).code).toBe("USAGE");
    return (err as Error).message;
  }
  throw new Error("no usage error");
}

describe("tmemu boot: snapshot flags", () => {
  it("--save-at needs --save and --cmd", async () => {
    expect(await usage({ saveAt: 5 })).toMatch(/--save-at needs --save FILE and --cmd/);
  });

  it("--restore takes disks and state from the file: no --files, no --cold-boot", async () => {
    expect(await usage({ restore: "/tmp/x.snap", coldBoot: true })).toMatch(/--restore takes the guest's disks and state from the file/);
  });

  it("--migrate-to and --migrate-at go together", async () => {
    expect(await usage({ migrateTo: "127.0.0.1:7700" })).toMatch(/go together/);
    expect(await usage({ migrateAt: 3 })).toMatch(/go together/);
    expect(await usage({ migrateTo: "nowhere", migrateAt: 3 })).toMatch(/not HOST:PORT or PORT/);
  });
});

describe("parseHostPort", () => {
  it("PORT means 127.0.0.1; HOST:PORT as given; anything else is a usage error", () => {
    expect(parseHostPort("7700", "--listen")).toEqual({ host: "127.0.0.1", port: 7700 });
    expect(parseHostPort("0.0.0.0:80", "--listen")).toEqual({ host: "0.0.0.0", port: 80 });
    expect(() => parseHostPort("70000", "--listen")).toThrow(/--listen 70000: not HOST:PORT/);
    expect(() => parseHostPort("host:", "--listen")).toThrow(/not HOST:PORT/);
  });
});
