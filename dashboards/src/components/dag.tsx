// The run's task graph: laid out by dagre (left to right), edges drawn in SVG, nodes as real buttons (so
// Tab, Enter and the arrow keys work) coloured by live status with a progress bar.
import { Graph, layout } from '@dagrejs/dagre';
import { Component } from 'preact';
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { statusLabel } from './status';

export interface DagNode {
  id: string;
  label: string;
  detail?: string | null;
  /** a task status, or SPEC for a node of a workflow spec (no run) */
  status: string;
  progress: number | null;
  dependsOn: readonly string[];
  badge?: string | null;
  /** how the badge reads: `cache` for a result served from cache */
  badgeTone?: 'cache' | null;
}

interface Layout {
  width: number;
  height: number;
  positions: Map<string, { x: number; y: number }>;
  edges: { from: string; to: string; path: string }[];
}

const NODE_WIDTH = 184;
const NODE_HEIGHT = 62;

/** Graphs larger than this are listed, not drawn: a layout of thousands of nodes helps nobody. */
export const MAX_DRAWN_NODES = 400;

function computeLayout(nodes: readonly DagNode[]): Layout {
  const g = new Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) g.setNode(n.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const n of nodes) for (const dep of n.dependsOn) if (ids.has(dep)) g.setEdge(dep, n.id);
  layout(g);
  const positions = new Map<string, { x: number; y: number }>();
  for (const id of g.nodes()) {
    const label = g.node(id) as { x: number; y: number };
    positions.set(id, { x: label.x - NODE_WIDTH / 2, y: label.y - NODE_HEIGHT / 2 });
  }
  const edges = g.edges().map((e) => {
    const points = ((g.edge(e) as { points?: { x: number; y: number }[] }).points ?? []).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    return { from: e.v, to: e.w, path: smoothPath(points) };
  });
  const graph = g.graph() as { width?: number; height?: number };
  const size = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? Math.ceil(n) : 0); // an empty graph has no size
  return { width: size(graph.width), height: size(graph.height), positions, edges };
}

