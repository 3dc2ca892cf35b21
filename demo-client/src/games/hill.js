// hill (king of the hill, server/examples/hill.rs): players drift with momentum (the
// input is an acceleration), dragged and capped at 250 units/s inside a 600 x 600 field;
// standing on the central hill scores. Its movement rule in f32, as the server's.

import { clampDirection } from '../prediction.js';

const f32 = Math.fround;
export const SIZE = 600;
export const ACCEL = 400;
export const MAX_SPEED = 250;
export const DRAG = 0.9;
export const HILL_RADIUS = 60;
/** Drawing radius of a player (the rules have none: a player is a point). */
export const RADIUS = 16;

// glam's Vec2::clamp_length_max in f32: `max * (v / |v|)` when longer than max.
function clampLength(x, y, max) {
  const lengthSq = f32(f32(x * x) + f32(y * y));
  if (lengthSq > f32(max * max)) {
    const length = f32(Math.sqrt(lengthSq));
    return { x: f32(max * f32(x / length)), y: f32(max * f32(y / length)) };
  }
  return { x, y };
}

/** One hill tick: vel = ((vel + dir × ACCEL × dt) × DRAG^(dt × 10)).clamp_length_max(MAX_SPEED), pos += vel × dt. */
export function hillStep(state, input, dt) {
  const d = input.dir ?? { x: 0, y: 0 };
  const dir = clampDirection(d.x, d.y);
  const t = f32(dt);
  const drag = f32(Math.pow(DRAG, f32(t * 10)));
  const ax = f32(f32(dir.x * ACCEL) * t);
  const ay = f32(f32(dir.y * ACCEL) * t);
  const v = clampLength(f32(f32(state.vel.x + ax) * drag), f32(f32(state.vel.y + ay) * drag), MAX_SPEED);
  const x = f32(state.pos.x + f32(v.x * t));
  const y = f32(state.pos.y + f32(v.y * t));
  return { ...state, vel: v, pos: { x: Math.min(Math.max(x, 0), SIZE), y: Math.min(Math.max(y, 0), SIZE) } };
}

export default {
  name: 'hill',
  title: 'King of the hill',
  blurb: 'Stand on the hill in the middle to score; you drift, so steer early.',
  hint: 'Accelerate with WASD or the arrows',
  controlled: 'player',
  predict: hillStep,
  extrapolate: { pos: 'vel' },
  radius: { player: RADIUS },
  score: 'score',
  controls: { dir: 'move' },
  backdrop: { circle: { x: SIZE / 2, y: SIZE / 2, r: HILL_RADIUS } },
  style: (e) => (e.values.on_hill ? { ring: '#ffd166' } : {}),
};
