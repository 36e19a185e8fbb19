// HTTP/1.1 message heads and body framing for the router's fast path (router-fast.mjs): a strict reader of the plainest
// requests, which takes a request only when the whole of it is in hand and hands everything else to node:http (the
// caller does), and a reader of a model's response heads and body framing (RFC 9112 §6), so that a response's bytes can
// be passed on as they come and its end found without decoding it. Plain JavaScript, like the router.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Only the methods node:http answers for itself in the same way; CONNECT and the rest go to node:http.
const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: a reason phrase with control characters is refused
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/; // control characters but HTAB: a bare CR or LF is never taken
const MAX_HEAD = 16 * 1024;
// A request with one of these goes to node:http: chunked or otherwise framed bodies, 100-continue, upgrades.
const HANDED_OVER = new Set(['transfer-encoding', 'expect', 'upgrade']);

const trimOws = (s) => s.replace(/^[ \t]+|[ \t]+$/g, '');

/**
 * The request at the start of `buf` when the fast path may take it: `{ end, method, url, pin }`, `end` the byte after its
 * body (content-length framed, or none). Null when it must go to node:http instead: not all there yet, anything but
 * HTTP/1.1 with plain headers, a body otherwise framed, `Expect`, `Upgrade`, `Connection` other than keep-alive, or
 * no single Host (node:http answers those, 400 included). `isOwn(url)` keeps the router's own paths for node:http.
 */
export function readRequest(buf, isOwn) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0 || headEnd > MAX_HEAD) return null;
  const lines = buf.latin1Slice(0, headEnd).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0]);
  if (!line || isOwn(line[2])) return null;
  let length = 0;
  let lengthSeen = false;
  let hosts = 0;
  let pin;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) return null;
    const name = lines[i].slice(0, colon).toLowerCase();
    const value = trimOws(lines[i].slice(colon + 1));
    if (!TOKEN.test(name) || BAD_VALUE.test(value) || HANDED_OVER.has(name)) return null;
    if (name === 'content-length') {
      if (lengthSeen || !/^\d{1,15}$/.test(value)) return null;
      lengthSeen = true;
      length = Number(value);
    } else if (name === 'host') hosts++;
    else if (name === 'connection' && value.toLowerCase() !== 'keep-alive') return null;
    else if (name === 'x-atelier-pin-revision') {
      if (pin !== undefined) return null;
      pin = value;
    }
  }
  const end = headEnd + 4 + length;
  if (hosts !== 1 || buf.length < end) return null;
  return { end, method: line[1], url: line[2], pin };
}

/**
 * A model's response head at the start of `buf`, `null` while it is incomplete; throws on one that is not HTTP/1.x.
 * `head` is what the client gets: the model's status and fields but the hop-by-hop ones (RFC 9110 §7.6.1), then
 * `extra` (the revision tag) and the router's own connection fields. `body`: 'none', 'length' (`length` bytes),
 * 'chunked' or 'close' (until the model closes: the client's connection closes after it). `reusable`: whether the
 * model's connection may carry another request afterwards; `keepAliveMs`: its idle limit when the model gave one.
 */
