// The embed script: <script src="https://JONO/loader.js" data-queue="QUEUE_ID" async></script>
// Inserts the widget's iframe and tells it, by postMessage to Jono's origin only, which
// page of the host site the customer is on (the widget sends it as live metadata).
(() => {
  const script = document.currentScript as HTMLScriptElement | null;
  if (!script || !script.dataset.queue) return;
  const base = new URL(script.src, location.href).origin;
  const frame = document.createElement('iframe');
  frame.src = `${base}/widget?queue=${encodeURIComponent(script.dataset.queue)}&host=${encodeURIComponent(location.origin)}`;
  frame.title = script.dataset.title || 'Chat';
  frame.id = 'jono-widget';
  frame.setAttribute('allow', 'camera; microphone; autoplay'); // the widget's video calls
  frame.style.cssText = 'position:fixed;right:16px;bottom:16px;width:370px;height:560px;max-width:calc(100vw - 32px);max-height:calc(100vh - 32px);border:0;border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);z-index:2147483000;background:#fff';

  let last = '';
  const post = (force = false) => {
    if (!force && location.href === last) return;
    last = location.href;
    frame.contentWindow?.postMessage({ type: 'jono:page', page: location.href }, base);
  };
  window.addEventListener('message', (e) => {
    if (e.origin !== base || e.source !== frame.contentWindow) return;
    if (e.data && e.data.type === 'jono:ready') post(true);
  });
  window.addEventListener('popstate', () => post());
  window.addEventListener('hashchange', () => post());
  setInterval(() => post(), 1000); // pushState navigations of single-page sites

  const insert = () => document.body.appendChild(frame);
  if (document.body) insert();
  else document.addEventListener('DOMContentLoaded', insert);
})();
