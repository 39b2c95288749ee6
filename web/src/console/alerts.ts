// Alerts, so that an agent on another tab or another conversation does not miss a customer or a
// message: a short sound (on by default, switchable per browser), a desktop notification (only
// when the agent turned them on and the browser allowed it, never asked on load), and a tab
// title that counts what arrived while the tab was hidden. The unread counts per conversation
// live in the console (this browser's memory).

const SOUND_KEY = 'jono.alerts.sound';
const NOTIFY_KEY = 'jono.alerts.notify';

export function soundOn(): boolean {
  try { return localStorage.getItem(SOUND_KEY) !== 'off'; } catch { return true; }
}

export function setSoundOn(on: boolean) {
  try { localStorage.setItem(SOUND_KEY, on ? 'on' : 'off'); } catch { /* this page only */ }
}

export function notificationsOn(): boolean {
  try {
    return localStorage.getItem(NOTIFY_KEY) === 'on' && 'Notification' in window && Notification.permission === 'granted';
  } catch { return false; }
}

/** Asks the browser (from a click in the settings) and remembers the answer. */
export async function enableNotifications(): Promise<boolean> {
  if (!('Notification' in window)) return false;
  const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
  const on = permission === 'granted';
  try { localStorage.setItem(NOTIFY_KEY, on ? 'on' : 'off'); } catch { /* this page only */ }
  return on;
}

export function disableNotifications() {
  try { localStorage.setItem(NOTIFY_KEY, 'off'); } catch { /* this page only */ }
}

let hiddenUnread = 0;
const baseTitle = document.title || 'Jono';

function showTitle() {
  document.title = hiddenUnread > 0 ? `(${hiddenUnread}) ${baseTitle}` : baseTitle;
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) { hiddenUnread = 0; showTitle(); }
});

let audio: AudioContext | null = null;

/** Two short tones: quiet, and the same for every alert. */
function beep() {
  try {
    audio = audio ?? new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.08, now + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.12 + 0.1);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.12);
      osc.stop(now + i * 0.12 + 0.11);
    }
  } catch { /* no audio here */ }
}

/** How many alerts have been raised in this page (the browser test reads it). */
export let alertsRaised = 0;

/** Something new for the agent: sound, notification when hidden, and the tab title's count. */
export function raise(title: string, body: string) {
  alertsRaised += 1;
  (window as unknown as { jonoAlerts?: number }).jonoAlerts = alertsRaised;
  if (soundOn()) beep();
  if (document.hidden) {
    hiddenUnread += 1;
    showTitle();
    if (notificationsOn()) {
      try { new Notification(title, { body, tag: 'jono' }); } catch { /* not shown */ }
    }
  }
}
