// Input: keyboard, mouse, wheel and touch on the canvas, turned into the
// protocol's input events in desktop pixels.  The canvas keeps the
// desktop's aspect ratio, so a point maps by scaling its CSS position by
// desktop size / CSS size.  Nothing is sent unless `enabled` (the guest
// holds control): the relay would only answer no_control.

import { INPUT } from './media.js';

// Wheel deltas arrive in pixels, lines or pages; the host wants pixels.
const WHEEL_SCALE = [1, 40, 800];

function modifiers(e) {
  return (e.shiftKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.altKey ? 4 : 0) | (e.metaKey ? 8 : 0);
}

export class InputCapture {
  // send(fields) takes {type, mods, x, y, code}.
  constructor(canvas, send) {
    this.canvas = canvas;
    this.send = send;
    this.enabled = false;
    this.last = null;
    const on = (type, fn, opts) => canvas.addEventListener(type, (e) => this.enabled && fn.call(this, e), opts);
    on('pointermove', this.onPointerMove);
    on('pointerdown', this.onPointerDown);
    on('pointerup', this.onPointerUp);
    on('pointercancel', this.onPointerUp);
    on('wheel', this.onWheel, { passive: false });
    on('keydown', this.onKey);
    on('keyup', this.onKey);
    on('contextmenu', (e) => e.preventDefault());
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    const w = this.canvas.width;
    const h = this.canvas.height;
    const x = Math.floor(((e.clientX - r.left) * w) / Math.max(1, r.width));
    const y = Math.floor(((e.clientY - r.top) * h) / Math.max(1, r.height));
    return { x: Math.min(Math.max(x, 0), w - 1), y: Math.min(Math.max(y, 0), h - 1) };
  }

  pointer(e, mouseType, touchType) {
    const p = this.point(e);
    const touch = e.pointerType === 'touch';
    this.send({ type: touch ? touchType : mouseType, mods: modifiers(e), ...p, code: touch ? e.pointerId : e.button });
  }

  onPointerMove(e) {
    const p = this.point(e);
    if (this.last && this.last.x === p.x && this.last.y === p.y) return;
    this.last = p;
    const touch = e.pointerType === 'touch';
    this.send({ type: touch ? INPUT.touchMove : INPUT.pointerMove, mods: modifiers(e), ...p, code: touch ? e.pointerId : 0 });
  }

  onPointerDown(e) {
    this.canvas.focus();
    // Keep getting moves and the release when the pointer leaves the canvas.
    this.canvas.setPointerCapture(e.pointerId);
    this.pointer(e, INPUT.pointerDown, INPUT.touchStart);
    e.preventDefault();
  }

  onPointerUp(e) {
    this.pointer(e, INPUT.pointerUp, INPUT.touchEnd);
  }

  onWheel(e) {
    const k = WHEEL_SCALE[e.deltaMode] || 1;
    this.send({ type: INPUT.wheel, mods: modifiers(e), x: Math.round(e.deltaX * k), y: Math.round(e.deltaY * k), code: 0 });
    e.preventDefault();
  }

  onKey(e) {
    // Browser shortcuts (Tab, F5, Ctrl+W where allowed) belong to the desktop now.
    e.preventDefault();
    const p = this.last || { x: 0, y: 0 };
    this.send({ type: e.type === 'keydown' ? INPUT.keyDown : INPUT.keyUp, mods: modifiers(e), ...p, code: e.keyCode });
  }
}
