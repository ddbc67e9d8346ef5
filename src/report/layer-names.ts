/** HF linear weight names → (decoder block, role), and the display order of roles (pure). */

export interface LinearName {
  /** Decoder block index, or null for tensors outside the blocks (lm_head, …). */
  block: number | null;
  /** The module's last name without the `_proj` suffix: q, k, v, o, gate, up, down, lm_head, … */
  role: string;
}

const BLOCK_RE = /(?:^|\.)layers\.(\d+)\.(?:.*\.)?([^.]+)\.weight$/;

export function parseLinearName(name: string): LinearName {
  const m = BLOCK_RE.exec(name);
  if (m) return { block: Number(m[1]), role: shortRole(m[2]) };
  const base = name.replace(/\.weight$/, '');
  return { block: null, role: shortRole(base.slice(base.lastIndexOf('.') + 1)) };
}

function shortRole(module: string): string {
  return module.endsWith('_proj') ? module.slice(0, -'_proj'.length) : module;
}

const ROLE_ORDER = ['q', 'k', 'v', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down'];

/** Known roles in the order data flows through a block, then the others alphabetically. */
export function sortRoles(roles: Iterable<string>): string[] {
  const rank = (r: string): number => {
    const i = ROLE_ORDER.indexOf(r);
    return i === -1 ? ROLE_ORDER.length : i;
  };
  return [...new Set(roles)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Row label of a block (null → "other"). */
export function blockLabel(block: number | null): string {
  return block === null ? 'other' : `block ${block}`;
}
