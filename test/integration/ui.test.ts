/**
 * `tmemu run --ui` in a real browser: Debian's chromium (headless, fresh profile, no network but the
 * dashboard's own server) follows a short live run of 2 guests; the page's tables, chart legends,
 * summary and consoles must show what the run's JSON says; requests without the token or with
 * another Host header are refused; the page stays up after the run until Ctrl-C. Saves a
 * screenshot (its path is printed).
 */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../guest-images/paths.ts";
import { formatSummary, type RunSummary } from "../../cli/run.ts";
import { formatBenchTable } from "../../cli/bench-report.ts";
import { normalizeBench } from "../../cli/report-command.ts";
import { tmemu } from "./helpers.ts";
import type { BrowserContext, Page } from "playwright-core";
import { launchChromium } from "./chromium.ts";

// Each guest touches a little more than its RAM once: swap goes to the store, and comes back.
const CMD = "memtouch 100 1 1 512; echo UI-MARK-$((6*7))";

/** Opens a file:// page and collects every request that is not for the file itself (there must be none). */
async function openFromDisk(ctx: BrowserContext, file: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const page = await ctx.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => {
    if (r.url() !== `file://${file}`) requests.push(r.url());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`file://${file}`);
  await page.waitForFunction(() => document.body.dataset["ended"] === "true");
  return { page, requests, errors };
}

/** The "now" table of the guests, as data-key -> data-value per guest. */
function guestTable(page: Page): Promise<Record<string, string | null>[]> {
  return page.evaluate(() => [...document.querySelectorAll("#guest-now tr[data-guest]")].map((tr) => Object.fromEntries([...tr.querySelectorAll("td[data-key]")].map((td) => [td.getAttribute("data-key") ?? "", td.getAttribute("data-value")]))));
}

