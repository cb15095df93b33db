/**
 * The dashboard's HTTP server for `tmemu run --ui` and `tmemu bench --ui`.
 *
 * Bound to 127.0.0.1 only. A request is answered only when
 *  - its Host header is 127.0.0.1:PORT or localhost:PORT (else 421: a page on another site that
 *    resolves its own name to 127.0.0.1, DNS rebinding, gets nothing), and
 *  - it carries the token printed in the URL, as ?token= or as the cookie the first load sets
 *    (else 403). The first load moves the token into an HttpOnly, SameSite=Strict cookie and
 *    redirects to the bare URL, so the token leaves the address bar.
 * Typing into a console (POST /input) needs --ui-console rw, and a same-origin Origin header when
 * the browser sends one.
 *
 * Routes: GET / (the page, with the state so far), GET /events (server-sent events: "state" with
 * the whole state, then one "ui" event per UiEvent), GET /files/NAME (the run's JSON, the bench's
 * SVG), POST /input?guest=NAME (console input).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { TmemuError } from "../../hypervisor/user-errors.ts";
import { pageHtml } from "./bundle.ts";
import { applyEvent, emptyState, type UiEvent, type UiState } from "./state.ts";

export interface UiServerOptions {
  /** 0: a free port. */
  port: number;
  kind: UiState["kind"];
  consoleWritable: boolean;
  /** What the page says made it ("tmemu run --ui ..."). */
  source: string;
  /** Fixed token (tests); default 24 random bytes, hex. */
  token?: string;
}

const COOKIE = "tmemu_token";
const MAX_INPUT_BYTES = 4096;

