/**
 * The dashboard page as one HTML document: the page's script (page/app.ts with uPlot and xterm,
 * bundled by esbuild from node_modules when first needed, about a quarter of a second), the two
 * libraries' stylesheets, the page's own, and the state as JSON. Nothing is generated into the
 * repository: `npx tmemu` works from a clean clone after `npm ci`, and the page loads nothing from
 * the network (its Content-Security-Policy says so: a static report may connect nowhere, a live page
 * only back to its server).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { UiState } from "./state.ts";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

let script: Promise<string> | undefined;

/** The page's script, bundled once per process. */
export function pageScript(): Promise<string> {
  script ??= (async () => {
    const esbuild = await import("esbuild");
    const out = await esbuild.build({
      entryPoints: [join(here, "page", "app.ts")],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      target: "es2020",
      minify: true,
      legalComments: "inline",
      logLevel: "silent",
    });
    const file = out.outputFiles[0];
    if (!file) throw new Error("esbuild produced no output for the dashboard page");
    return file.text;
  })();
  return script;
}

function libraryCss(): string {
  const uplot = readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const xterm = readFileSync(require.resolve("@xterm/xterm/css/xterm.css"), "utf8");
  return `${uplot}\n${xterm}`;
}

const PAGE_CSS = `
body { font: 14px/1.4 "DejaVu Sans", "Liberation Sans", system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #111; }
main { padding: 12px 20px 40px; max-width: 1900px; }
header { display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; border-bottom: 1px solid #ccc; margin-bottom: 8px; }
h1 { font-size: 20px; margin: 6px 0; }
h2 { font-size: 17px; margin: 16px 0 6px; }
h3 { font-size: 13px; margin: 2px 0 4px; font-weight: 600; }
#status { font-weight: 600; }
#status[data-status=live] { color: #0a7a0a; }
.source { color: #555; font-size: 12px; }
section { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: 4px 14px 12px; margin: 10px 0; }
.guest { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)) minmax(0, 1.5fr); gap: 10px; margin: 10px 0; align-items: start; border-top: 1px solid #eee; padding-top: 8px; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; align-items: start; }
.chart { min-width: 0; }
.u-title { font-size: 13px !important; font-weight: 600 !important; }
.u-legend { font-size: 12px; }
.u-legend .u-marker { width: 0.8em; height: 0.8em; }
table.now { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.now th, table.now td { border: 1px solid #dde; padding: 2px 8px; text-align: right; white-space: nowrap; }
table.now th { background: #eef1f6; font-weight: 600; }
.events { max-height: 300px; overflow-y: auto; }
.note { color: #555; font-size: 12px; margin: 2px 0; }
pre { font: 12px/1.35 "DejaVu Sans Mono", "Liberation Mono", monospace; background: #f3f3f3; padding: 8px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0; }
.ok { color: #0a7a0a; } .bad { color: #b00; }
.term { background: #000; padding: 4px; border-radius: 4px; overflow: hidden; }
.links a { margin-right: 16px; }
.svg svg { max-width: 100%; height: auto; background: #fff; }
`;

/** JSON safe inside <script>: no "</script>", no "<!--", no U+2028/9 surprises. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** The whole page for `state` (live: the page then follows /events on its server). */
export async function pageHtml(state: UiState, title: string): Promise<string> {
  const js = await pageScript();
  const csp = state.live
    ? "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"
    : "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'none'; base-uri 'none'; form-action 'none'";
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${libraryCss()}\n${PAGE_CSS}</style>`,
    "</head><body>",
    `<script id="tmemu-data" type="application/json">${jsonForScript(state)}</script>`,
    `<script>${js.replace(/<\/script/gi, "<\\/script")}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}
