// Cluster mode end to end in real headless Chromium: its own redis-server on a free port,
// two real server nodes A and B sharing it, and one origin in front of both (a reverse
// proxy routing `/ws` to A and `/b/ws` to B, the way a deployment may put its nodes behind
// one host; the nodes' public URLs are the front's, so the CSP lists its origin). A
// page on B creates a lobby; a page on A finds it in A's list (the cluster listing),
// joins it, is redirected to B by the server and follows by itself (Hello, JoinReserved),
// and each page sees the other's entity move. Then B's connections are cut the way a
// network does it: both pages resume on B, in the same seats. Last, B unreachable: a third
// page on A is redirected, cannot connect, says so and is back in A's lobby list; and a page
// on node C (whose reservations expire at once) is redirected to B, whose ReservationFailed
// it shows before going back to C's list. A second suite has no proxy: nodes D and E on
// their own ports (two origins), a page on D's origin redirected to E's plays there.
//
// Needs redis-server (skipped with a message without it; ./test.sh installs it), the
// server binary (TICKSYNC_SERVER_BIN, built from the current demo-client: it embeds these
// files) and Chromium (CHROMIUM_BIN). TICKSYNC_SKIP_BROWSER=1 skips the suite. Every
// process it starts is stopped by PID.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, WAIT, checkEmbedded, exited, openPlayer, skip, startServer, state, until } from './support/browser.js';

const REDIS = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const haveRedis = spawnSync(REDIS, ['--version'], { stdio: 'ignore' }).status === 0;
const skipCluster = skip || (haveRedis ? false : `no ${REDIS} on this machine (./test.sh installs it)`);
if (!skip && !haveRedis) console.log(`# cluster.browser.test.js skipped: no ${REDIS} (./test.sh installs it)`);

/** A free loopback port (for redis-server, which needs one on its command line). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** redis-server on a free port, no persistence; resolves once it accepts connections. */
async function startRedis() {
  const port = await freePort();
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out = (out + d).slice(-4000)));
  child.stderr.on('data', (d) => (out = (out + d).slice(-4000)));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${out}`);
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.write('PING\r\n');
        c.once('data', (d) => {
          c.destroy();
          resolve(String(d).startsWith('+PONG'));
        });
      });
      c.once('error', () => resolve(false));
    });
    if (up) return { child, url: `redis://127.0.0.1:${port}` };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer within 10 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One origin in front of the nodes: WebSocket upgrades to `/b/ws` go to B's `/ws`, `/c/ws`
 * to C's, everything else to A. `cut('b')` resets every connection to B (no close frame);
 * `refuse('b')` fails the new ones.
 */
