// Keyboard controls: WASD and the arrow keys (by physical key, so ZQSD on AZERTY works).

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

function typingIn(target) {
  return (
    target instanceof Element &&
    (target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]') !== null)
  );
}

/** Tracks the held movement keys on `target` (the window by default). */
export class Keyboard {
  constructor(target = window) {
    this.target = target;
    this.held = new Map(); // key code -> direction
    this.onDown = (e) => {
      const dir = KEYS[e.code];
      if (!dir || typingIn(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      this.held.set(e.code, dir);
      e.preventDefault();
    };
    this.onUp = (e) => {
      if (this.held.delete(e.code)) e.preventDefault();
    };
    this.onBlur = () => this.held.clear();
    target.addEventListener('keydown', this.onDown);
    target.addEventListener('keyup', this.onUp);
    target.addEventListener('blur', this.onBlur);
  }

  /** The current direction, see directionOf. */
  direction() {
    return directionOf(new Set(this.held.values()));
  }

  dispose() {
    this.target.removeEventListener('keydown', this.onDown);
    this.target.removeEventListener('keyup', this.onUp);
    this.target.removeEventListener('blur', this.onBlur);
  }
}
