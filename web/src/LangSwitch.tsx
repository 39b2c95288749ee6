// The language switch of the console and the widget: one button naming the other language in
// that language ("Suomeksi" / "In English"). The choice is remembered (i18n.ts's setLang).
import { useEffect, useState } from 'preact/hooks';
import { lang, onLangChange, setLang, t } from './i18n';

/** Re-renders the calling component (a root) whenever the language changes; returns it. */
export function useLang() {
  const [, bump] = useState(0);
  useEffect(() => onLangChange(() => bump((n) => n + 1)), []);
  return lang;
}

export function LangSwitch() {
  const other = lang === 'fi' ? 'en' : 'fi';
  return (
    <button type="button" class="lang-switch" lang={other} title={t('language')} onClick={() => setLang(other)}>
      {other === 'fi' ? 'Suomeksi' : 'In English'}
    </button>
  );
}
