// A small line chart on a canvas: one or two series over the last points, DPR-aware.

const COLORS = ['#4fc3f7', '#ffb74d'];

export function drawChart(canvas, points, keys) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.clientHeight || 120;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  const values = points.flatMap((p) => keys.map((k) => p[k])).filter((v) => Number.isFinite(v));
  const max = Math.max(1, ...values) * 1.15;
  g.strokeStyle = '#2a3541';
  g.fillStyle = '#8a99a8';
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = height - 14 - f * (height - 24);
    g.beginPath(); g.moveTo(0, y); g.lineTo(width, y); g.stroke();
    g.fillText(formatAxis(f * max), 4, y - 2);
  }
  if (points.length < 2) return;
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  keys.forEach((key, i) => {
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    for (const p of points) {
      const v = p[key];
      if (!Number.isFinite(v)) { started = false; continue; }
      const x = ((p.t - t0) / span) * (width - 8) + 4;
      const y = height - 14 - (v / max) * (height - 24);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    }
    g.stroke();
  });
}

function formatAxis(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}
