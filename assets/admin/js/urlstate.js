// Panel state kept in the page's URL, so a reload or a shared link shows
// the same page: each panel owns some query keys and writes only those,
// leaving the other panels' keys as they are. Written with replaceState,
// so Back leaves the page instead of stepping through filter changes.

/** The page's query parameters. */
export function readParams() {
  return new URLSearchParams(location.search);
}

/** Replaces the values of `keys` with the non-empty ones of `values`. */
export function writeParams(keys, values) {
  const p = new URLSearchParams(location.search);
  for (const k of keys) p.delete(k);
  for (const k of keys) {
    const v = values[k];
    if (v !== null && v !== undefined && v !== '') p.set(k, String(v));
  }
  const q = p.toString();
  history.replaceState(history.state, '', `${location.pathname}${q ? `?${q}` : ''}${location.hash}`);
}
