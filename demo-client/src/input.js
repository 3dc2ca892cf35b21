// Controls: WASD and the arrow keys (by physical key, so ZQSD on AZERTY works), and a
// drag joystick for touch screens (and mice): press anywhere on the arena and drag.

const KEYS = {
  KeyW: 'up',
  ArrowUp: 'up',
  KeyS: 'down',
  ArrowDown: 'down',
  KeyA: 'left',
  ArrowLeft: 'left',
  KeyD: 'right',
  ArrowRight: 'right',
};

/** Drag distance, in CSS pixels, for full speed. */
export const JOYSTICK_RADIUS = 56;
/** Below this share of the radius the joystick reads as centred. */
const DEAD_ZONE = 0.15;

/**
 * The movement direction for a set of held directions ('up', 'down', 'left', 'right'):
 * x to the right, y downwards (as in the protocol), length 1 or 0 (diagonals normalized).
 */
export function directionOf(held) {
  const x = (held.has('right') ? 1 : 0) - (held.has('left') ? 1 : 0);
  const y = (held.has('down') ? 1 : 0) - (held.has('up') ? 1 : 0);
  if (x === 0 && y === 0) return { x: 0, y: 0 };
  const len = Math.hypot(x, y);
  return { x: x / len, y: y / len };
}

/**
 * The direction of a drag from `origin` to `point` (CSS pixels): length up to 1 at
 * `radius` pixels, 0 inside the dead zone.
 */
export function joystickDirection(origin, point, radius = JOYSTICK_RADIUS) {
  const dx = (point.x - origin.x) / radius;
  const dy = (point.y - origin.y) / radius;
  const len = Math.hypot(dx, dy);
  if (len < DEAD_ZONE) return { x: 0, y: 0 };
  const k = len > 1 ? 1 / len : 1;
  return { x: dx * k, y: dy * k };
}

function typingIn(target) {
  return (
    typeof Element !== 'undefined' &&
    target instanceof Element &&
    target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]') !== null
  );
}

/**
 * Keyboard and drag controls. `direction()` is what is held right now (read every frame
 * to draw the own player); `sample()` is what to send for the next tick, and also
 * counts a key tapped and released between two ticks, which would otherwise be lost.
 */
export class Controls {
  constructor({ keyTarget = window, surface = null, enabled = () => true } = {}) {
    this.keyTarget = keyTarget;
    this.surface = surface;
    this.enabled = enabled;
    this.held = new Map(); // key code -> direction
    this.tapped = new Set(); // directions pressed since the last sample
    /** The active drag: {id, origin: {x, y}, point: {x, y}} in CSS pixels of the surface. */
    this.drag = null;

    this.onKeyDown = (e) => {
      const dir = KEYS[e.code];
      if (!dir || typingIn(e.target) || e.ctrlKey || e.metaKey || e.altKey || !this.enabled()) return;
      this.held.set(e.code, dir);
      this.tapped.add(dir);
      e.preventDefault();
    };
    this.onKeyUp = (e) => {
      if (this.held.delete(e.code)) e.preventDefault();
    };
    this.onBlur = () => {
      this.held.clear();
      this.drag = null;
    };
    keyTarget.addEventListener('keydown', this.onKeyDown);
    keyTarget.addEventListener('keyup', this.onKeyUp);
    keyTarget.addEventListener('blur', this.onBlur);

    if (surface) {
      const local = (e) => {
        const r = surface.getBoundingClientRect();
        return { x: e.clientX - r.left, y: e.clientY - r.top };
      };
      this.onPointerDown = (e) => {
        if (this.drag || (e.pointerType === 'mouse' && e.button !== 0) || !this.enabled()) return;
        const p = local(e);
        this.drag = { id: e.pointerId, origin: p, point: p };
        surface.setPointerCapture?.(e.pointerId);
        e.preventDefault();
      };
      this.onPointerMove = (e) => {
        if (this.drag?.id !== e.pointerId) return;
        this.drag = { ...this.drag, point: local(e) };
      };
      this.onPointerUp = (e) => {
        if (this.drag?.id === e.pointerId) this.drag = null;
      };
      surface.addEventListener('pointerdown', this.onPointerDown);
      surface.addEventListener('pointermove', this.onPointerMove);
      surface.addEventListener('pointerup', this.onPointerUp);
      surface.addEventListener('pointercancel', this.onPointerUp);
    }
  }

  /** The direction held now: the drag if there is one, else the keys. */
  direction() {
    if (this.drag) return joystickDirection(this.drag.origin, this.drag.point);
    return directionOf(new Set(this.held.values()));
  }

  /** The direction for the next tick (taps since the last sample included). */
  sample() {
    if (this.drag) {
      this.tapped.clear();
      return this.direction();
    }
    const dirs = new Set([...this.held.values(), ...this.tapped]);
    this.tapped.clear();
    return directionOf(dirs);
  }

  /** Forgets what is held (e.g. when leaving the game view). */
  release() {
    this.held.clear();
    this.tapped.clear();
    this.drag = null;
  }

  dispose() {
    this.keyTarget.removeEventListener('keydown', this.onKeyDown);
    this.keyTarget.removeEventListener('keyup', this.onKeyUp);
    this.keyTarget.removeEventListener('blur', this.onBlur);
    if (this.surface) {
      this.surface.removeEventListener('pointerdown', this.onPointerDown);
      this.surface.removeEventListener('pointermove', this.onPointerMove);
      this.surface.removeEventListener('pointerup', this.onPointerUp);
      this.surface.removeEventListener('pointercancel', this.onPointerUp);
    }
  }
}
