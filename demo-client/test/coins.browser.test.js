// The coins example (server/examples/coins/) in real headless Chromium: a game the demo
// client has no module for plays from its schema alone. Before joining, the lobby screen
// is titled by GET /api/game; A creates a lobby with a password and a target; B is
// refused without the join option and seated with it; A steers its runner with the
// keyboard to the nearest coin and collects it: the Collected event is in the feed of
// both pages, the private purse counts it on A's page only; key 1 (the Drop message's
// action) drops it again.
//
// Needs chromium and the example built (`cargo build -p ticksync-server --example
// coins`; TICKSYNC_COINS_BIN to use another path); skipped with TICKSYNC_SKIP_BROWSER=1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, WAIT, checkEmbedded, killServer, openPlayer, skip, startServer, state, until } from './support/browser.js';

const COINS_BIN =
  process.env.TICKSYNC_COINS_BIN ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../target/debug/examples/coins');

describe('the coins example in headless Chromium', { skip, timeout: 90_000 }, () => {
  let server;
  let browser;
  const pageErrors = [];

  const openPage = (name) => openPlayer(browser, server.base, name, pageErrors);

  before(async () => {
    server = await startServer([], COINS_BIN);
    await checkEmbedded(server.base);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await killServer(server);
  });

  test('an author\'s game plays without a client module: refused and seated joins, a coin collected, a drop', async () => {
    const a = await openPage('alice');
    // Named before joining, by the server.
    await until(a, "t.serverGame && t.serverGame.game === 'coins'");
    assert.equal(await a.title(), 'ticksync Coins');
    assert.match(await a.locator('#lobby-heading').innerText(), /^Coins/);
    assert.match(await a.locator('#server-game').innerText(), /This server plays Coins/);

    await a.fill('#create-name', 'gold rush');
    await a.fill('#create-max', '4');
    await a.fill('#create-options', 'password=gold, target=3');
    await a.click('#create');
    await until(a, "t.screen === 'game' && t.game && t.game.name === 'coins'");
    assert.deepEqual(await state(a, 't.game'), { name: 'coins', title: 'coins', known: false, predicts: false, aims: false });
    assert.equal(await a.title(), 'ticksync Coins');
    // /api/game's hash is the one Joined carried.
    assert.equal(await state(a, 't.lobby.schemaHash'), await state(a, 't.serverGame.schema_hash'));
    await until(a, "t.lobbyState.target === 3 && t.privateState.carried === 0");
    await until(a, "t.entities.filter((e) => e.kindName === 'Coin').length === 6");

    const b = await openPage('bob');
    const row = b.locator('#lobby-list li', { hasText: 'gold rush' });
    await row.waitFor(WAIT);
    await row.locator('button').click();
    await until(b, "t.lastError && t.lastError.message.includes('password')");
    assert.equal(await state(b, 't.screen'), 'lobby');
    await b.fill('#join-options', 'password=gold');
    await row.locator('button').click();
    await until(b, "t.screen === 'game' && t.game.name === 'coins'");
    await until(a, "t.entities.filter((e) => e.kindName === 'Runner').length === 2");

    // A runs to the nearest coin: left/right until above or below it, then up/down.
    const nearest = () =>
      a.evaluate(() => {
        const t = window.__ticksync;
        const me = t.entities.find((e) => e.me);
        const coins = t.entities.filter((e) => e.kindName === 'Coin');
        if (!me || coins.length === 0) return null;
        const d = (c) => Math.hypot(c.x - me.x, c.y - me.y);
        const c = coins.reduce((best, x) => (d(x) < d(best) ? x : best));
        return { dx: c.x - me.x, dy: c.y - me.y };
      });
    const collected = "t.events.some((e) => e.type === 'Collected')";
    for (let i = 0; i < 80 && !(await state(a, collected)); i++) {
      const n = await nearest();
      assert.ok(n, 'a runner and coins on A\'s page');
      const key = Math.abs(n.dx) > 10 ? (n.dx > 0 ? 'KeyD' : 'KeyA') : n.dy > 0 ? 'KeyS' : 'KeyW';
      const far = Math.abs(n.dx) > 10 ? Math.abs(n.dx) : Math.abs(n.dy);
      await a.keyboard.down(key);
      // 180 units/s: hold for about the distance, at most half a second at a time.
      await a.waitForTimeout(Math.min(500, Math.max(30, (far / 180) * 1000)));
      await a.keyboard.up(key);
    }
    await until(a, collected, 10_000);
    await until(b, collected, 10_000);
    const event = await state(b, "t.events.find((e) => e.type === 'Collected')");
    assert.equal(event.values.by, await state(a, 't.seat'));
    for (const page of [a, b]) {
      await page.locator('#feed li', { hasText: 'Collected: by alice' }).waitFor(WAIT);
    }
    await until(a, 't.privateState.carried === 1');
    assert.equal(await state(b, 't.privateState.carried'), 0, "A's purse is A's alone");
    await a.locator('#game-state', { hasText: 'carried 1' }).waitFor(WAIT);

    // The Drop message: a button and the key 1.
    assert.equal(await a.locator('#actions button').innerText(), '1 Drop');
    await a.keyboard.press('Digit1');
    await until(a, 't.privateState.carried === 0');

    mkdirSync(ARTIFACTS, { recursive: true });
    await a.screenshot({ path: path.join(ARTIFACTS, 'coins.png') });
    assert.equal(pageErrors.length, 0, pageErrors.join(' | '));
  });
});
