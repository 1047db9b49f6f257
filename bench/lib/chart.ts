import type { WorkloadFigures } from './report.js';
import type { Tool } from './tools.js';

const WIDTH = 860;
const LABEL_WIDTH = 150;
const VALUE_WIDTH = 190;
const BAR_HEIGHT = 18;
const BAR_GAP = 8;
const PANEL_TITLE = 34;
const PANEL_GAP = 18;
const TOP = 56;

const COLORS: Record<Tool, string> = {
  'cross-account-sync': '#1f77b4',
  rclone: '#ff7f0e',
  'aws-cli': '#2ca02c',
  ceiling: '#7f7f7f',
  'bare-listing': '#9467bd',
};

/**
 * One SVG a reader can look at: per workload, each tool's median wall time as a bar (shorter is better)
 * with its min–max whisker, labelled with the time and the peak RSS. Each panel has its own scale.
 */
export function wallTimeChart(workloads: WorkloadFigures[], generatedAt: string): string {
  const plotWidth = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const parts: string[] = [];
  let y = TOP;
  for (const workload of workloads) {
    const scaleMax = Math.max(...workload.tools.map((tool) => tool.wallSeconds.max), 1e-9);
    const x = (seconds: number) => LABEL_WIDTH + (seconds / scaleMax) * plotWidth;
    parts.push(
      `<text x="10" y="${y + 20}" class="panel">Workload ${workload.id}: ${escapeXml(workload.name)} — ${escapeXml(workload.description)}</text>`,
    );
    y += PANEL_TITLE;
    for (const tool of workload.tools) {
      const { min, median, max } = tool.wallSeconds;
      const middle = y + BAR_HEIGHT / 2;
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${middle + 4}" text-anchor="end">${escapeXml(tool.tool)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${(x(median) - LABEL_WIDTH).toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLORS[tool.tool]}"/>`,
        `<line x1="${x(min).toFixed(1)}" x2="${x(max).toFixed(1)}" y1="${middle}" y2="${middle}" class="whisker"/>`,
        `<line x1="${x(min).toFixed(1)}" x2="${x(min).toFixed(1)}" y1="${middle - 5}" y2="${middle + 5}" class="whisker"/>`,
        `<line x1="${x(max).toFixed(1)}" x2="${x(max).toFixed(1)}" y1="${middle - 5}" y2="${middle + 5}" class="whisker"/>`,
        `<text x="${LABEL_WIDTH + plotWidth + 12}" y="${middle + 4}">${median.toFixed(2)} s · ${tool.peakRssMb.median.toFixed(0)} MB RSS</text>`,
      );
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += PANEL_GAP;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    '<style>.panel{font-weight:bold;font-size:13px}.whisker{stroke:#000;stroke-width:1.2}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    '<text x="10" y="22" font-size="16" font-weight="bold">cross-account-sync vs its peers: wall time per workload (shorter is better)</text>',
    `<text x="10" y="40" fill="#555">Median of the runs, whisker min–max; each panel has its own scale. Local two-account S3 (moto); ${escapeXml(generatedAt)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