function status(url: string, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { host } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("tmemu run --ui", () => {
  it("shows the run live in chromium, with the JSON's values at the end; refuses requests without the token or from another Host", { timeout: 420_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-ui-test-"));
    const jsonFile = join(dir, "run.json");
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/tmemu.js"), "run", "--guests", "2", "--memory-mib", "96", "--policy", "selfballoon", "--cmd", CMD, "--json", jsonFile, "--ui"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (b: Buffer) => {
        stderr += b.toString();
        const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/.exec(stderr);
        if (m?.[1]) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`tmemu exited ${code} before printing the URL: ${stderr}`)));
    });
    const ctx = await launchChromium();
    try {
      const u = new URL(url);
      const origin = `http://127.0.0.1:${u.port}`;
      const token = u.searchParams.get("token") ?? "";
      // Refused: no token, a wrong token, another Host header (DNS rebinding), another port in Host.
      const refusals = {
        noToken: await status(`${origin}/`),
        noTokenEvents: await status(`${origin}/events`),
        wrongToken: await status(`${origin}/?token=${"0".repeat(token.length)}`),
        otherHost: await status(url, `evil.example:${u.port}`),
        otherPort: await status(url, `127.0.0.1:${Number(u.port) + 1}`),
        withToken: await status(url),
      };
      process.stderr.write(`ui refusals: ${JSON.stringify(refusals)}\n`);
      expect(refusals).toEqual({ noToken: 403, noTokenEvents: 403, wrongToken: 403, otherHost: 421, otherPort: 421, withToken: 303 });

      const page = await ctx.newPage();
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(`${origin}/`)) foreign.push(r.url());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(url);
      // Live: samples arrive while the guests run.
      await page.waitForFunction(() => Number(document.body.dataset["samples"]) >= 3, null, { timeout: 240_000 });
      expect(await page.locator("#status").getAttribute("data-status")).toBe("live");
      await page.waitForFunction(() => document.body.dataset["ended"] === "true", null, { timeout: 300_000, polling: 500 });
      expect(await page.locator("#status").getAttribute("data-status")).toBe("finished");

      const s = JSON.parse(readFileSync(jsonFile, "utf8")) as RunSummary;
      expect(s.valid).toBe(true);
      const timeline = s.timeline!;
      expect(timeline.samples.length).toBeGreaterThan(3);
      expect(Number(await page.evaluate(() => document.body.dataset["samples"]))).toBe(timeline.samples.length);

      // The "now" table: the last sample, taken as the window closed, at the moment of the summary's counters.
      const shown = await page.evaluate(() =>
        [...document.querySelectorAll("#guest-now tr[data-guest]")].map((tr) => ({
          guest: tr.getAttribute("data-guest"),
          values: Object.fromEntries([...tr.querySelectorAll("td[data-key]")].map((td) => [td.getAttribute("data-key"), { value: td.getAttribute("data-value"), text: td.textContent }])),
        })),
      );
      expect(shown.map((r) => r.guest)).toEqual(["g0", "g1"]);
      for (const [i, g] of s.guests.entries()) {
        const v = shown[i]!.values;
        const expected: Record<string, number> = {
          tmemPuts: g.tmem!.puts,
          tmemGetHits: g.tmem!.getHits,
          tmemGetMisses: g.tmem!.gets - g.tmem!.getHits,
          tmemPutsRefused: g.tmem!.putsRefused,
          tmemPagesEphemeral: g.tmem!.pagesEphemeral,
          tmemPagesPersistent: g.tmem!.pagesPersistent,
          dataSectorsRead: g.dataSectorsRead,
          swapSectorsRead: g.swapSectorsRead,
          swapSectorsWritten: g.swapSectorsWritten,
        };
        for (const [key, want] of Object.entries(expected)) {
          expect({ guest: g.name, key, value: Number(v[key]?.value), text: v[key]?.text }).toEqual({ guest: g.name, key, value: want, text: String(want) });
        }
      }
      // The work happened: swap went to the store and came back as hits.
      expect(s.guests.every((g) => (g.tmem?.puts ?? 0) > 1000 && (g.tmem?.getHits ?? 0) > 1000)).toBe(true);

      // Chart legends show the latest values (the cursor is off the charts): the JSON's.
      const legend = await page.evaluate(() => {
        const out: Record<string, Record<string, string>> = {};
        for (const c of document.querySelectorAll(".chart[data-chart]")) {
          const rows: Record<string, string> = {};
          for (const tr of c.querySelectorAll(".u-legend tr.u-series")) rows[(tr.querySelector(".u-label")?.textContent ?? "").trim()] = (tr.querySelector(".u-value")?.textContent ?? "").trim();
          out[c.getAttribute("data-chart") ?? ""] = rows;
        }
        return out;
      });
      const g0 = s.guests[0]!;
      expect(legend["g0: tmem operations (since the window opened)"]?.["get hits"]).toBe(String(g0.tmem!.getHits));
      expect(legend["g0: tmem operations (since the window opened)"]?.["puts"]).toBe(String(g0.tmem!.puts));
      expect(legend["g0: disk I/O (since the window opened)"]?.["swap written"]).toBe(String(g0.swapSectorsWritten));
      const last = timeline.samples[timeline.samples.length - 1]!;
      expect(legend["store: evictions and refused puts (since the store was created)"]?.["refused puts"]).toBe(String(last.store.putsRefused));
      // The store table: the last sample of the JSON's timeline.
      const storeShown = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#store-now td[data-key]")].map((td) => [td.getAttribute("data-key"), Number(td.getAttribute("data-value"))])));
      expect(storeShown).toEqual({ budgetFrames: last.store.budgetFrames, framesUsed: last.store.framesUsed, pagesEphemeral: last.store.pagesEphemeral, pagesPersistent: last.store.pagesPersistent, evictions: last.store.evictions, putsRefused: last.store.putsRefused });
      // The decisions the JSON lists are on the page (newest first, the last 300 at most).
      expect(await page.locator("#decisions tr").count()).toBe(Math.min(300, timeline.decisions.length) + 1);

      // The summary, word for word as the CLI prints it; a link to the JSON that serves it.
      expect(await page.locator("#summary-text").textContent()).toBe(formatSummary(s));
      const href = await page.locator("#summary a").first().getAttribute("href");
      const served = await page.evaluate(async (h) => (await fetch(h!)).text(), href);
      expect(JSON.parse(served)).toEqual(s);

      // Consoles: each guest's serial console, with the line its command printed last.
      const consoles = await page.evaluate(() => {
        const out: Record<string, string> = {};
        for (const [name, term] of Object.entries(window.tmemu.terminals)) {
          const b = term.buffer.active;
          const lines: string[] = [];
          for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? "");
          out[name] = lines.join("\n");
        }
        return out;
      });
      for (const g of s.guests) {
        expect(g.output).toContain("UI-MARK-42");
        expect(consoles[g.name]).toContain("UI-MARK-42");
        expect(consoles[g.name]).toContain("memtouch: mib=100");
      }
      expect(await page.locator("[data-console=g0] .xterm-rows").count()).toBe(1);

      const shot = join(dir, "ui.png");
      await page.screenshot({ path: shot, fullPage: true });
      process.stderr.write(`ui screenshot: ${shot}\n`);
      expect(foreign).toEqual([]);
      expect(errors).toEqual([]);

      // The page stays up after the run, until Ctrl-C.
      expect(await status(url)).toBe(303);
      child.kill("SIGINT");
      expect(await exited).toBe(0);

      // The same page, static, from the JSON: opens from disk, loads nothing, shows the same values.
      const liveTable = await guestTable(page);
      const rep = await tmemu(["report", jsonFile, "--out", join(dir, "report")]);
      expect(rep.code).toBe(0);
      const fromDisk = await openFromDisk(ctx, join(dir, "report", "index.html"));
      expect(await guestTable(fromDisk.page)).toEqual(liveTable);
      expect(await fromDisk.page.locator("#summary-text").textContent()).toBe(formatSummary(s));
      expect(Number(await fromDisk.page.evaluate(() => document.body.dataset["samples"]))).toBe(timeline.samples.length);
      expect(fromDisk.requests).toEqual([]);
      expect(fromDisk.errors).toEqual([]);
    } finally {
      await ctx.close();
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

describe("tmemu report", () => {
  it("writes a bench page that opens from disk with no network and shows the CLI's table and chart", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-report-test-"));
    const doc = join(REPO_ROOT, "docs/measurements/2026-11-26/bench-phased.json");
    const r = await tmemu(["report", doc, "--out", dir]);
    expect(r.code).toBe(0);
    const ctx = await launchChromium();
    try {
      const { page, requests, errors } = await openFromDisk(ctx, join(dir, "index.html"));
      expect(await page.locator("#bench-table").textContent()).toBe(formatBenchTable(normalizeBench(JSON.parse(readFileSync(doc, "utf8")))));
      expect(await page.locator("#bench-chart svg").count()).toBe(1);
      expect(await page.locator(".links a").count()).toBe(2);
      expect(requests).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
});