export class UiServer {
  readonly state: UiState;
  private readonly clients = new Set<ServerResponse>();
  private readonly files = new Map<string, { mime: string; body: string }>();
  private input: ((guest: string, text: string) => void) | undefined;
  private keepAlive: NodeJS.Timeout | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly token: string,
    private readonly opts: UiServerOptions,
  ) {
    this.state = emptyState(opts.kind, true, opts.consoleWritable, opts.source);
  }

  /** Starts listening on 127.0.0.1 (a TmemuError when the port is taken). */
  static async start(opts: UiServerOptions): Promise<UiServer> {
    const token = opts.token ?? randomBytes(24).toString("hex");
    let self: UiServer | undefined;
    const server = createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      self.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) => {
        reject(
          err.code === "EADDRINUSE"
            ? new TmemuError("BAD_INPUT", `--ui ${opts.port}: port ${opts.port} on 127.0.0.1 is in use`, "give another port, or --ui alone for a free one")
            : err,
        );
      });
      server.listen(opts.port, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    self = new UiServer(server, port, token, opts);
    self.keepAlive = setInterval(() => {
      for (const c of self?.clients ?? []) c.write(": keep-alive\n\n");
    }, 15_000);
    self.keepAlive.unref();
    return self;
  }

  /** The URL to open (with the token). */
  get url(): string {
    return `http://127.0.0.1:${this.port}/?token=${this.token}`;
  }

  /** Applies an event to the state and sends it to every open page. */
  publish(ev: UiEvent): void {
    applyEvent(this.state, ev);
    const frame = `event: ui\ndata: ${JSON.stringify(ev)}\n\n`;
    for (const c of this.clients) c.write(frame);
  }

  /** A file the page links to, served at /files/NAME. */
  addFile(name: string, mime: string, body: string): string {
    this.files.set(name, { mime, body });
    return `files/${encodeURIComponent(name)}`;
  }

  /** Where console input goes (only used with consoleWritable). */
  onInput(fn: ((guest: string, text: string) => void) | undefined): void {
    this.input = fn;
  }

  /** Stops listening and drops every connection (an open page's event stream too); idempotent. */
  async close(): Promise<void> {
    if (this.keepAlive) clearInterval(this.keepAlive);
    for (const c of this.clients) c.end();
    this.clients.clear();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // close() alone waits for every connection to end, and a page's event stream never does.
    this.server.closeAllConnections();
    await closed;
  }

  private allowedHosts(): string[] {
    return [`127.0.0.1:${this.port}`, `localhost:${this.port}`];
  }

  private tokenOf(req: IncomingMessage, url: URL): { token: string | undefined; fromQuery: boolean } {
    const q = url.searchParams.get("token");
    if (q !== null) return { token: q, fromQuery: true };
    for (const part of (req.headers.cookie ?? "").split(";")) {
      const [k, v] = part.trim().split("=");
      if (k === COOKIE && v !== undefined) return { token: v, fromQuery: false };
    }
    return { token: undefined, fromQuery: false };
  }

  private tokenOk(token: string | undefined): boolean {
    if (token === undefined) return false;
    const a = Buffer.from(token);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const common = { "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY" };
    const host = req.headers.host ?? "";
    if (!this.allowedHosts().includes(host.toLowerCase())) {
      res.writeHead(421, { ...common, "content-type": "text/plain" }).end(`421 Misdirected Request: this server answers only to ${this.allowedHosts().join(" or ")}\n`);
      return;
    }
    const url = new URL(req.url ?? "/", `http://${host}`);
    const { token, fromQuery } = this.tokenOf(req, url);
    if (!this.tokenOk(token)) {
      res.writeHead(403, { ...common, "content-type": "text/plain" }).end("403 Forbidden: open the URL tmemu printed (it carries the token)\n");
      return;
    }
    const cookie = `${COOKIE}=${this.token}; HttpOnly; SameSite=Strict; Path=/`;
    if (fromQuery && req.method === "GET" && url.pathname === "/") {
      res.writeHead(303, { ...common, "set-cookie": cookie, location: "/" }).end();
      return;
    }
    if (req.method === "GET" && url.pathname === "/") {
      const html = await pageHtml(this.state, this.state.run?.meta.title ?? `tmemu ${this.state.kind}`);
      res.writeHead(200, { ...common, "set-cookie": cookie, "content-type": "text/html; charset=utf-8" }).end(html);
      return;
    }
    if (req.method === "GET" && url.pathname === "/events") {
      res.writeHead(200, { ...common, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
      res.write(`event: state\ndata: ${JSON.stringify(this.state)}\n\n`);
      this.clients.add(res);
      req.on("close", () => this.clients.delete(res));
      return;
    }
    if (req.method === "GET" && url.pathname.startsWith("/files/")) {
      const f = this.files.get(decodeURIComponent(url.pathname.slice("/files/".length)));
      if (!f) {
        res.writeHead(404, { ...common, "content-type": "text/plain" }).end("404 no such file\n");
        return;
      }
      res.writeHead(200, { ...common, "content-type": f.mime }).end(f.body);
      return;
    }
    if (req.method === "POST" && url.pathname === "/input") {
      const origin = req.headers.origin;
      if (!this.opts.consoleWritable || !this.input || (origin !== undefined && !this.allowedHosts().some((h) => origin === `http://${h}`))) {
        res.writeHead(403, { ...common, "content-type": "text/plain" }).end("403 Forbidden: the consoles are read-only (--ui-console rw makes them writable)\n");
        return;
      }
      const guest = url.searchParams.get("guest") ?? "";
      const body = await readBody(req, MAX_INPUT_BYTES);
      if (body === undefined) {
        res.writeHead(413, { ...common, "content-type": "text/plain" }).end("413 too much input at once\n");
        return;
      }
      if (!this.state.run?.meta.guests.includes(guest)) {
        res.writeHead(404, { ...common, "content-type": "text/plain" }).end("404 no such guest\n");
        return;
      }
      this.input(guest, body);
      res.writeHead(204, common).end();
      return;
    }
    res.writeHead(404, { ...common, "content-type": "text/plain" }).end("404 not found\n");
  }
}

function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > max) over = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(over ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
