// The monitor page in real headless Chromium against the real server: it loads, asks for
// the token, shows a lobby a test client created, and a kick from the page disconnects
// that client with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
// The monitor has no npm packages of its own: it borrows the demo client's playwright-core.
const { chromium } = await import(join(root, 'demo-client/node_modules/playwright-core/index.mjs'));

const TOKEN = 'monitor-test-token';
const BIN = process.env.TICKSYNC_SERVER_BIN || join(root, 'target/debug/ticksync-server');
let server;
let base;
let browser;

before(async () => {
  server = spawn(BIN, ['--bind', '127.0.0.1:0', '--admin-token', TOKEN], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start')), 15000);
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/open (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

test('the monitor shows a live lobby and kicks a player with a reason', { timeout: 60000 }, async () => {
  // A player, driven in its own page with the client's codec.
  const player = await browser.newPage();
  await player.goto(`${base}/`);
  await player.evaluate(async (url) => {
    const { encodeClient, decodeServer, PROTOCOL_VERSION } = await import('/src/codec.js');
    const record = { messages: [], close: null };
    window.__probe = record;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) => record.messages.push(decodeServer(new Uint8Array(e.data)));
    ws.onclose = (e) => { record.close = { code: e.code, reason: e.reason }; };
    await new Promise((resolve) => { ws.onopen = resolve; });
    ws.send(encodeClient({ type: 'Hello', protocol_version: PROTOCOL_VERSION, name: 'watched', resume_token: null }));
    ws.send(encodeClient({ type: 'CreateLobby', name: 'monitored room', max_players: 4, private: false }));
  }, `${base.replace('http', 'ws')}/ws`);
  await player.waitForFunction(() => window.__probe.messages.some((m) => m.type === 'Joined'), null, { timeout: 10000 });

  const monitor = await browser.newPage();
  await monitor.goto(`${base}/monitor`);
  await monitor.fill('#token', 'wrong');
  await monitor.click('#login button');
  await monitor.waitForSelector('#login-error:has-text("Wrong token")', { timeout: 10000 });

  await monitor.fill('#token', TOKEN);
  await monitor.click('#login button');
  const row = monitor.locator('#lobbies tbody tr', { hasText: 'monitored room' });
  await row.waitFor({ timeout: 10000 });
  assert.match(await row.innerText(), /1 \/ 4/);
  const playerRow = monitor.locator('#players tbody tr', { hasText: 'watched' });
  await playerRow.waitFor({ timeout: 10000 });
  // Charts fill in after a couple of polls.
  await monitor.waitForFunction(() => (window.__ticksyncMonitor?.points ?? 0) >= 2, null, { timeout: 10000 });
  mkdirSync(join(root, 'demo-client/test-artifacts'), { recursive: true });
  await monitor.screenshot({ path: join(root, 'demo-client/test-artifacts/monitor.png'), fullPage: true }).catch(() => {});

  monitor.once('dialog', (dialog) => dialog.accept('cheating, says the test'));
  await playerRow.locator('button', { hasText: 'Kick' }).click();
  await player.waitForFunction(() => window.__probe.close !== null, null, { timeout: 10000 });
  const { close, messages } = await player.evaluate(() => window.__probe);
  assert.equal(close.code, 4006);
  const error = messages.find((m) => m.type === 'Error');
  assert.equal(error.code, 16);
  assert.equal(error.message, 'cheating, says the test');
  await monitor.locator('#players tbody tr', { hasText: 'watched' }).waitFor({ state: 'detached', timeout: 10000 });
});