/** A path through dagre's points, rounded with quadratic curves between midpoints. */
function smoothPath(points: { x: number; y: number }[]): string {
  if (points.length < 2) return '';
  let d = `M${points[0]!.x},${points[0]!.y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const p = points[i]!;
    const next = points[i + 1]!;
    d += ` Q${p.x},${p.y} ${(p.x + next.x) / 2},${(p.y + next.y) / 2}`;
  }
  const last = points[points.length - 1]!;
  return `${d} L${last.x},${last.y}`;
}

export function Dag({ nodes, selected, onSelect, label }: { nodes: readonly DagNode[]; selected: string | null; onSelect(id: string): void; label: string }) {
  // Lay out again only when the graph's shape changes, not on every status or progress update.
  const shape = nodes.map((n) => `${n.id}<${n.dependsOn.join(',')}`).join(';');
  const graph = useMemo(() => computeLayout(nodes), [shape]);
  const container = useRef<HTMLDivElement>(null);
  const byId = useMemo(() => new Map(nodes.map((n) => [n.id, n])), [nodes]);
  const [zoom, setZoom] = useState<number | null>(null); // null: not chosen yet

  // First view of a new shape: fit it when that keeps text readable, else show it at full size from its start.
  const fitScale = () => {
    const el = container.current;
    if (!el || !graph.width || !graph.height) return 1;
    return Math.min(1, (el.clientWidth - 4) / graph.width, (window.innerHeight * 0.6 - 4) / graph.height);
  };
  useLayoutEffect(() => {
    const fit = fitScale();
    setZoom(fit >= 0.55 ? fit : 1);
    const el = container.current;
    const first = nodes.find((n) => n.dependsOn.length === 0);
    const p = first && graph.positions.get(first.id);
    if (el && p && fit < 0.55) el.scrollTop = Math.max(0, p.y + NODE_HEIGHT / 2 - el.clientHeight / 2);
  }, [graph]);
  const scale = zoom ?? 1;

  // Stable across renders, so a node whose own props did not change skips its re-render.
  const handlers = useRef<Handlers>({ select: onSelect, move: () => {} });
  handlers.current.select = onSelect;
  handlers.current.move = (from: string, key: string) => {
    const here = graph.positions.get(from);
    if (!here) return;
    const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[key];
    if (!dir) return;
    let best: string | null = null;
    let bestScore = Infinity;
    for (const [id, p] of graph.positions) {
      const dx = p.x - here.x;
      const dy = p.y - here.y;
      const along = dx * dir[0]! + dy * dir[1]!;
      if (along <= 0) continue;
      const across = Math.abs(dx * dir[1]! + dy * dir[0]!);
      const score = along + across * 2;
      if (score < bestScore) [best, bestScore] = [id, score];
    }
    if (best) container.current?.querySelector<HTMLButtonElement>(`[data-node="${CSS.escape(best)}"]`)?.focus();
  };

  const zoomTo = (next: number) => setZoom(Math.max(0.2, Math.min(1.5, next)));
  return (
    <div class="dag-wrap">
      {nodes.length > 1 && (
        // biome-ignore lint/a11y/useSemanticElements: a cluster of buttons, not form fields; <fieldset> would be the wrong element
        <div class="dag-zoom" role="group" aria-label="Zoom the graph">
          <button type="button" class="button small" onClick={() => zoomTo(scale / 1.25)} aria-label="Zoom out">
            −
          </button>
          <button type="button" class="button small" onClick={() => zoomTo(scale * 1.25)} aria-label="Zoom in">
            +
          </button>
          <button type="button" class="button small" onClick={() => setZoom(fitScale())}>
            Fit
          </button>
          <button type="button" class="button small" onClick={() => setZoom(1)} aria-pressed={scale === 1}>
            100%
          </button>
        </div>
      )}
      <div class="dag-scroll" ref={container}>
        <div class="dag-sizer" style={{ width: `${graph.width * scale}px`, height: `${graph.height * scale}px` }}>
          {/* biome-ignore lint/a11y/useSemanticElements: the graph's nodes are positioned buttons, not form fields; <fieldset> would be the wrong element */}
          <div
            class="dag"
            role="group"
            aria-label={label}
            style={{ width: `${graph.width}px`, height: `${graph.height}px`, transform: scale === 1 ? undefined : `scale(${scale})` }}
          >
            <svg class="dag-edges" width={graph.width} height={graph.height} aria-hidden="true">
              <defs>
                <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                  <path d="M0,0 L10,5 L0,10 z" />
                </marker>
              </defs>
              {graph.edges.map((e) => (
                <path key={`${e.from}>${e.to}`} d={e.path} class={`dag-edge edge-${byId.get(e.from)?.status ?? 'PENDING'}`} marker-end="url(#dag-arrow)" />
              ))}
            </svg>
            {nodes.map((n) => {
              const p = graph.positions.get(n.id);
              if (!p) return null;
              return (
                <NodeButton
                  key={n.id}
                  id={n.id}
                  label={n.label}
                  status={n.status}
                  progress={n.progress}
                  detail={n.detail ?? null}
                  badge={n.badge ?? null}
                  badgeTone={n.badgeTone ?? null}
                  x={p.x}
                  y={p.y}
                  selected={selected === n.id}
                  handlers={handlers.current}
                />
              );
            })}
          </div>
        </div>
      </div>
    </div>
  );
}

interface Handlers {
  select(id: string): void;
  move(from: string, key: string): void;
}

interface NodeProps {
  id: string;
  label: string;
  status: string;
  progress: number | null;
  detail: string | null;
  badge: string | null;
  badgeTone: 'cache' | null;
  x: number;
  y: number;
  selected: boolean;
  handlers: Handlers;
}

/** One node; re-renders only when its own props change (a live run changes a few nodes per frame). */
class NodeButton extends Component<NodeProps> {
  override shouldComponentUpdate(next: NodeProps) {
    const p = this.props;
    return (
      p.status !== next.status ||
      p.progress !== next.progress ||
      p.selected !== next.selected ||
      p.detail !== next.detail ||
      p.badge !== next.badge ||
      p.badgeTone !== next.badgeTone ||
      p.label !== next.label ||
      p.x !== next.x ||
      p.y !== next.y
    );
  }

  override render({ id, label, status, progress, detail, badge, badgeTone, x, y, selected, handlers }: NodeProps) {
    const pct = progress === null ? null : Math.round(Math.max(0, Math.min(1, progress)) * 100);
    return (
      <button
        type="button"
        class={`dag-node status-${status}${selected ? ' selected' : ''}`}
        data-node={id}
        data-status={status}
        title={detail ?? undefined}
        aria-pressed={selected}
        aria-label={`${label}${status === 'SPEC' ? '' : `: ${statusLabel(status)}`}${pct !== null && status === 'RUNNING' ? `, ${pct}%` : ''}${badge ? `, ${badge}` : ''}`}
        style={{ left: `${x}px`, top: `${y}px`, width: `${NODE_WIDTH}px`, height: `${NODE_HEIGHT}px` }}
        onClick={() => handlers.select(id)}
        onKeyDown={(e) => {
          if (e.key.startsWith('Arrow')) {
            e.preventDefault();
            handlers.move(id, e.key);
          }
        }}
      >
        <span class="dag-node-title">
          <span class="dag-node-name">{label}</span>
          {status !== 'SPEC' && <span class="dag-node-status">{statusLabel(status)}</span>}
        </span>
        <span class="dag-node-detail">
          {badge && <span class={`chip${badgeTone ? ` ${badgeTone}` : ''}`}>{badge}</span>} {detail}
        </span>
        <span class="dag-progress" aria-hidden="true">
          <span style={{ width: `${status === 'SUCCEEDED' ? 100 : (pct ?? 0)}%` }} />
        </span>
      </button>
    );
  }
}