async function startFront(ports) {
  const tunnels = { a: new Set(), b: new Set(), c: new Set() };
  const refused = new Set();
  const server = http.createServer((req, res) => {
    const to = { host: '127.0.0.1', port: ports.a, path: req.url, method: req.method, headers: req.headers };
    const up = http.request(to, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, client, head) => {
    const routed = /^\/([bc])\//.exec(req.url);
    const node = routed ? routed[1] : 'a';
    if (refused.has(node)) {
      client.destroy(); // as a node that is gone: the connection fails
      return;
    }
    const path = routed ? req.url.slice(2) : req.url;
    const upstream = net.connect(ports[node], '127.0.0.1');
    const pair = { client, upstream };
    tunnels[node].add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      tunnels[node].delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.once('connect', () => {
      let lines = `${req.method} ${path} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      upstream.write(`${lines}\r\n`);
      if (head.length) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    base: `http://127.0.0.1:${port}/`,
    ws: (node) => `ws://127.0.0.1:${port}${node === 'a' ? '' : `/${node}`}/ws`,
    /** Fails every new connection to `node` (on = false: lets them through again). */
    refuse(node, on = true) {
      if (on) refused.add(node);
      else refused.delete(node);
    },
    cut(node) {
      for (const { client, upstream } of tunnels[node]) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      tunnels[node].clear();
    },
    close: () =>
      new Promise((resolve) => {
        for (const set of Object.values(tunnels)) {
          for (const { client, upstream } of set) {
            client.destroy();
            upstream.destroy();
          }
        }
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}

/** A Prometheus counter of a node. */
async function metric(base, name) {
  const text = await (await fetch(`${base}metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`no ${name} in ${base}metrics`);
  return Number(line.split(' ').at(-1));
}

const SUITE = 'cluster mode in headless Chromium: a page follows a redirect to the lobby on another node';
describe(SUITE, { skip: skipCluster, timeout: 90_000 }, () => {
  let redis;
  let nodeA;
  let nodeB;
  let front;
  let browser;
  let onA;
  let onB;
  const pageErrors = [];
  const ports = { a: 0, b: 0, c: 0 };
  let nodeC;

  // The page's own Content-Security-Policy applies (it lists the nodes' origin: the front).
  // Chromium logs each connection that fails (B refused, the cut): expected here.
  const openPage = (query, name) =>
    openPlayer(browser, front.base + query, name, pageErrors, { width: 1100, csp: true, expected: /WebSocket connection to .* failed/ });

  before(async () => {
    redis = await startRedis();
    // The front first: the nodes' public URLs are its addresses.
    front = await startFront(ports);
    const common = ['--redis-url', redis.url, '--cluster-lease', '1500ms'];
    common.push('--max-lobbies-per-ip', '1000', '--lobby-creates-per-minute', '10000');
    nodeA = await startServer([...common, '--node-id', 'node-a', '--public-url', front.ws('a')]);
    nodeB = await startServer([...common, '--node-id', 'node-b', '--public-url', front.ws('b')]);
    // C's reservations expire at once: a player it sends to B finds its seat gone.
    nodeC = await startServer([...common, '--node-id', 'node-c', '--public-url', front.ws('c'), '--reservation-ttl', '1ms']);
    ports.a = nodeA.port;
    ports.b = nodeB.port;
    ports.c = nodeC.port;
    await checkEmbedded(nodeA.base);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await front?.close().catch(() => {});
    for (const p of [nodeA?.child, nodeB?.child, nodeC?.child, redis?.child]) {
      if (p && p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await exited(p).catch(() => {});
      }
    }
  });

  test("B's page creates a lobby; A's page finds it in A's list, joins, is redirected to B", async () => {
    // Playwright evaluates string predicates with eval, which the page's policy forbids:
    // these pages run with the real policy, so they are read through functions.
    onB = await openPage(`?server=${encodeURIComponent(front.ws('b'))}`, 'bob');
    await onB.fill('#create-name', 'cluster arena');
    await onB.fill('#create-max', '4');
    await onB.click('#create');
    await onB.waitForFunction(() => window.__ticksync.screen === 'game' && window.__ticksync.lobby?.name === 'cluster arena');
    const lobbyId = await onB.evaluate(() => window.__ticksync.lobby.id);

    onA = await openPage('', 'alice');
    const row = onA.locator('#lobby-list li', { hasText: 'cluster arena' });
    await row.waitFor(WAIT); // A lists B's lobby
    const redirectsBefore = await metric(nodeA.base, 'ticksync_cluster_redirects_total');
    await row.locator('button').click();
    await onA.waitForFunction(() => window.__ticksync.screen === 'game' && window.__ticksync.name === 'alice');
    assert.equal(await onA.evaluate(() => window.__ticksync.lobby.id), lobbyId, 'the lobby on B');
    assert.equal(await onA.evaluate(() => window.__ticksync.lobby.game), 'arena');
    assert.equal(await onA.evaluate(() => window.__ticksync.game.known), true, 'its game module, as a direct join');
    const redirects = await metric(nodeA.base, 'ticksync_cluster_redirects_total');
    assert.equal(redirects, redirectsBefore + 1, 'A answered with a Redirect');
    await onA.waitForFunction(() => window.__ticksync.players.length === 2 && window.__ticksync.entities.length === 2);
    await onB.waitForFunction(() => window.__ticksync.players.length === 2 && window.__ticksync.entities.length === 2);
    assert.deepEqual((await onB.evaluate(() => window.__ticksync.players.map((p) => p.name))).sort(), ['alice', 'bob']);
    // Net stats on the new connection: snapshots arriving, a round-trip time measured.
    await onA.waitForFunction(() => window.__ticksync.stats.snapshotsPerSec > 10 && window.__ticksync.rttMs !== null);
    // Alice is B's player now, not A's.
    const text = await (await fetch(`${nodeB.base}metrics`)).text();
    assert.match(text, /^ticksync_players(\{[^}]*\})? 2$/m, 'both players are on B');
  });

  for (const [mover, watcher, moverName] of [
    [() => onA, () => onB, 'alice'],
    [() => onB, () => onA, 'bob'],
  ]) {
    test(`${moverName} holds D: the other page sees ${moverName}'s entity move right`, async () => {
      const m = mover();
      const w = watcher();
      const id = await m.evaluate(() => window.__ticksync.myEntity);
      const x0 = await w.evaluate((id) => window.__ticksync.entities.find((e) => e.id === id).x, id);
      await m.keyboard.down('KeyD');
      await m.waitForTimeout(800);
      await m.keyboard.up('KeyD');
      await w.waitForFunction(
        ([id, x0]) => {
          const e = window.__ticksync.entities.find((e) => e.id === id);
          return e && e.x > x0 + 80;
        },
        [id, x0],
        WAIT,
      );
    });
  }

  test("B's connections cut: both pages resume on B, in the same seats", async () => {
    const seats = [await onA.evaluate(() => window.__ticksync.seat), await onB.evaluate(() => window.__ticksync.seat)];
    const lobbyId = await onA.evaluate(() => window.__ticksync.lobby.id);
    const resumesBefore = await metric(nodeA.base, 'ticksync_cluster_resume_redirects_total');
    front.cut('b');
    for (const page of [onA, onB]) {
      await page.waitForFunction(() => window.__ticksync.state === 'reconnecting' || window.__ticksync.close !== null);
    }
    for (const [i, page] of [onA, onB].entries()) {
      const resumed = () => window.__ticksync.state === 'online' && window.__ticksync.inputSeq > 5;
      await page.waitForFunction(resumed, null, { timeout: 10_000 });
      await page.waitForFunction(() => window.__ticksync.stats.snapshotsPerSec > 10 && window.__ticksync.rttMs !== null);
      assert.equal(await page.evaluate(() => window.__ticksync.lobby?.id), lobbyId);
      assert.equal(await page.evaluate(() => window.__ticksync.seat), seats[i]);
    }
    assert.equal(
      await metric(nodeA.base, 'ticksync_cluster_resume_redirects_total'),
      resumesBefore,
      'alice resumed on B directly, not through A',
    );
    await onB.waitForFunction(() => window.__ticksync.players.length === 2);
    assert.deepEqual(pageErrors, []);
  });

  test("B unreachable: a page on A that is redirected there says so and is back in A's lobby list", async () => {
    front.refuse('b');
    try {
      const carol = await openPage('', 'carol');
      const row = carol.locator('#lobby-list li', { hasText: 'cluster arena' });
      await row.waitFor(WAIT);
      const redirectsBefore = await metric(nodeA.base, 'ticksync_cluster_redirects_total');
      await row.locator('button').click();
      const toast = carol.locator('#toasts .toast.error', { hasText: "Could not reach the lobby's server" });
      await toast.waitFor(WAIT);
      assert.match(await toast.textContent(), /back to the lobby list/);
      assert.equal(await metric(nodeA.base, 'ticksync_cluster_redirects_total'), redirectsBefore + 1, 'it was redirected');
      // Home again: online on A as a new player, in the lobby list, which shows B's lobby.
      await carol.waitForFunction(() => window.__ticksync.state === 'online' && window.__ticksync.screen === 'lobby');
      await row.waitFor(WAIT);
      assert.equal(await carol.evaluate(() => window.__ticksync.lobby), null);
      assert.equal(await onB.evaluate(() => window.__ticksync.players.length), 2, 'nobody else joined');
      await carol.context().close();
    } finally {
      front.refuse('b', false);
    }
    assert.deepEqual(pageErrors, []);
  });

  test("ReservationFailed from B: a page on C says so and is back in C's lobby list", async () => {
    const dave = await openPage(`?server=${encodeURIComponent(front.ws('c'))}`, 'dave');
    const row = dave.locator('#lobby-list li', { hasText: 'cluster arena' });
    await row.waitFor(WAIT); // C lists B's lobby too
    const redirectsBefore = await metric(nodeC.base, 'ticksync_cluster_redirects_total');
    await row.locator('button').click();
    const toast = dave.locator('#toasts .toast.error', { hasText: 'Could not join the lobby on its server' });
    await toast.waitFor(WAIT);
    assert.match(await toast.textContent(), /reservation refused: .*\. Back to the lobby list\./);
    assert.equal(await metric(nodeC.base, 'ticksync_cluster_redirects_total'), redirectsBefore + 1, 'C redirected it');
    await dave.waitForFunction(() => window.__ticksync.state === 'online' && window.__ticksync.screen === 'lobby');
    await row.waitFor(WAIT);
    assert.equal(await dave.evaluate(() => window.__ticksync.lobby), null);
    assert.equal(await onB.evaluate(() => window.__ticksync.players.length), 2, 'nobody else joined');
    await dave.context().close();
    assert.deepEqual(pageErrors, []);
  });
});

// No proxy: two nodes on their own ports, so on different origins, as in the README's
// "three nodes on one machine" and in every real deployment. Each page's CSP lists the
// cluster's live nodes (their public URLs' origins, here the default
// ws://127.0.0.1:<port>), so a page on D's origin follows a Redirect to E's; an address
// that is not a node of the cluster stays refused.
/** Polls `check` (sync or async) every 50 ms until it is true; fails after `ms`. */
async function eventually(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SUITE_ORIGINS = 'cluster mode in headless Chromium: a redirect to a node on another origin, no proxy';
describe(SUITE_ORIGINS, { skip: skipCluster, timeout: 60_000 }, () => {
  let redis;
  let nodeD;
  let nodeE;
  let browser;
  const pageErrors = [];
  const violations = [];

  async function openPage(base, query, name) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT.timeout);
    page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) violations.push(`${name}: ${m.text()}`);
      else if (m.type() === 'error') pageErrors.push(`${name} console: ${m.text()}`);
    });
    await page.goto(base + query);
    return page;
  }

  before(async () => {
    redis = await startRedis();
    // No --public-url: each node's default, ws://<its bound address>/ws.
    const common = ['--redis-url', redis.url, '--cluster-lease', '1500ms', '--redis-prefix', 'origins:'];
    nodeD = await startServer([...common, '--node-id', 'node-d']);
    nodeE = await startServer([...common, '--node-id', 'node-e']);
    await checkEmbedded(nodeD.base);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const p of [nodeD?.child, nodeE?.child, redis?.child]) {
      if (p && p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await exited(p).catch(() => {});
      }
    }
  });

  test("D's and E's CSPs list both nodes' origins, nothing else", async () => {
    const connectSrc = async (base) => {
      const policy = (await fetch(base)).headers.get('content-security-policy');
      const directive = policy.split(';').map((d) => d.trim()).find((d) => d.startsWith('connect-src '));
      return directive.split(/\s+/).slice(1).sort();
    };
    const want = ["'self'", `ws://127.0.0.1:${nodeD.port}`, `ws://127.0.0.1:${nodeE.port}`].sort();
    for (const node of [nodeD, nodeE]) {
      await eventually(
        async () => JSON.stringify(await connectSrc(node.base)) === JSON.stringify(want),
        5_000,
        `${node.base}'s connect-src is ${want}`,
      );
    }
  });

  test("a page on D's origin joins E's lobby: redirected to E's origin, it plays there", async () => {
    const eWs = `ws://127.0.0.1:${nodeE.port}/ws`;
    const bob = await openPage(nodeE.base, '', 'bob');
    await bob.locator('#status[data-state="online"]').waitFor(WAIT);
    await bob.fill('#name', 'bob');
    await bob.fill('#create-name', 'far arena');
    await bob.fill('#create-max', '4');
    await bob.click('#create');
    await bob.waitForFunction(() => window.__ticksync.screen === 'game' && window.__ticksync.lobby?.name === 'far arena');
    const lobbyId = await bob.evaluate(() => window.__ticksync.lobby.id);

    const alice = await openPage(nodeD.base, '', 'alice');
    await alice.locator('#status[data-state="online"]').waitFor(WAIT);
    await alice.fill('#name', 'alice');
    assert.equal(await alice.evaluate(() => window.__ticksync.url), `ws://127.0.0.1:${nodeD.port}/ws`, 'home: D');
    const row = alice.locator('#lobby-list li', { hasText: 'far arena' });
    await row.waitFor(WAIT);
    await row.locator('button').click();
    await alice.waitForFunction(() => window.__ticksync.screen === 'game' && window.__ticksync.name === 'alice');
    assert.equal(await alice.evaluate(() => window.__ticksync.lobby.id), lobbyId, 'the lobby on E');
    assert.equal(await alice.evaluate(() => window.__ticksync.url), eWs, 'connected to E now');
    assert.equal(await alice.evaluate(() => window.__ticksync.homeUrl), `ws://127.0.0.1:${nodeD.port}/ws`);
    assert.equal(new URL(alice.url()).origin, new URL(nodeD.base).origin, "the page is still on D's origin");
    await alice.waitForFunction(() => window.__ticksync.stats.snapshotsPerSec > 10 && window.__ticksync.rttMs !== null);
    await bob.waitForFunction(() => window.__ticksync.players.length === 2 && window.__ticksync.entities.length === 2);
    // Alice plays on E: bob's page sees her entity move right.
    const id = await alice.evaluate(() => window.__ticksync.myEntity);
    const x0 = await bob.evaluate((id) => window.__ticksync.entities.find((e) => e.id === id).x, id);
    await alice.keyboard.down('KeyD');
    await alice.waitForTimeout(800);
    await alice.keyboard.up('KeyD');
    await bob.waitForFunction(
      ([id, x0]) => {
        const e = window.__ticksync.entities.find((e) => e.id === id);
        return e && e.x > x0 + 80;
      },
      [id, x0],
      WAIT,
    );
    const text = await (await fetch(`${nodeE.base}metrics`)).text();
    assert.match(text, /^ticksync_players(\{[^}]*\})? 2$/m, 'both players are on E');
    assert.deepEqual(violations, []);
    assert.deepEqual(pageErrors, []);
    await alice.context().close();
    await bob.context().close();
  });

  test("?server= still cannot point D's page at a server outside the cluster", async () => {
    const stranger = await freePort();
    const page = await openPage(nodeD.base, `?server=127.0.0.1:${stranger}`, 'mallory');
    const refused = () => violations.some((v) => v.includes(`127.0.0.1:${stranger}`) && /connect-src/.test(v));
    await eventually(refused, 5_000, 'the CSP refuses the stranger');
    assert.notEqual(await page.locator('#status').getAttribute('data-state'), 'online');
    await page.context().close();
    // E's address is a node of the cluster: allowed.
    violations.length = 0;
    const onE = await openPage(nodeD.base, `?server=127.0.0.1:${nodeE.port}`, 'erin');
    await onE.locator('#status[data-state="online"]').waitFor(WAIT);
    assert.deepEqual(violations, []);
    await onE.context().close();
  });
});
