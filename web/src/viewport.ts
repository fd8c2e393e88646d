/**
 * Keeps the page as tall as what is visible. On phones the on-screen keyboard shrinks the visual
 * viewport (Safari, and Chrome without `interactive-widget=resizes-content`) but not the layout:
 * a page 100% tall would keep its composer under the keyboard. --app-height follows
 * visualViewport, so the composer sits just above the keyboard.
 */
export function followVisualViewport() {
  const vv = window.visualViewport;
  if (!vv) return;
  const set = () => {
    document.documentElement.style.setProperty('--app-height', `${Math.round(vv.height)}px`);
    // Safari scrolls the page up to show the focused field; the page is exactly the visible part, so undo it.
    if (vv.offsetTop === 0 && window.scrollY) window.scrollTo(0, 0);
  };
  vv.addEventListener('resize', set);
  // A rotation or a resized window changes the layout viewport too (and not every browser reports it on visualViewport).
  window.addEventListener('resize', set);
  set();
}
