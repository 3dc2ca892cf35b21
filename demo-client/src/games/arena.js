// arena (tag): the default game. One player is "it": touch someone to pass it on and
// score. The movement rule of server/src/arena.rs in f32: speed 200 in the input
// direction (longer than 1 counts as 1), then clamped to the walls (radius 20 inside
// the 1000 x 1000 arena). Pushing players apart is server-only: corrections handle it.

import { clampDirection } from '../prediction.js';

const f32 = Math.fround;
export const SIZE = 1000;
export const SPEED = 200;
export const RADIUS = 20;

/** One arena tick of the controlled player: `state.pos`, `input.dir`, `dt` seconds. */
export function arenaStep(state, input, dt) {
  const d = input.dir ?? { x: 0, y: 0 };
  const dir = clampDirection(d.x, d.y);
  const step = f32(dt);
  const hi = f32(SIZE - RADIUS);
  const x = f32(state.pos.x + f32(f32(dir.x * SPEED) * step));
  const y = f32(state.pos.y + f32(f32(dir.y * SPEED) * step));
  return { ...state, pos: { x: Math.min(Math.max(x, RADIUS), hi), y: Math.min(Math.max(y, RADIUS), hi) } };
}

export default {
  name: 'arena',
  title: 'Arena',
  blurb: 'A game of tag: one player is it; touch someone to pass it on and score.',
  hint: 'Move with WASD or the arrows',
  controlled: 'player',
  predict: arenaStep,
  extrapolate: { pos: 'vel' },
  radius: { player: RADIUS },
  score: 'score',
  controls: { dir: 'move' },
  style: (e) => (e.values.it ? { ring: '#ff4848', badge: 'IT', glow: true } : {}),
};
