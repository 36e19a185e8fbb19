// A tab open across an upgrade: its lazily loaded pages come from the build it was opened on, which the control plane
// keeps serving for a day (server/http/older-builds.ts). Once that build is gone, the failed dynamic import (Vite's
// `vite:preloadError`) reloads the page, once per build, onto the build in use, at the same address: a page that
// loads no better after the reload shows its error instead of reloading for ever.

const reloadedFrom = 'atelier-reloaded-from';
let reloading = false;

/** Whether the page is reloading onto a newer build (a lazy page then waits rather than show its error). */
export function reloadingForNewBuild(): boolean {
  return reloading;
}

/** Listens for failed dynamic imports for the life of the page. */
export function reloadOnMissingChunks(): void {
  window.addEventListener('vite:preloadError', () => {
    // the entry script's hashed name tells one build from another
    const build = document.querySelector<HTMLScriptElement>('script[type="module"][src]')?.src ?? '';
    try {
      if (sessionStorage.getItem(reloadedFrom) === build) return;
      sessionStorage.setItem(reloadedFrom, build);
    } catch {
      return; // no session storage: no way to reload only once
    }
    reloading = true;
    location.reload();
  });
}
