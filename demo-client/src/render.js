// Draws the world on a full-window canvas: the field (its size from the schema's position
// range), every entity (positions in world units, as client.js `frame()` computes them:
// predicted for the own player, interpolated for the others) as a disc of the game's
// radius for its kind, its aim (an Angle field `aim`) and health (an Int field `health`)
// when it has them, names, the own player's ring, the game's style hints (a ring, a
// badge, a glow), the drag joystick and, with the net stats on, where the server last
// said the own player was. Device-pixel-ratio aware: the backing store follows the
// element size times devicePixelRatio.

import { JOYSTICK_RADIUS } from './input.js';

const MARGIN = 16; // CSS pixels left and right of the arena
const TOP = 60; // room for the top bar
const BOTTOM = 30; // room for the hint line
const GRID = 100; // world units between grid lines

/** A colour per entity kind (kind 0 first): coins, bullets, pickups told apart at a glance. */
export function kindColour(kind) {
  const hues = [48, 190, 130, 280, 20, 330, 90, 230];
  return `hsl(${hues[kind % hues.length]}, 75%, 58%)`;
}

/** A stable colour per entity id. */
export function colourOf(id) {
  // Golden-ratio steps over the hues from orange to pink: red stays the colour of "it".
  const t = (0.1 + id * 0.618034) % 1;
  return `hsl(${Math.round(30 + t * 300)} 70% 62%)`;
}

