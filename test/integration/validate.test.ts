/**
 * The kernel frontends end to end: what `tmemu validate` runs (swap integrity with an ample and a
 * nearly full store, cleancache against a guest without it, coherence after overwrite, truncate,
 * punch, collapse and direct writes, the inert kernel without a device, and the host contract:
 * hostile shared puts, host resets, refused puts, a lost persistent page and live fuzzing, with a
 * short fuzz), in real guests with our patch series; and that it fails when the host has a bug.
 */
import { describe, expect, it } from "vitest";
import { formatReport, validate } from "../../cli/validate.ts";
import { INJECT_FAULT_ENV } from "../../hypervisor/tmem/hypercall.ts";

describe("tmemu validate (our patch series)", () => {
  it("passes every end-to-end check, with the numbers to show for it", { timeout: 3_600_000 }, async () => {
    const report = await validate({ memoryMib: 128, fuzzSeconds: 20, log: (l) => process.stderr.write(`${l}\n`) });
    process.stderr.write(formatReport(report));
    for (const r of report.results) expect.soft(r, `${r.name}: ${r.reason}`).toMatchObject({ pass: true });
    expect(report.results.map((r) => r.name)).toEqual([
      "swap",
      "swap-store-full",
      "cleancache",
      "coherence",
      "inert",
      "hostile-shared",
      "reprobe",
      "refused-put",
      "lost-persistent",
      "fuzz",
    ]);
    const byName = Object.fromEntries(report.results.map((r) => [r.name, r.numbers]));
    expect(byName["swap"]?.["mismatches"]).toBe(0);
    expect(byName["swap-store-full"]?.["mismatches"]).toBe(0);
    expect(byName["inert"]?.["mismatches"]).toBe(0);
    expect(byName["inert"]?.["portWritesWithoutDevice"]).toBe(0);
    expect(byName["hostile-shared"]?.["hostilePutsAccepted"]).toBe(0);
    expect(byName["hostile-shared"]?.["honestFilesWrong"]).toBe(0);
    expect(byName["lost-persistent"]?.["firstRunExit"]).toBe(135);
    expect(byName["fuzz"]?.["callsIssued"]).toBeGreaterThan(0);
    expect(byName["fuzz"]?.["hostExceptions"]).toBe(0);
  });

  it("fails the swap check when the host's put path throws (TMEMU_INJECT_FAULT=store-put)", { timeout: 1_800_000 }, async () => {
    process.env[INJECT_FAULT_ENV] = "store-put";
    try {
      const report = await validate({ memoryMib: 128, only: ["swap"], log: (l) => process.stderr.write(`${l}\n`) });
      process.stderr.write(formatReport(report));
      const swap = report.results[0]!;
      const internal = swap.numbers["hostInternalErrors"];
      expect(internal).toBeGreaterThan(0);
      expect(swap.numbers["guestHypercallErrors"]).toBe(internal);
      // Only the new checks fail it: the data survived (failed stores went to the swap disk) and
      // every counter agrees, which is what a swap check that ignored errors saw as a PASS.
      expect(swap.numbers["mismatches"]).toBe(0);
      expect(swap).toMatchObject({ pass: false });
      expect(swap.reason.split("; ")).toEqual([
        expect.stringMatching(/^host internal errors: \d+ \(last: injected fault in the store's put path/),
        `guest hypercall_errors: ${internal}`,
      ]);
    } finally {
      delete process.env[INJECT_FAULT_ENV];
    }
  });
});
