// What the browser tests share: the server binary started on a fresh port (with its
// arguments), the embedded-files check, Chromium's settings, and reading a page's state
// through its read-only `window.__ticksync`.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The demo client's directory. */
export const clientDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SERVER_BIN = process.env.TICKSYNC_SERVER_BIN ?? path.resolve(clientDir, '../target/debug/ticksync-server');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(clientDir, 'test-artifacts');
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];
export const WAIT = { timeout: 8000 };

export const skip = process.env.TICKSYNC_SKIP_BROWSER === '1' ? 'TICKSYNC_SKIP_BROWSER=1' : false;

/**
 * Starts the server (or `bin`, a server built on it such as the coins example) on a fresh
 * loopback port; resolves once it printed its address.
 */
export function startServer(args = [], bin = SERVER_BIN) {
  const bind = '127.0.0.1:0';
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: run \`cargo build -p ticksync-server\` (or set TICKSYNC_SERVER_BIN)`);
  }
  const child = spawn(bin, ['--bind', bind, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  const log = [];
  // Drain stderr (a full pipe would block the server) and keep the tail for failures.
  child.stderr.on('data', (d) => {
    log.push(String(d));
    if (log.length > 50) log.shift();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server printed no address in 10 s: ${out}${log.join('')}`));
    }, 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before printing its address: ${log.join('')}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/ticksync: open (http:\/\/127\.0\.0\.1:(\d+)\/) to play/);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, base: m[1], port: Number(m[2]), log });
      }
    });
  });
}

export function exited(child, ms = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not exit')), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Every file under `dir` (relative to the client directory), recursively. */
function filesUnder(dir) {
  return readdirSync(path.join(clientDir, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

/** The files the server embeds, compared with the ones on disk. */
export async function checkEmbedded(base) {
  const files = ['index.html', 'style.css', 'favicon.svg', ...filesUnder('src')];
  for (const file of files) {
    const res = await fetch(base + file);
    const served = Buffer.from(await res.arrayBuffer());
    const disk = readFileSync(path.join(clientDir, file));
    if (res.status !== 200 || !served.equals(disk)) {
      throw new Error(
        `the server binary serves an older ${file} (HTTP ${res.status}): it embeds demo-client/ at build time; ` +
          'run `cargo build -p ticksync-server`',
      );
    }
  }
}

export const state = (page, expr) => page.evaluate(`(() => { const t = window.__ticksync; return ${expr}; })()`);
export const until = (page, expr, timeout = WAIT.timeout) =>
  page.waitForFunction(`(() => { const t = window.__ticksync; return t && (${expr}); })()`, null, { timeout, polling: 20 });


/**
 * A page of its own (a fresh context: `width`×800 CSS pixels, the page's CSP bypassed
 * unless `csp`) at `url`, online, with `name` typed in; its page errors and console errors
 * (but those matching `expected`) go to `errors`.
 */
export async function openPlayer(browser, url, name, errors, { width = 1000, csp = false, expected = null } = {}) {
  const context = await browser.newContext({ viewport: { width, height: 800 }, deviceScaleFactor: 1, bypassCSP: !csp });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT.timeout);
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) errors.push(`${name} console: ${m.text()}`);
  });
  await page.goto(url);
  if (csp) {
    // The page's CSP forbids evaluating strings (`until`): wait on the DOM instead.
    await page.locator('#status[data-state="online"]').waitFor(WAIT);
  } else {
    await until(page, "t.state === 'online'");
  }
  await page.fill('#name', name);
  return page;
}

/** Kills a server `startServer` started, if it still runs, and waits for it. */
export async function killServer(server) {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await exited(server.child).catch(() => {});
  }
}