export class Renderer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.width = 0;
    this.height = 0;
    this.dpr = 1;
  }

  // Matches the backing store to the element size and the device pixel ratio.
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const width = this.canvas.clientWidth;
    const height = this.canvas.clientHeight;
    if (width !== this.width || height !== this.height || dpr !== this.dpr) {
      this.width = width;
      this.height = height;
      this.dpr = dpr;
      this.canvas.width = Math.max(1, Math.round(width * dpr));
      this.canvas.height = Math.max(1, Math.round(height * dpr));
    }
  }

  /**
   * Draws one frame. view: {
   *   world: {width, height} | null,          null: just the backdrop
   *   entities: [{id, name, x, y, me, controlledBy, values, style, radius}],   in world units
   *   backdrop: {circle: {x, y, r}} | null,   a game's mark on the field (the hill)
   *   server: {x, y} | null,                  the own entity's last authoritative position
   *   drag: {origin, point} | null,           the joystick, CSS pixels
   *   message: string | null,                 a caption over the arena
   *   time: ms (animation clock)
   * }
   */
  draw(view) {
    this.resize();
    const { ctx, width, height, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);

    if (!view.world) {
      if (view.message) this.caption(view.message, width / 2, height / 2);
      return;
    }
    const { width: ww, height: wh } = view.world;
    const scale = Math.max(
      0.01,
      Math.min((width - 2 * MARGIN) / ww, (height - TOP - BOTTOM) / wh),
    );
    const ox = (width - ww * scale) / 2;
    const oy = TOP + (height - TOP - BOTTOM - wh * scale) / 2;
    this.layout = { ox, oy, scale };

    // The arena.
    ctx.save();
    ctx.translate(ox, oy);
    ctx.fillStyle = '#141a2c';
    ctx.fillRect(0, 0, ww * scale, wh * scale);
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.05)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = GRID; x < ww; x += GRID) {
      ctx.moveTo(Math.round(x * scale) + 0.5, 0);
      ctx.lineTo(Math.round(x * scale) + 0.5, wh * scale);
    }
    for (let y = GRID; y < wh; y += GRID) {
      ctx.moveTo(0, Math.round(y * scale) + 0.5);
      ctx.lineTo(ww * scale, Math.round(y * scale) + 0.5);
    }
    ctx.stroke();
    ctx.strokeStyle = '#3b4a7a';
    ctx.lineWidth = 2;
    ctx.strokeRect(-1, -1, ww * scale + 2, wh * scale + 2);
    const mark = view.backdrop?.circle;
    if (mark) {
      ctx.beginPath();
      ctx.arc(mark.x * scale, mark.y * scale, mark.r * scale, 0, Math.PI * 2);
      ctx.fillStyle = 'rgba(255, 209, 102, 0.12)';
      ctx.fill();
      ctx.strokeStyle = 'rgba(255, 209, 102, 0.5)';
      ctx.stroke();
    }

    // Entities: others first, own entity on top.
    const own = view.entities.find((e) => e.me);
    const r = (own?.radius ?? 20) * scale;
    if (view.server) {
      // Where the server last put the own player: prediction runs ahead of it by the lag.
      ctx.beginPath();
      ctx.arc(view.server.x * scale, view.server.y * scale, r, 0, Math.PI * 2);
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.45)';
      ctx.stroke();
      ctx.setLineDash([]);
    }
    const ordered = [...view.entities].sort((a, b) => Number(a.me) - Number(b.me));
    const pulse = 0.5 + 0.5 * Math.sin((view.time ?? 0) / 160);
    for (const e of ordered) {
      const style = e.style ?? {};
      if (style.hidden) continue;
      const x = e.x * scale;
      const y = e.y * scale;
      const er = (e.radius ?? 12) * scale;
      const player = e.controlledBy > 0;
      if (style.glow) {
        ctx.beginPath();
        ctx.arc(x, y, er + 4 + 4 * pulse, 0, Math.PI * 2);
        ctx.fillStyle = `rgba(255, 72, 72, ${0.18 + 0.17 * pulse})`;
        ctx.fill();
      }
      ctx.beginPath();
      ctx.arc(x, y, er, 0, Math.PI * 2);
      let fill = style.colour;
      if (!fill) {
        if (player) fill = colourOf(e.controlledBy);
        else if (typeof e.values.owner === 'number' && e.values.owner > 0) fill = colourOf(e.values.owner);
        else fill = kindColour(e.kind ?? 0);
      }
      ctx.fillStyle = fill;
      ctx.fill();
      if (style.ring) {
        ctx.lineWidth = 3;
        ctx.strokeStyle = style.ring;
        ctx.stroke();
      }
      if (typeof e.values.aim === 'number' && player) {
        ctx.beginPath();
        ctx.moveTo(x, y);
        ctx.lineTo(x + Math.cos(e.values.aim) * er * 1.6, y + Math.sin(e.values.aim) * er * 1.6);
        ctx.lineWidth = 3;
        ctx.strokeStyle = '#e8ecff';
        ctx.stroke();
      }
      if (e.me) {
        ctx.beginPath();
        ctx.arc(x, y, er + (style.ring ? 5 : 3), 0, Math.PI * 2);
        ctx.lineWidth = 2.5;
        ctx.strokeStyle = '#ffffff';
        ctx.stroke();
      }
      if (player) {
        this.label(e.me ? `${e.name} (you)` : e.name, x, y - er - 8, e.me ? '#ffffff' : '#c9d1ee');
        if (typeof e.values.health === 'number' && e.healthMax) {
          const w = er * 2;
          ctx.fillStyle = 'rgba(0, 0, 0, 0.5)';
          ctx.fillRect(x - w / 2, y + er + 4, w, 4);
          ctx.fillStyle = e.values.health / e.healthMax > 0.3 ? '#5ee08a' : '#ff5b5b';
          ctx.fillRect(x - w / 2, y + er + 4, (w * e.values.health) / e.healthMax, 4);
        }
      }
      if (style.badge) this.badge(style.badge, x, y);
    }
    // A message over the world (e.g. disconnected) dims it.
    if (view.message) {
      ctx.fillStyle = 'rgba(8, 10, 20, 0.6)';
      ctx.fillRect(0, 0, ww * scale, wh * scale);
    }
    ctx.restore();

    if (view.message) this.caption(view.message, width / 2, oy + (wh * scale) / 2);
    if (view.drag) this.joystick(view.drag);
  }

  joystick({ origin, point }) {
    const { ctx } = this;
    let dx = point.x - origin.x;
    let dy = point.y - origin.y;
    const len = Math.hypot(dx, dy);
    if (len > JOYSTICK_RADIUS) {
      dx *= JOYSTICK_RADIUS / len;
      dy *= JOYSTICK_RADIUS / len;
    }
    ctx.beginPath();
    ctx.arc(origin.x, origin.y, JOYSTICK_RADIUS, 0, Math.PI * 2);
    ctx.fillStyle = 'rgba(122, 162, 255, 0.10)';
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = 'rgba(122, 162, 255, 0.45)';
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(origin.x + dx, origin.y + dy, 22, 0, Math.PI * 2);
    ctx.fillStyle = 'rgba(122, 162, 255, 0.55)';
    ctx.fill();
  }

  label(text, x, y, colour) {
    const { ctx } = this;
    ctx.font = '600 12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(10, 13, 24, 0.85)';
    ctx.strokeText(text, x, y);
    ctx.fillStyle = colour;
    ctx.fillText(text, x, y);
  }

  badge(text, x, y) {
    const { ctx } = this;
    ctx.font = '800 11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#1b0d0d';
    ctx.fillText(text, x, y + 1);
  }

  caption(text, x, y) {
    if (!text) return;
    const { ctx } = this;
    ctx.font = '500 16px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const w = ctx.measureText(text).width + 32;
    const h = 40;
    ctx.beginPath();
    ctx.roundRect(x - w / 2, y - h / 2, w, h, 10);
    ctx.fillStyle = 'rgba(20, 26, 44, 0.92)';
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgba(120, 140, 200, 0.3)';
    ctx.stroke();
    ctx.fillStyle = '#c9d1ee';
    ctx.fillText(text, x, y);
  }
}
