/** The dashboard server (cli/ui/server.ts): loopback only, Host and token checks, the cookie, events, console input. */
import { afterEach, describe, expect, it } from "vitest";
import { request } from "node:http";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { UiServer } from "../../cli/ui/server.ts";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(port: number, path: string, opts: { host?: string; cookie?: string; method?: string; body?: string; origin?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: opts.host ?? `127.0.0.1:${port}` };
    if (opts.cookie) headers["cookie"] = opts.cookie;
    if (opts.origin) headers["origin"] = opts.origin;
    const req = request({ host: "127.0.0.1", port, path, method: opts.method ?? "GET", headers }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** The first `n` server-sent events of /events. */
function events(port: number, cookie: string, n: number, after?: () => void): Promise<{ event: string; data: unknown }[]> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/events", headers: { host: `127.0.0.1:${port}`, cookie } }, (res) => {
      let buf = "";
      const got: { event: string; data: unknown }[] = [];
      res.on("data", (b: Buffer) => {
        buf += b.toString();
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (ev && data) got.push({ event: ev, data: JSON.parse(data) });
          if (got.length === 1) after?.();
          if (got.length >= n) {
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    req.on("error", (e) => (e.message.includes("socket hang up") ? undefined : reject(e)));
    req.end();
  });
}

const TOKEN = "a".repeat(48);
let server: UiServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("UiServer", () => {
  it("answers only with the token and only to 127.0.0.1:PORT or localhost:PORT; moves the token into a cookie", async () => {
    server = await UiServer.start({ port: 0, kind: "run", consoleWritable: false, source: "test", token: TOKEN });
    const port = server.port;
    expect(server.url).toBe(`http://127.0.0.1:${port}/?token=${TOKEN}`);
    expect((await http(port, "/")).status).toBe(403);
    expect((await http(port, "/events")).status).toBe(403);
    expect((await http(port, `/?token=${"b".repeat(48)}`)).status).toBe(403);
    expect((await http(port, `/?token=${TOKEN.slice(1)}`)).status).toBe(403);
    expect((await http(port, "/", { cookie: `tmemu_token=${"b".repeat(48)}` })).status).toBe(403);
    // Another Host (DNS rebinding), even with the token.
    expect((await http(port, `/?token=${TOKEN}`, { host: `evil.example:${port}` })).status).toBe(421);
    expect((await http(port, `/?token=${TOKEN}`, { host: `127.0.0.1:${port + 1}` })).status).toBe(421);
    expect((await http(port, `/?token=${TOKEN}`, { host: "127.0.0.1" })).status).toBe(421);
    const first = await http(port, `/?token=${TOKEN}`, { host: `localhost:${port}` });
    expect(first.status).toBe(303);
    expect(first.headers["location"]).toBe("/");
    const cookie = String(first.headers["set-cookie"]);
    expect(cookie).toBe(`tmemu_token=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`);
    const page = await http(port, "/", { cookie: `other=1; tmemu_token=${TOKEN}` });
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.body).toContain("connect-src 'self'");
    expect(page.body).toContain('<script id="tmemu-data" type="application/json">');
    expect(page.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    expect((await http(port, "/nothing", { cookie: `tmemu_token=${TOKEN}` })).status).toBe(404);
    // Bound to loopback: this machine's other addresses refuse the connection.
    const others = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === "IPv4" && !a.internal);
    for (const a of others) {
      const err = await new Promise<string>((resolve) => {
        const sock = connect({ host: a!.address, port }, () => {
          sock.destroy();
          resolve("connected");
        });
        sock.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(`${a!.address}: ${err}`).toBe(`${a!.address}: ECONNREFUSED`);
    }
  }, 30_000);

  it("sends the state so far, then every event; serves the files it was given", async () => {
    server = await UiServer.start({ port: 0, kind: "run", consoleWritable: false, source: "test", token: TOKEN });
    const s = server;
    s.publish({ type: "run-start", meta: { title: "t", guests: ["g0"], memoryMib: 128, budgetMib: 192, policy: "static", workload: "cmd" } });
    s.publish({ type: "console", guest: "g0", text: "hello " });
    const got = await events(s.port, `tmemu_token=${TOKEN}`, 2, () => s.publish({ type: "console", guest: "g0", text: "world" }));
    expect(got[0]?.event).toBe("state");
    expect((got[0]?.data as { run: { consoles: Record<string, string> } }).run.consoles).toEqual({ g0: "hello " });
    expect(got[1]).toEqual({ event: "ui", data: { type: "console", guest: "g0", text: "world" } });
    expect(s.state.run?.consoles["g0"]).toBe("hello world");
    const href = s.addFile("run.json", "application/json", '{"a":1}');
    const f = await http(s.port, `/${href}`, { cookie: `tmemu_token=${TOKEN}` });
    expect([f.status, f.headers["content-type"], f.body]).toEqual([200, "application/json", '{"a":1}']);
    expect((await http(s.port, `/${href}`)).status).toBe(403);
  }, 30_000);

  it("takes console input only with --ui-console rw, from its own origin, for a guest it has", async () => {
    const typed: string[] = [];
    const ro = await UiServer.start({ port: 0, kind: "run", consoleWritable: false, source: "test", token: TOKEN });
    ro.onInput((g, t) => typed.push(`${g}:${t}`));
    ro.publish({ type: "run-start", meta: { title: "t", guests: ["g0"], memoryMib: 128, budgetMib: 192, policy: "static", workload: "cmd" } });
    expect((await http(ro.port, "/input?guest=g0", { method: "POST", body: "ls\r", cookie: `tmemu_token=${TOKEN}` })).status).toBe(403);
    await ro.close();
    server = await UiServer.start({ port: 0, kind: "run", consoleWritable: true, source: "test", token: TOKEN });
    const port = server.port;
    server.onInput((g, t) => typed.push(`${g}:${t}`));
    server.publish({ type: "run-start", meta: { title: "t", guests: ["g0"], memoryMib: 128, budgetMib: 192, policy: "static", workload: "cmd" } });
    const cookie = `tmemu_token=${TOKEN}`;
    expect((await http(port, "/input?guest=g0", { method: "POST", body: "ls\r" })).status).toBe(403);
    expect((await http(port, "/input?guest=g0", { method: "POST", body: "ls\r", cookie, origin: "http://evil.example" })).status).toBe(403);
    expect((await http(port, "/input?guest=g9", { method: "POST", body: "ls\r", cookie })).status).toBe(404);
    expect((await http(port, "/input?guest=g0", { method: "POST", body: "x".repeat(5000), cookie })).status).toBe(413);
    expect((await http(port, "/input?guest=g0", { method: "POST", body: "ls\r", cookie, origin: `http://127.0.0.1:${port}` })).status).toBe(204);
    expect(typed).toEqual(["g0:ls\r"]);
  }, 30_000);

  it("says so when the port is taken", async () => {
    server = await UiServer.start({ port: 0, kind: "run", consoleWritable: false, source: "test" });
    await expect(UiServer.start({ port: server.port, kind: "run", consoleWritable: false, source: "test" })).rejects.toThrow(/port \d+ on 127\.0\.0\.1 is in use/);
    expect(server.token).toMatch(/^[0-9a-f]{48}$/);
  }, 30_000);
});

describe("UiServer.close", () => {
  it("returns while a page still holds its event stream open, and can be called twice", async () => {
    const s = await UiServer.start({ port: 0, kind: "run", consoleWritable: false, source: "test", token: TOKEN });
    const opened = new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: s.port, path: "/events", headers: { host: `127.0.0.1:${s.port}`, cookie: `tmemu_token=${TOKEN}` } }, (res) => {
        res.once("data", () => resolve());
        res.on("error", () => undefined);
      });
      req.on("error", () => undefined);
      req.setTimeout(60_000);
      req.end();
      setTimeout(() => reject(new Error("no state event")), 5000).unref();
    });
    await opened;
    // And a request still arriving (a page's EventSource reconnecting as the server closes).
    const partial = connect({ host: "127.0.0.1", port: s.port });
    partial.on("error", () => undefined);
    await new Promise<void>((resolve) => partial.on("connect", () => resolve()));
    partial.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await s.close();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(2000);
  }, 10_000);
});
