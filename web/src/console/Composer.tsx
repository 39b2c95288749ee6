import { useEffect, useRef, useState } from 'preact/hooks';
import type { Canned } from '../api/client';
import { t } from '../i18n';

const EMOJIS = ['😀', '😊', '😂', '🙂', '😉', '😍', '🤔', '😅', '😢', '🙏', '👍', '👎', '👋', '🎉', '❤️', '✅', '❌', '⭐', '🔥', '💡'];

/**
 * If the character just typed (before `caret`) is a space that ends `/key`, returns the
 * text with `/key ` replaced by the canned response's text.
 */
export function expandCanned(value: string, caret: number, canned: Canned[]): { value: string; caret: number } | null {
  if (caret < 3 || value[caret - 1] !== ' ') return null;
  const before = value.slice(0, caret - 1);
  const m = before.match(/(?:^|\s)\/([^\s/]+)$/);
  if (!m) return null;
  const key = m[1];
  const c = canned.find((c) => c.key === key) ?? canned.find((c) => c.key.toLowerCase() === key.toLowerCase());
  if (!c) return null;
  const start = before.length - key.length - 1;
  return { value: value.slice(0, start) + c.text + value.slice(caret), caret: start + c.text.length };
}

export type Pending = { attachment_id: string; name: string };

/** API.md's limits: a message's text and one attachment. */
const MAX_TEXT = 10_000;
const MAX_FILE_BYTES = 10 * 1024 * 1024;

export function Composer(props: {
  value: string;
  setValue: (v: string) => void;
  canned: Canned[];
  disabled?: boolean;
  onSend: (text: string, attachments: Pending[]) => Promise<void>;
  onUpload?: (f: File) => Promise<Pending>;
  onTyping?: () => void;
  extra?: preact.ComponentChildren;
  placeholder?: string;
}) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [emoji, setEmoji] = useState(false);
  const [pending, setPending] = useState<Pending[]>([]);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  // The emoji picker: Escape or a press outside it closes it.
  const emojiToggle = useRef<HTMLButtonElement>(null);
  const emojiBox = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!emoji) return;
    const outside = (e: PointerEvent) => {
      const el = e.target as Node;
      if (!emojiBox.current?.contains(el) && !emojiToggle.current?.contains(el)) setEmoji(false);
    };
    document.addEventListener('pointerdown', outside);
    return () => document.removeEventListener('pointerdown', outside);
  }, [emoji]);

  const onInput = (e: Event) => {
    const el = e.target as HTMLTextAreaElement;
    const x = expandCanned(el.value, el.selectionStart ?? el.value.length, props.canned);
    if (x) {
      props.setValue(x.value);
      el.value = x.value;
      el.setSelectionRange(x.caret, x.caret);
    } else props.setValue(el.value);
    props.onTyping?.();
  };
  // What is in the field now: a send clears only what it sent, not what was typed while it went.
  const latest = useRef(props.value);
  latest.current = props.value;
  const send = async () => {
    const sent = props.value;
    const text = sent.trim();
    if ((!text && pending.length === 0) || busy) return;
    setBusy(true);
    try {
      await props.onSend(text, pending);
      const now = latest.current;
      props.setValue(now === sent ? '' : now.startsWith(sent) ? now.slice(sent.length).trimStart() : now);
      setPending([]);
    } catch {
      // Not sent: the draft and its files stay for another try; the caller shows why.
    } finally { setBusy(false); ref.current?.focus(); }
  };
  const insert = (s: string) => {
    const el = ref.current;
    const at = el?.selectionStart ?? props.value.length;
    const v = props.value.slice(0, at) + s + props.value.slice(at);
    props.setValue(v);
    setEmoji(false);
    requestAnimationFrame(() => { el?.focus(); el?.setSelectionRange(at + s.length, at + s.length); });
  };
  const upload = async (e: Event) => {
    const input = e.target as HTMLInputElement;
    const f = input.files?.[0];
    input.value = '';
    if (!f || !props.onUpload) return;
    setErr('');
    if (f.size > MAX_FILE_BYTES) {
      setErr(t('fileTooLarge', { name: f.name, max: '10 MiB' }));
      return;
    }
    try {
      const added = await props.onUpload(f);
      setPending((cur) => [...cur, added]);
    } catch (x) {
      setErr(t('uploadFailed', { name: f.name, detail: (x as Error)?.message ?? String(x) }));
    }
  };
  return (
    <div class="composer">
      {err && <p class="error" role="alert">{err}</p>}
      {pending.length > 0 && (
        <ul class="pending">{pending.map((p) => <li key={p.attachment_id}>📎 {p.name} <button type="button" class="link" aria-label={`${t('remove')} ${p.name}`} onClick={() => setPending(pending.filter((x) => x !== p))}>×</button></li>)}</ul>
      )}
      <textarea
        ref={ref}
        name="message"
        rows={3}
        disabled={props.disabled}
        placeholder={props.placeholder ?? t('typeMessage')}
        aria-label={props.placeholder ?? t('typeMessage')}
        value={props.value}
        onInput={onInput}
        onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); } }}
      />
      <div class="composer-bar">
        <span class="emoji-wrap" onKeyDown={(e) => { if (emoji && e.key === 'Escape') { e.preventDefault(); setEmoji(false); emojiToggle.current?.focus(); } }}>
          <button type="button" ref={emojiToggle} title={t('emoji')} aria-label={t('emoji')} aria-expanded={emoji} disabled={props.disabled} onClick={() => setEmoji(!emoji)}>😊</button>
          {emoji && (
            <div class="emoji-picker" role="group" aria-label={t('emoji')} ref={emojiBox}>
              {EMOJIS.map((e) => <button type="button" key={e} onClick={() => insert(e)}>{e}</button>)}
            </div>
          )}
        </span>
        {props.onUpload && (
          <label class="button" title={t('attach')}><span aria-hidden="true">📎</span> {t('file')}<input type="file" hidden aria-label={t('attach')} disabled={props.disabled} onChange={upload} /></label>
        )}
        {props.extra}
        <span class="grow" />
        {props.value.length > MAX_TEXT - 1000 && (
          <span class={`counter${props.value.length > MAX_TEXT ? ' over' : ''}`} aria-live="polite">{props.value.length} / {MAX_TEXT}</span>
        )}
        <button type="button" class="primary" disabled={props.disabled || busy} onClick={send}>{t('send')}</button>
      </div>
    </div>
  );
}
