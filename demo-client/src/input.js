// Controls: WASD and the arrow keys (by physical key, so ZQSD on AZERTY works), a drag
// joystick for touch screens (and for mice in games without aim: press anywhere on the
// arena and drag), the pointer (aim) and buttons with press counters: `primary` (the
// left mouse button or Space) and `secondary` (R or the right mouse button). A button's
// counter counts every press, so a tap between two inputs still reaches the server
// (protocol 2's Button fields: held, and presses modulo 16).

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

/** Keys of the buttons. */
const BUTTON_KEYS = { Space: 'primary', KeyR: 'secondary' };

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
  constructor({ keyTarget = window, surface = null, enabled = () => true, mouseAims = () => false } = {}) {
    this.keyTarget = keyTarget;
    this.surface = surface;
    this.enabled = enabled;
    /** True: the mouse aims and fires (no mouse joystick). */
    this.mouseAims = mouseAims;
    this.held = new Map(); // key code -> direction
    this.tapped = new Set(); // directions pressed since the last sample
    /** The active drag: {id, origin: {x, y}, point: {x, y}} in CSS pixels of the surface. */
    this.drag = null;
    /** The mouse pointer over the surface, CSS pixels, or null. */
    this.pointer = null;
    /** Buttons: name -> {held: Set of sources holding it, presses}. */
    this.buttonState = new Map([
      ['primary', { held: new Set(), presses: 0 }],
      ['secondary', { held: new Set(), presses: 0 }],
    ]);

    this.onKeyDown = (e) => {
      if (typingIn(e.target) || e.ctrlKey || e.metaKey || e.altKey || !this.enabled()) return;
      const button = BUTTON_KEYS[e.code];
      if (button) {
        if (!e.repeat) this.press(button, e.code);
        e.preventDefault();
        return;
      }
      const dir = KEYS[e.code];
      if (!dir) return;
      this.held.set(e.code, dir);
      this.tapped.add(dir);
      e.preventDefault();
    };
    this.onKeyUp = (e) => {
      const button = BUTTON_KEYS[e.code];
      if (button) {
        this.releaseButton(button, e.code);
        e.preventDefault();
        return;
      }
      if (this.held.delete(e.code)) e.preventDefault();
    };
    this.onBlur = () => {
      this.held.clear();
      this.drag = null;
      for (const b of this.buttonState.values()) b.held.clear();
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
        if (!this.enabled()) return;
        if (e.pointerType === 'mouse' && this.mouseAims()) {
          this.pointer = local(e);
          const button = e.button === 0 ? 'primary' : e.button === 2 ? 'secondary' : null;
          if (button) this.press(button, `mouse${e.button}`);
          surface.setPointerCapture?.(e.pointerId);
          e.preventDefault();
          return;
        }
        if (this.drag || (e.pointerType === 'mouse' && e.button !== 0)) return;
        const p = local(e);
        this.drag = { id: e.pointerId, origin: p, point: p };
        surface.setPointerCapture?.(e.pointerId);
        e.preventDefault();
      };
      this.onPointerMove = (e) => {
        if (e.pointerType === 'mouse') this.pointer = local(e);
        if (this.drag?.id !== e.pointerId) return;
        this.drag = { ...this.drag, point: local(e) };
      };
      this.onPointerUp = (e) => {
        if (e.pointerType === 'mouse') {
          this.releaseButton('primary', 'mouse0');
          this.releaseButton('secondary', 'mouse2');
        }
        if (this.drag?.id === e.pointerId) this.drag = null;
      };
      this.onContextMenu = (e) => {
        if (this.mouseAims()) e.preventDefault();
      };
      surface.addEventListener('contextmenu', this.onContextMenu);
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

  /** Presses button `name` (held by `source`, a key code or mouse button): one more press. */
  press(name, source = 'api') {
    const b = this.buttonState.get(name);
    if (!b) return;
    b.held.add(source);
    b.presses = (b.presses + 1) & 15;
  }

  /** Lets go of button `name` as held by `source`. */
  releaseButton(name, source = 'api') {
    this.buttonState.get(name)?.held.delete(source);
  }

  /** Button `name` as an input's Button field: {held, presses (mod 16)}. */
  button(name) {
    const b = this.buttonState.get(name);
    return b ? { held: b.held.size > 0, presses: b.presses } : { held: false, presses: 0 };
  }

  /** Forgets what is held (e.g. when leaving the game view); press counters keep counting. */
  release() {
    this.held.clear();
    this.tapped.clear();
    this.drag = null;
    for (const b of this.buttonState.values()) b.held.clear();
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
      this.surface.removeEventListener('contextmenu', this.onContextMenu);
    }
  }
}
