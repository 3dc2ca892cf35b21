// shooter (server/src/games/shooter.rs): ships fly with momentum towards the input
// direction and aim with the mouse; the fire button shoots (a tap between two ticks
// still fires: the button's press counter), a hit costs 25 health, a ship at 0 dies and
// respawns; ammo is private. The client predicts its own ship with `move_ship`.

import { clampDirection } from '../prediction.js';

const f32 = Math.fround;
export const WORLD_SIZE = 1200;
export const SHIP_RADIUS = 16;
export const SPEED = 240;
export const ACCEL = 1200;

/**
 * `move_ship` in f32: the velocity moves towards dir (capped at 1) × SPEED by at most
 * ACCEL × dt, the ship moves by the new velocity, a wall stops that axis.
 */
export function moveShip(pos, vel, dirIn, dt) {
  const dir = clampDirection(dirIn.x, dirIn.y);
  const t = f32(dt);
  const tx = f32(dir.x * SPEED);
  const ty = f32(dir.y * SPEED);
  const dx = f32(tx - vel.x);
  const dy = f32(ty - vel.y);
  const step = f32(ACCEL * t);
  const dist = f32(Math.sqrt(f32(f32(dx * dx) + f32(dy * dy))));
  let vx;
  let vy;
  if (dist <= step) {
    vx = tx;
    vy = ty;
  } else {
    const k = f32(step / dist);
    vx = f32(vel.x + f32(dx * k));
    vy = f32(vel.y + f32(dy * k));
  }
  let x = f32(pos.x + f32(vx * t));
  let y = f32(pos.y + f32(vy * t));
  const lo = SHIP_RADIUS;
  const hi = f32(WORLD_SIZE - SHIP_RADIUS);
  if (x < lo || x > hi) {
    x = Math.min(Math.max(x, lo), hi);
    vx = 0;
  }
  if (y < lo || y > hi) {
    y = Math.min(Math.max(y, lo), hi);
    vy = 0;
  }
  return { pos: { x, y }, vel: { x: vx, y: vy } };
}

/** The controlled ship's tick: moves while alive; the aim follows the input. */
export function shipStep(state, input, dt) {
  if (state.alive === false) return state;
  const { pos, vel } = moveShip(state.pos, state.vel, input.dir ?? { x: 0, y: 0 }, dt);
  return { ...state, pos, vel, aim: input.aim ?? state.aim };
}

export default {
  name: 'shooter',
  title: 'Shooter',
  blurb: 'Fly, aim with the mouse and shoot: four hits and a ship is gone.',
  hint: 'Fly with WASD · aim with the mouse · click or Space to fire · R to reload',
  controlled: 'ship',
  predict: shipStep,
  extrapolate: { pos: 'vel' },
  radius: { ship: SHIP_RADIUS, bullet: 3 },
  score: 'kills',
  controls: { dir: 'move', aim: 'aim', fire: 'primary', reload: 'secondary' },
  describeEvent(event, nameOf) {
    const v = event.values;
    const type = event.type.toLowerCase().replace(/_/g, '');
    if (type === 'kill') return `${nameOf(v.killer)} destroyed ${nameOf(v.victim)}`;
    if (type === 'hit') return `${nameOf(v.by)} hit ${nameOf(v.target)} (${v.health} left)`;
    if (type === 'matchstarted') return 'The match started';
    return null;
  },
  style: (e) => (e.values.alive === false ? { hidden: true } : {}),
};