export function readResponse(buf, headRequest, extra, keepAliveTimeoutS) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) {
    if (buf.length > 64 * 1024) throw new Error('response head over 64 KiB');
    return null;
  }
  const lines = buf.latin1Slice(0, headEnd).split('\r\n');
  const status = STATUS_LINE.exec(lines[0]);
  if (!status) throw new Error(`not an HTTP/1 response: ${JSON.stringify(lines[0].slice(0, 40))}`);
  const code = Number(status[2]);
  let length;
  let chunked = false;
  let framed = false; // a transfer-encoding other than chunked last: the body runs until the close
  const connection = [];
  let keepAliveMs;
  let dated = false;
  const kept = [];
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0 || BAD_VALUE.test(lines[i])) throw new Error('malformed response header');
    const name = lines[i].slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw new Error('malformed response header');
    const value = trimOws(lines[i].slice(colon + 1));
    if (name === 'connection') connection.push(...value.toLowerCase().split(/[ \t]*,[ \t]*/));
    else if (name === 'keep-alive') {
      const hint = /(?:^|[ ,])timeout=(\d+)/.exec(value);
      if (hint) keepAliveMs = Number(hint[1]) * 1000;
    } else if (name === 'proxy-connection') {
    } else {
      if (name === 'transfer-encoding') {
        chunked = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(value);
        framed = !chunked;
      } else if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) throw new Error('bad content-length');
        length = Number(value);
      }
      if (name === 'date') dated = true;
      kept.push(lines[i]);
    }
  }
  const http10 = status[1] === '0';
  const informational = code < 200;
  const body =
    informational || headRequest || code === 204 || code === 304 ? 'none' : chunked ? 'chunked' : framed || length === undefined ? 'close' : 'length';
  const reusable = body !== 'close' && !connection.includes('close') && (!http10 || connection.includes('keep-alive'));
  const lead = `HTTP/1.1 ${status[2]} ${status[3] ?? ''}\r\n`;
  const connectionFields = body === 'close' ? 'Connection: close\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveTimeoutS}\r\n`;
  // A Date when the model sent none, as node:http adds one.
  const own = informational ? '' : `${dated ? '' : `Date: ${utcDate()}\r\n`}${connectionFields}`;
  const fields = kept.filter((l) => !connection.includes(l.slice(0, l.indexOf(':')).toLowerCase()));
  const head = Buffer.from(`${lead}${fields.join('\r\n')}${fields.length ? '\r\n' : ''}${informational ? '' : extra}${own}\r\n`, 'latin1');
  return { code, headLength: headEnd + 4, head, body, length: length ?? 0, reusable, keepAliveMs };
}

let dateSecond = -1;
let dateText = '';
/** The HTTP date of now, made at most once a second. */
function utcDate() {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) [dateSecond, dateText] = [second, new Date(second * 1000).toUTCString()];
  return dateText;
}

/**
 * Finds the end of a chunked body in bytes passed to `scan` as they come, without decoding it: `scan(buf, from)`
 * returns the index just past the body's last byte (trailers included) once seen, else -1. Throws on bad framing.
 */
export function chunkedEnd() {
  let state = 'size'; // size, ext, sizeLf, data, dataCr, dataLf, trailer, trailerLine, trailerLf, endLf
  let digits = 0;
  let size = 0;
  let left = 0;
  return (buf, from) => {
    let i = from;
    while (i < buf.length) {
      if (state === 'data') {
        const take = Math.min(left, buf.length - i);
        i += take;
        left -= take;
        if (left === 0) state = 'dataCr';
        continue;
      }
      const c = buf[i++];
      if (state === 'size') {
        const hex = c >= 48 && c <= 57 ? c - 48 : (c | 32) >= 97 && (c | 32) <= 102 ? (c | 32) - 87 : -1;
        if (hex >= 0) {
          if (++digits > 12) throw new Error('chunk size too large');
          size = size * 16 + hex;
        } else if (digits > 0 && (c === 59 || c === 32 || c === 9)) state = 'ext';
        else if (digits > 0 && c === 13) state = 'sizeLf';
        else throw new Error('bad chunk size');
      } else if (state === 'ext') {
        if (c === 13) state = 'sizeLf';
        else if (c === 10) throw new Error('bad chunk extension');
      } else if (state === 'sizeLf') {
        if (c !== 10) throw new Error('bad chunk size line');
        if (size === 0) state = 'trailer';
        else [state, left] = ['data', size];
        [digits, size] = [0, 0];
      } else if (state === 'dataCr') {
        if (c !== 13) throw new Error('chunk longer than its size');
        state = 'dataLf';
      } else if (state === 'dataLf') {
        if (c !== 10) throw new Error('chunk longer than its size');
        state = 'size';
      } else if (state === 'trailer') {
        state = c === 13 ? 'endLf' : 'trailerLine';
      } else if (state === 'trailerLine') {
        if (c === 13) state = 'trailerLf';
      } else if (state === 'trailerLf') {
        if (c !== 10) throw new Error('bad trailer');
        state = 'trailer';
      } else if (state === 'endLf') {
        if (c !== 10) throw new Error('bad chunked body end');
        return i;
      }
    }
    return -1;
  };
}
