// The embed script: <script src="https://JONO/loader.js" data-queue="QUEUE_ID" async></script>
// Inserts a launcher button and the widget's iframe, which the launcher opens and minimises (the
// state is kept across the host's page loads); a phone gets the widget full screen. It tells the
// widget, by postMessage to Jono's origin only, which page of the host site the customer is on
// (the widget sends it as live metadata), and counts the agent's messages that arrive while the
// widget is minimised. Until the widget says it is ready nothing shows, so a site that may not
// embed the queue gets a console message instead of a broken frame.
//
// A site that knows its signed-in user passes a signed identity on the same tag (README,
// "Returning customers"): data-user-id, data-user-name, data-user-expires and
// data-user-signature. It goes to the widget by postMessage, never in the frame's address.
(() => {
  const script = document.currentScript as HTMLScriptElement | null;
  if (!script || !script.dataset.queue) return;
  const queue = script.dataset.queue;
  const base = new URL(script.src, location.href).origin;
  const label = script.dataset.title || 'Chat';
  const expires = Number(script.dataset.userExpires);
  const identity = script.dataset.userId
    ? { user_id: script.dataset.userId, name: script.dataset.userName ?? '', expires: Number.isFinite(expires) ? Math.trunc(expires) : 0, signature: script.dataset.userSignature ?? '' }
    : null;
  const remembered = `jono.widget.open.${queue}`;
  // How long the widget may take to load before the loader gives up on it.
  const READY_WITHIN_MS = 15_000;

  const frame = document.createElement('iframe');
  frame.src = `${base}/widget?queue=${encodeURIComponent(queue)}&host=${encodeURIComponent(location.origin)}`;
  frame.title = label;
  frame.id = 'jono-widget';
  frame.setAttribute('allow', 'camera; microphone; autoplay'); // the widget's video calls

  const launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.id = 'jono-launcher';

  let open = false;
  try { open = localStorage.getItem(remembered) === '1'; } catch { /* storage refused: start minimised */ }
  let unread = 0;
  let ready = false;
  // The queue's look, from the widget (its settings): a bottom corner and the launcher's colour.
  let side: 'right' | 'left' = 'right';
  let colour = '#1f6feb';

  // Dark text on a light colour, white on a dark one (WCAG's relative luminance).
  const ink = (hex: string) => {
    const [r, g, b] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? '#111' : '#fff';
  };
  const phone = () => window.matchMedia('(max-width: 600px)').matches;
  const layout = () => {
    const full = phone();
    frame.style.cssText = full
      ? 'position:fixed;inset:0;width:100vw;height:100%;border:0;z-index:2147483000;background:#fff'
      : `position:fixed;${side}:16px;bottom:88px;width:370px;`
        + 'height:560px;max-width:calc(100vw - 32px);max-height:calc(100vh - 112px);border:0;border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);z-index:2147483000;background:#fff';
    frame.style.display = open && ready ? 'block' : 'none';
    launcher.style.cssText = (open && full
      ? `top:8px;${side}:8px;height:40px;min-width:40px;padding:0 12px;`
      : `bottom:16px;${side}:16px;height:56px;min-width:56px;padding:0 20px;`)
      + `position:fixed;z-index:2147483001;border:0;border-radius:28px;background:${colour};color:${ink(colour)};`
      + 'font:600 15px system-ui,sans-serif;box-shadow:0 4px 16px rgba(0,0,0,.25);cursor:pointer;'
      + (ready ? '' : 'display:none;');
    launcher.textContent = open ? '×' : unread ? `${label} (${unread})` : label;
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', open ? `${label}: minimise` : unread ? `${label}: ${unread} new` : label);
  };
  const setOpen = (value: boolean) => {
    open = value;
    if (open) unread = 0;
    try { localStorage.setItem(remembered, open ? '1' : '0'); } catch { /* kept for this page only */ }
    layout();
    frame.contentWindow?.postMessage({ type: 'jono:visible', visible: open }, base);
  };
  launcher.addEventListener('click', () => setOpen(!open));
  window.matchMedia('(max-width: 600px)').addEventListener('change', layout);

  let last = '';
  const post = (force = false) => {
    if (!force && location.href === last) return;
    last = location.href;
    frame.contentWindow?.postMessage({ type: 'jono:page', page: location.href }, base);
  };
  window.addEventListener('message', (e) => {
    if (e.origin !== base || e.source !== frame.contentWindow || !e.data) return;
    if (e.data.type === 'jono:ready') {
      // The queue's look comes with it. Only a corner and a #rrggbb colour ever reach the
      // page's styles.
      if (e.data.position === 'left' || e.data.position === 'right') side = e.data.position;
      if (typeof e.data.color === 'string' && /^#[0-9a-f]{6}$/.test(e.data.color)) colour = e.data.color;
      ready = true;
      layout();
      if (identity) frame.contentWindow?.postMessage({ type: 'jono:identity', identity }, base);
      post(true);
    } else if (e.data.type === 'jono:message' && !open) {
      unread += 1;
      layout();
    }
  });
  window.addEventListener('popstate', () => post());
  window.addEventListener('hashchange', () => post());
  setInterval(() => post(), 1000); // pushState navigations of single-page sites

  const insert = () => {
    layout();
    document.body.appendChild(frame);
    document.body.appendChild(launcher);
    window.setTimeout(() => {
      if (ready) return;
      frame.remove();
      launcher.remove();
      console.warn(`Jono: the chat widget of queue ${queue} did not load on ${location.origin}. `
        + 'If this site is not among the queue\'s allowed sites, an operator adds it in Jono: '
        + 'Organization → the queue → "Sites that may embed the widget".');
    }, READY_WITHIN_MS);
  };
  if (document.body) insert();
  else document.addEventListener('DOMContentLoaded', insert);
})();
