// Kill points for the crash scenarios: the service runs with --inspect on loopback, and a conditional
// breakpoint on fs.writeSync (the call every journal line and every audit line goes through) pauses
// the process just before a chosen line reaches the kernel; the scenario then kills it with SIGKILL.
// Nothing in the service is changed: the disk holds exactly what it held at that instant. A minimal
// WebSocket client (RFC 6455, text frames) is enough for the Chrome DevTools Protocol.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

type Json = Record<string, unknown>;

class WsClient {
  private buf = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  onMessage: (text: string) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(private readonly socket: Socket) {}

  static open(url: string): Promise<WsClient> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      const key = randomBytes(16).toString('base64');
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!/^HTTP\/1\.1 101/.test(status)) {
          socket.destroy();
          reject(new Error(`inspector refused the WebSocket: ${status}`));
          return;
        }
        const ws = new WsClient(socket);
        socket.on('data', (x: Buffer) => ws.feed(x));
        socket.on('close', () => ws.onClose());
        ws.feed(head.subarray(end + 4));
        resolve(ws);
      };
      socket.once('error', reject);
      socket.on('data', onData);
      socket.write(
        `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  send(text: string): void {
    const payload = Buffer.from(text, 'utf8');
    const n = payload.length;
    const head = n < 126 ? Buffer.alloc(2) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x81;
    if (n < 126) head[1] = 0x80 | n;
    else if (n < 65536) {
      head[1] = 0x80 | 126;
      head.writeUInt16BE(n, 2);
    } else {
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(n), 2);
    }
    const mask = randomBytes(4);
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) body[i] = (payload[i] as number) ^ (mask[i % 4] as number);
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  close(): void {
    this.socket.destroy();
  }

  private feed(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0] as number;
      const b1 = this.buf[1] as number;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskAt = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) {
        const m = this.buf.subarray(maskAt, maskAt + 4);
        payload = Buffer.from(payload.map((x, i) => x ^ (m[i % 4] as number)));
      }
      this.buf = this.buf.subarray(off + len);
      const op = b0 & 0x0f;
      if (op === 8) {
        this.socket.end();
        return;
      }
      if (op === 9) continue; // ping: the inspector does not send them
      if (op === 1 || op === 0) {
        this.fragments.push(Buffer.from(payload));
        if (b0 & 0x80) {
          const text = Buffer.concat(this.fragments).toString('utf8');
          this.fragments = [];
          this.onMessage(text);
        }
      }
    }
  }
}

/** A DevTools Protocol session with a process started with --inspect=127.0.0.1:PORT. */
export class Inspector {
  private seq = 0;
  private readonly calls = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Array<(params: Json) => void>>();

  private constructor(private readonly ws: WsClient) {
    ws.onMessage = (text) => {
      const m = JSON.parse(text) as {
        id?: number;
        result?: Json;
        error?: { message: string };
        method?: string;
        params?: Json;
      };
      if (m.id !== undefined) {
        const c = this.calls.get(m.id);
        this.calls.delete(m.id);
        if (m.error) c?.reject(new Error(m.error.message));
        else c?.resolve(m.result ?? {});
      } else if (m.method) {
        for (const fn of this.listeners.get(m.method) ?? []) fn(m.params ?? {});
      }
    };
    ws.onClose = () => {
      for (const c of this.calls.values()) c.reject(new Error('inspector connection closed'));
      this.calls.clear();
    };
  }

  static async connect(port: number, timeoutMs = 10_000): Promise<Inspector> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{
          webSocketDebuggerUrl?: string;
        }>;
        const url = list[0]?.webSocketDebuggerUrl;
        if (url) return new Inspector(await WsClient.open(url));
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no inspector on 127.0.0.1:${port}: ${last}`);
  }

  send(method: string, params: Json = {}): Promise<Json> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  on(method: string, fn: (params: Json) => void): void {
    const l = this.listeners.get(method) ?? [];
    l.push(fn);
    this.listeners.set(method, l);
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Arms a breakpoint at the entry of fs.writeSync that pauses only when the text written matches
 * `pattern` (a JavaScript regular expression source and flags, tested against the whole write); `onPause` runs
 * when it does (the scenario sends SIGKILL there). Resolves once armed.
 */
export async function armWriteBreakpoint(
  insp: Inspector,
  pattern: string,
  onPause: () => void,
  flags = '',
): Promise<void> {
  insp.on('Debugger.paused', () => onPause());
  await insp.send('Debugger.enable');
  const fn = await insp.send('Runtime.evaluate', {
    expression: "process.getBuiltinModule('node:fs').writeSync",
  });
  const objectId = (fn.result as { objectId?: string } | undefined)?.objectId;
  if (!objectId) throw new Error('cannot reach fs.writeSync through the inspector');
  // `buffer` is writeSync's second parameter (a string or a Buffer/Uint8Array view).
  const re = `${JSON.stringify(pattern)}, ${JSON.stringify(flags)}`;
  const condition =
    `(typeof buffer === 'string' ? new RegExp(${re}).test(buffer) : ` +
    `(buffer instanceof Uint8Array && new RegExp(${re}).test(Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength).toString('utf8'))))`;
  // A builtin's source location cannot take a breakpoint; a break on calls of the function object can.
  await insp.send('Debugger.setBreakpointOnFunctionCall', { objectId, condition });
}

/** Escapes text for use inside a regular expression source. */
export const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Collects garbage in the inspected process and returns its used V8 heap in MB (a leak's signal). */
export async function heapAfterGcMb(insp: Inspector): Promise<number> {
  await insp.send('HeapProfiler.collectGarbage');
  const u = await insp.send('Runtime.getHeapUsage');
  return Number(u.usedSize) / 1024 / 1024;
}
