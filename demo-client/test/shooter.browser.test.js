// The shooter end to end in real headless Chromium against the real server run with
// `--game shooter`: two pages join one lobby through the UI; the page learns the game
// from the lobby's schema (its title, controls and prediction); A aims at B with the
// mouse and fires (clicks: each press fires once, the button's press counter carries
// it); B's health drops on B's page, and the kill event shows on both pages (their
// event lists and the feed on screen).
//
// Needs what e2e.browser.test.js needs (TICKSYNC_SERVER_BIN, chromium); skipped with
// TICKSYNC_SKIP_BROWSER=1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, WAIT, checkEmbedded, killServer, openPlayer, skip, startServer, state, until } from './support/browser.js';

describe('the shooter in headless Chromium', { skip, timeout: 90_000 }, () => {
  let server;
  let browser;
  const pageErrors = [];

  const openPage = (name) => openPlayer(browser, server.base, name, pageErrors);

  before(async () => {
    server = await startServer(['--game', 'shooter']);
    await checkEmbedded(server.base);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await killServer(server);
  });

  test('A aims at B and fires: B loses health, and both pages show the kill', async () => {
    const a = await openPage('alice');
    await a.fill('#create-name', 'duel');
    await a.fill('#create-max', '2');
    await a.click('#create');
    await until(a, "t.screen === 'game' && t.game && t.game.name === 'shooter'");
    assert.deepEqual(await state(a, 't.game'), { name: 'shooter', title: 'Shooter', known: true, predicts: true, aims: true });
    // The title follows on the page's next render.
    await until(a, "/Shooter/.test(document.title)");

    const b = await openPage('bob');
    const row = b.locator('#lobby-list li', { hasText: 'duel' });
    await row.waitFor(WAIT);
    await row.locator('button').click();
    await until(b, "t.screen === 'game' && t.game.name === 'shooter'");
    const ships = "t.entities.filter((e) => e.kindName.toLowerCase() === 'ship' && e.values.alive).length === 2";
    await until(a, ships, 10_000);
    await until(b, ships, 10_000);
    // Ammo is private: each page has its own.
    assert.equal(typeof (await state(a, 't.privateState.ammo')), 'number');
    // Two players: the match runs (damage counts only then).
    await until(a, 't.lobbyState.phase === 1', 10_000);

    // B records the lowest health its own ship shows, every frame.
    await b.evaluate(() => {
      const t = window.__ticksync;
      window.__lowest = 100;
      const watch = () => {
        const me = t.entities.find((e) => e.me);
        if (me && me.values.alive) window.__lowest = Math.min(window.__lowest, me.values.health);
        requestAnimationFrame(watch);
      };
      requestAnimationFrame(watch);
    });
    const bSeat = await state(b, 't.seat');
    const canvas = await a.locator('#view').boundingBox();
    // Where B's ship is on A's screen: the page's layout (world -> CSS pixels).
    const target = async () =>
      a.evaluate((seat) => {
        const t = window.__ticksync;
        const e = t.entities.find((x) => x.controlledBy === seat && x.kindName.toLowerCase() === 'ship');
        const l = t.layout;
        return e && l ? { x: l.ox + e.x * l.scale, y: l.oy + e.y * l.scale } : null;
      }, bSeat);
    let shots = 0;
    for (let i = 0; i < 16; i++) {
      const p = await target();
      assert.ok(p, "B's ship on A's screen");
      await a.mouse.move(canvas.x + p.x, canvas.y + p.y, { steps: 2 });
      await a.waitForTimeout(60);
      await a.mouse.down();
      await a.mouse.up();
      shots++;
      await a.waitForTimeout(200);
      if (await state(a, "t.events.some((e) => e.type.toLowerCase() === 'kill')")) break;
    }
    const kill = "t.events.some((e) => e.type.toLowerCase() === 'kill')";
    await until(a, kill, 10_000);
    await until(b, kill, 10_000);
    const event = await state(b, "t.events.find((e) => e.type.toLowerCase() === 'kill')");
    assert.equal(event.values.victim, bSeat);
    assert.equal(event.values.killer, await state(a, 't.seat'));
    assert.ok((await b.evaluate(() => window.__lowest)) < 100, "B's page showed its health drop");
    assert.ok(shots >= 4, `${shots} shots`);
    // On screen too: the feed says who destroyed whom, on both pages.
    for (const page of [a, b]) {
      await page.locator('#feed li', { hasText: 'alice destroyed bob' }).waitFor(WAIT);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    await a.screenshot({ path: path.join(ARTIFACTS, 'shooter.png') });
    assert.equal(pageErrors.length, 0, pageErrors.join(' | '));
  });
});
